-- Binary results: cached statements whose every column is of a type the core
-- reads in binary (int2/4/8, oid, float8, bool, bytea, uuid, text, varchar,
-- bpchar, name, json, jsonb) come in binary; the values are exactly those the
-- text format gives.
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

  it("a statement with any other type (numeric, timestamptz, float4, arrays, enums) stays text", function()
    local before = bin:cache_stats().binary_results
    for _ = 1, 2 do
      local r = assert(bin:query("select 1.50::numeric as n, now() as t, 1.1::float4 as f, array[1, 2] as a, 7 as i"))
      assert.are.equal("1.50", r[1].n)
      assert.are.equal(1.1, r[1].f)
      assert.are.same({ 1, 2 }, r[1].a)
    end
    assert.are.equal(before, bin:cache_stats().binary_results)
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
