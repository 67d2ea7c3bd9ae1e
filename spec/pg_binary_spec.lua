-- Binary results: cached statements whose every column is of a type the core
-- reads in binary (int2/4/8, oid, float4/8, bool, bytea, uuid, text, varchar,
-- bpchar, name, json, jsonb, numeric, arrays of these; date and timestamp with
-- an ISO DateStyle, timestamptz also with a fixed-offset TimeZone) come in
-- binary; the values are exactly those the text format gives.
local pg = require "coderunner.pg"
local server = require "support.server"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local function same(a, b)
  if type(a) == "number" and type(b) == "number" then
    if a ~= a then return b ~= b end                          -- NaN
    if a == 0 and b == 0 then return 1 / a == 1 / b end        -- the sign of zero
    return a == b and math.type == nil or (a == b and math.type(a) == math.type(b))
  end
  if type(a) == "table" and type(b) == "table" then
    for k, v in pairs(a) do if not same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return getmetatable(a) == getmetatable(b)
  end
  return a == b
end

describe("binary results", function()
  local bin, txt
  before_each(function()
    bin = server.connect()                                     -- statement cache on: binary where it can
    txt = assert(pg.connect("", { statement_cache = 0 }))      -- unnamed statements: always text
  end)
  after_each(function()
    bin:close()
    txt:close()
  end)

  -- each: a SQL expression list and the parameters
  local cases = {
    { "int2", "select (-32768)::int2 as a, 32767::int2 as b, 0::int2 as c, null::int2 as d" },
    { "int4", "select (-2147483648)::int4 as a, 2147483647::int4 as b, $1::int4 as c", 42 },
    { "int8", "select (-9223372036854775808)::int8 as a, 9223372036854775807::int8 as b, "
      .. "9007199254740993::int8 as c, (-9007199254740993)::int8 as d, 9007199254740992::int8 as e" },
    { "oid", "select 0::oid as a, 4294967295::oid as b, 'pg_class'::regclass::oid as c" },
    { "float8", "select 1.5::float8 as a, '-0'::float8 as b, 'NaN'::float8 as c, 'Infinity'::float8 as d, "
      .. "'-Infinity'::float8 as e, 1.7976931348623157e308::float8 as f, 5e-324::float8 as g, 0.1::float8 as h, "
      .. "2.2250738585072014e-308::float8 as i, 123456789.123456789::float8 as j, $1::float8 as k", 1 / 3 },
    { "bool", "select true as a, false as b, null::bool as c" },
    { "bytea", "select ''::bytea as a, '\\x00ff10'::bytea as b, $1::bytea as c",
      pg.bytea((function() local t = {} for i = 0, 255 do t[#t + 1] = string.char(i) end return table.concat(t) end)()) },
    { "uuid", "select 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid as a, "
      .. "'00000000-0000-0000-0000-000000000000'::uuid as b, gen_random_uuid() is not null as c" },
    { "text", "select ''::text as a, 'tab\there, new\nline, caf\xc3\xa9 \xf0\x9f\x98\x80'::text as b, $1::text as c, "
      .. "'x'::varchar(3) as d, 'ab'::char(5) as e, 'pg_class'::name as f", "param" },
    { "json", "select '{\"a\": [1, 2.5, null, \"x\"], \"b\": {\"c\": true}}'::json as a, "
      .. "'{\"a\": [1, 2.5, null, \"x\"], \"b\": {\"c\": true}}'::jsonb as b, '[]'::jsonb as c, "
      .. "'\"s\"'::jsonb as d, '12345678901234567890'::jsonb as e, 'null'::jsonb as f" },
    { "float4", "select 1.1::float4 as a, '-0'::float4 as b, 'NaN'::float4 as c, 'Infinity'::float4 as d, "
      .. "'-Infinity'::float4 as e, 3.4028235e38::float4 as f, 1e-45::float4 as g, 1.17549435e-38::float4 as h, "
      .. "0.1::float4 as i, 16777217::float4 as j, $1::float4 as k, 8388608::float4 as l, 1.5e-39::float4 as m, "
      .. "123.456::float4 as n, 9.8765432e-20::float4 as o", 1 / 3 },
    { "numeric", "select 0::numeric as a, '-0.00'::numeric as b, 1.50::numeric as c, -1.50 as d, 'NaN'::numeric as e, "
      .. "'Infinity'::numeric as f, '-Infinity'::numeric as g, '1e-1000'::numeric as h, '1e1000'::numeric as i, "
      .. "12345678901234567890.123456789 as j, 0.0001 as k, 10000::numeric as l, 100000000 :: numeric as m, "
      .. "-123.000 as n, 0.000000 as o, 1234.5::numeric(12, 2) as p, round(1 / 3::numeric, 50) as q, "
      .. "$1::numeric as r, 9999.9999 as s, -0.00012 as t", "-98765.4321000" },
    { "date", "select '2024-01-02'::date as a, '0044-03-15 BC'::date as b, '4714-11-24 BC'::date as c, "
      .. "'5874897-12-31'::date as d, 'infinity'::date as e, '-infinity'::date as f, '0001-01-01'::date as g, "
      .. "'0001-12-31 BC'::date as h, '2000-02-29'::date as i, '1999-12-31'::date as j, '1970-01-01'::date as k, "
      .. "'1900-03-01'::date as l, '10000-01-01'::date as m" },
    { "timestamp", "select '2024-01-02 03:04:05'::timestamp as a, '2024-01-02 03:04:05.12'::timestamp as b, "
      .. "'2024-01-02 03:04:05.000001'::timestamp as c, '2024-01-02 03:04:05.123456'::timestamp as d, "
      .. "'0044-03-15 12:00:00 BC'::timestamp as e, 'infinity'::timestamp as f, '-infinity'::timestamp as g, "
      .. "'294276-12-31 23:59:59.999999'::timestamp as h, '4714-11-24 00:00:00 BC'::timestamp as i, "
      .. "'1999-12-31 23:59:59.5'::timestamp as j, '1969-12-31 23:59:59.999'::timestamp as k, "
      .. "'0001-01-01 00:00:00 BC'::timestamp as l, '2000-01-01'::timestamp as m" },
    { "timestamptz", "select '2024-01-02 03:04:05+00'::timestamptz as a, '2024-01-02 03:04:05.12+00'::timestamptz as b, "
      .. "'2024-01-02 03:04:05.000001+00'::timestamptz as c, '0044-03-15 12:00:00+00 BC'::timestamptz as d, "
      .. "'infinity'::timestamptz as e, '-infinity'::timestamptz as f, '1999-12-31 23:59:59.5+00'::timestamptz as g, "
      .. "'2000-01-01 00:00:00+14'::timestamptz as h, '4714-11-25 00:00:00+00 BC'::timestamptz as i, "
      .. "'294276-12-30 23:59:59.999999+00'::timestamptz as j, '1969-12-31 23:59:59.999-03:30'::timestamptz as k" },
    { "arrays", "select array[1, null, 3]::int4[] as a, '{{1,2,3},{4,5,6}}'::int8[] as b, "
      .. "'{{{1,2},{3,4}},{{5,6},{7,8}}}'::int2[] as c, array['a,b', 'q\"uote', 'NULL', null, '', 'sp ace']::text[] as d, "
      .. "'{1.50,-0.001,NaN,null}'::numeric[] as e, array['2024-01-02 03:04:05.5+00'::timestamptz, null, 'infinity'] as f, "
      .. "'{2024-01-02,0044-03-15 BC}'::date[] as g, array['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid] as h, "
      .. "array['\\x00ff'::bytea, ''::bytea] as i, array['{\"k\": [1, 2]}'::jsonb, 'null'] as j, "
      .. "'{1.1,NaN,-Infinity,0.1}'::float4[] as k, '{t,f,null}'::bool[] as l, '[0:1]={1,2}'::int4[] as m, "
      .. "'{}'::int4[] as n, '[2:3][0:1]={{1,2},{3,4}}'::int4[] as o, array['x']::varchar[] as p, "
      .. "'{1.5,-0,Infinity}'::float8[] as q, array['2024-01-02 03:04:05'::timestamp] as r, "
      .. "array['{\"a\": 1}'::json] as s, array['ab'::char(3)] as t, array[4294967295::oid] as u, "
      .. "'{{null,null},{null,null}}'::int4[] as v" },
  }

  for _, case in ipairs(cases) do
    it(case[1] .. ": binary and text decode to the same values, edge values included", function()
      local sql = case[2]
      local before = bin:cache_stats().binary_results
      local b1 = assert(bin:query(sql, unpack(case, 3)))
      local b2 = assert(bin:query(sql, unpack(case, 3)))
      local t = assert(txt:query(sql, unpack(case, 3)))
      assert.is_true(bin:cache_stats().binary_results >= before + 1, "the cached statement came in binary")
      assert.are.equal(0, txt:cache_stats().binary_results)
      for _, b in ipairs { b1, b2 } do
        for k, v in pairs(t[1]) do
          assert.is_true(same(v, b[1][k]), ("%s.%s: text %s, binary %s"):format(case[1], k, tostring(v),
            tostring(b[1][k])))
        end
        for k in pairs(b[1]) do assert.is_not_nil(t[1][k], k) end
        assert.are.same(t.columns, b.columns)
      end
    end)
  end

  it("'[0:1]={1,2}' and '{}' decode as today's text does: 1-based, the bounds dropped", function()
    for _ = 1, 2 do
      local r = assert(bin:query("select '[0:1]={1,2}'::int4[] as a, '{}'::int4[] as b"))
      assert.are.same({ 1, 2 }, r[1].a)
      assert.are.same({}, r[1].b)
    end
  end)

  it("a statement with any other type (an enum, interval, time, a domain) stays text", function()
    local before = bin:cache_stats().binary_results
    for _ = 1, 2 do
      local r = assert(bin:query("select 1.50::numeric as n, now() as t, '1 day'::interval as i, 7 as x"))
      assert.are.equal("1.50", r[1].n)
      assert.are.equal("1 day", r[1].i)
    end
    assert.are.equal(before, bin:cache_stats().binary_results)
  end)

  local function compare(sql, want_binary, ...)
    local before = bin:cache_stats().binary_results
    local b1 = assert(bin:query(sql, ...))
    local b2 = assert(bin:query(sql, ...))
    local t = assert(txt:query(sql, ...))
    if want_binary then
      assert.is_true(bin:cache_stats().binary_results >= before + 1, "came in binary")
    else
      assert.are.equal(before, bin:cache_stats().binary_results, "stayed text")
    end
    for _, b in ipairs { b1, b2 } do
      for i = 1, #t do assert.is_true(same(t[i], b[i]), sql .. ": row " .. i) end
      assert.are.equal(#t, #b)
    end
  end

  local times = "select '2024-07-02 03:04:05.25+00'::timestamptz as a, '0044-03-15 12:00:00+00 BC'::timestamptz as b, "
    .. "'2024-01-02'::date as c, '2024-01-02 03:04:05'::timestamp as d, array['2024-03-04 05:06:07.891+00'::timestamptz] as e, "
    .. "'1900-01-01 00:00:00+00'::timestamptz as f"

  it("timestamptz comes in binary under fixed-offset TimeZones, shown as the server shows them", function()
    for _, tz in ipairs { "UTC", "Etc/UTC", "GMT", "Etc/GMT+5", "Etc/GMT-14", "UTC+3", "<+0530>-05:30",
                          "<-0330>+03:30" } do
      for _, c in ipairs { bin, txt } do assert(c:query("select set_config('timezone', $1, false)", tz)) end
      compare(times, true)
    end
    for _, c in ipairs { bin, txt } do assert(c:query("set time zone interval '+05:45' hour to minute")) end
    compare(times, true)
  end)

  it("timestamptz stays text under a TimeZone with rules; dates and timestamps stay text without ISO DateStyle",
    function()
      for _, c in ipairs { bin, txt } do assert(c:query("set timezone = 'Europe/Berlin'")) end
      compare(times, false)
      compare("select '2024-01-02'::date as c, '2024-01-02 03:04:05.5'::timestamp as d", true)
      for _, style in ipairs { "SQL, DMY", "German", "Postgres, MDY" } do
        for _, c in ipairs { bin, txt } do
          assert(c:query("set timezone = 'UTC'"))
          assert(c:query("set datestyle = '" .. style .. "'"))
        end
        compare(times, false)
        compare("select '2024-01-02'::date as c", false)
      end
      for _, c in ipairs { bin, txt } do assert(c:query("set datestyle = 'ISO, DMY'")) end
      compare(times, true)
    end)

  it("a statement that sets a fixed-offset TimeZone itself shows its timestamptz values in it, as text does",
    function()
      for _, c in ipairs { bin, txt } do assert(c:query("set timezone = 'UTC'")) end
      local sql = "select set_config('timezone', 'Etc/GMT+5', false) as s, "
        .. "'2024-01-01 00:00:00+00'::timestamptz as t"
      assert(bin:query(sql))
      for _, c in ipairs { bin, txt } do assert(c:query("set timezone = 'UTC'")) end
      local before = bin:cache_stats().binary_results
      local b, t = assert(bin:query(sql)), assert(txt:query(sql))
      assert.are.equal(before + 1, bin:cache_stats().binary_results)
      assert.are.equal("2023-12-31 19:00:00-05", t[1].t)
      assert.are.equal(t[1].t, b[1].t)
    end)

  it("many typical rows (uuid, text, timestamptz, numeric, int, jsonb, arrays, float4) decode the same", function()
    for _, c in ipairs { bin, txt } do assert(c:query("set timezone = 'UTC'")) end
    compare("select g as id, md5(g::text)::uuid as uid, 'name ' || g as name, "
      .. "timestamptz '2024-01-01 00:00:00+00' + g * interval '61.25 seconds' as created, "
      .. "(g * 1.25)::numeric(12, 2) as amount, (g::numeric / 7) as ratio, jsonb_build_object('k', g) as meta, "
      .. "array[g, g + 1, null] as tags, (1.0 / g)::float4 as f, power(2::float8, g % 270 - 149)::float4 as p, "
      .. "(g * 0.37)::float4 as q, date '2000-01-01' - g * 997 as d from generate_series(1, 2000) g", true)
  end)

  it("with a registered decoder, results stay text (decoders read text)", function()
    local c = server.connect()
    pg.register_type("int4", function(text) return "seen " .. text end, c)
    local before = c:cache_stats().binary_results
    assert.are.equal("seen 5", assert(c:query("select 5::int4 as v"))[1].v)
    assert.are.equal("seen 5", assert(c:query("select 5::int4 as v"))[1].v)
    assert.are.equal(before, c:cache_stats().binary_results)
    c:close()
  end)

  it("many rows of mixed types decode the same in both", function()
    local sql = "select g as id, 'name ' || g as name, g * 1.5::float8 as score, g % 2 = 0 as even, "
      .. "jsonb_build_object('k', g, 'tags', jsonb_build_array('a', 'b')) as meta, "
      .. "md5(g::text)::uuid as u, decode(md5(g::text), 'hex') as raw from generate_series(1, 2000) g"
    assert(bin:query(sql))
    local b, t = assert(bin:query(sql)), assert(txt:query(sql))
    assert.are.equal(2000, #b)
    for i = 1, #t do assert.is_true(same(t[i], b[i]), "row " .. i) end
  end)
end)
