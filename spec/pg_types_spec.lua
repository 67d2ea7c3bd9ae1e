-- Every supported type, both directions, against the real server.
local pg = require "coderunner.pg"
local server = require "support.server"

local LUAJIT = type(jit) == "table"

describe("coderunner.pg types", function()
  local conn

  setup(function()
    conn = server.connect()
  end)

  teardown(function()
    conn:close()
  end)

  local function one(sql, ...)
    local res, err = conn:query(sql, ...)
    assert(res, err)
    return res[1] and res[1].v
  end

  describe("integers", function()
    it("decodes int2, int4, int8 and oid as integers", function()
      assert.are.equal(32767, one("select 32767::int2 as v"))
      assert.are.equal(-2147483648, one("select (-2147483648)::int4 as v"))
      assert.are.equal(42, one("select 42::oid as v"))
      if not LUAJIT then
        assert.is_true(math.type(one("select 7::int8 as v")) == "integer")
      end
    end)

    it("keeps int8 limits exact on both VMs", function()
      local max, min = one("select 9223372036854775807::int8 as v"), one("select (-9223372036854775808)::int8 as v")
      if LUAJIT then
        -- beyond 2^53 a double would round: LuaJIT gets the exact decimal string
        assert.are.equal("9223372036854775807", max)
        assert.are.equal("-9223372036854775808", min)
        assert.are.equal(9007199254740992, one("select 9007199254740992::int8 as v"))
        assert.are.equal("9007199254740993", one("select 9007199254740993::int8 as v"))
      else
        assert.are.equal(math.maxinteger, max)
        assert.are.equal(math.mininteger, min)
      end
    end)

    it("sends integers exactly", function()
      assert.are.equal("9007199254740993", one("select ($1::int8)::text as v", "9007199254740993"))
      if not LUAJIT then
        assert.are.equal("9223372036854775807", one("select ($1::int8)::text as v", math.maxinteger))
        assert.are.equal("-9223372036854775808", one("select ($1::int8)::text as v", math.mininteger))
      end
      assert.are.equal(-5, one("select $1::int4 as v", -5))
      assert.are.equal(10, one("select $1::int8 as v", 10.0))
    end)
  end)

  describe("floats and numeric", function()
    it("round-trips float8 values exactly", function()
      for _, x in ipairs { 0.1, 1 / 3, -2.5e-300, 1.7976931348623157e308, 5e-324, 0 } do
        assert.are.equal(x, one("select $1::float8 as v", x))
      end
    end)

    it("handles NaN and the infinities", function()
      local nan = one("select 'NaN'::float8 as v")
      assert.is_true(nan ~= nan)
      assert.are.equal(math.huge, one("select 'Infinity'::float8 as v"))
      assert.are.equal(-math.huge, one("select '-Infinity'::float4 as v"))
      assert.are.equal(math.huge, one("select $1::float8 as v", math.huge))
      assert.are.equal(-math.huge, one("select $1::float8 as v", -math.huge))
      local sent = one("select $1::float8 as v", 0 / 0)
      assert.is_true(sent ~= sent)
    end)

    it("decodes numeric as an exact string", function()
      assert.are.equal("12345678901234567890.123456789", one("select 12345678901234567890.123456789::numeric as v"))
      assert.are.equal("NaN", one("select 'NaN'::numeric as v"))
      assert.are.equal("0.1", one("select $1::numeric as v", 0.1))
    end)
  end)

  describe("booleans, text, NULL", function()
    it("decodes and sends booleans", function()
      assert.is_true(one("select true as v"))
      assert.is_false(one("select false as v"))
      assert.is_true(one("select $1::bool as v", true))
      assert.is_false(one("select $1::bool as v", false))
    end)

    it("tells the empty string from NULL", function()
      local res = assert(conn:query("select ''::text as e, null::text as n, $1::text as p, $2::text as q", "", nil))
      assert.are.equal("", res[1].e)
      assert.is_nil(res[1].n)
      assert.are.equal("", res[1].p)
      assert.is_nil(res[1].q)
      assert.is_nil(one("select $1::int as v", pg.null))
    end)

    it("keeps multi-byte UTF-8 intact", function()
      local s = "héllo wörld — 日本語 🎉"
      assert.are.equal(s, one("select $1::text as v", s))
      assert.are.equal(19, one("select length($1::text) as v", s))
    end)

    it("stores hostile strings literally", function()
      conn:exec("create temp table hostile (s text)")
      local evil = {
        "'; drop table hostile; --", "$1", "\\", "\\x00", "E'\\n'", "%s%n", '"quoted"', "$$ dollar $$",
      }
      for _, s in ipairs(evil) do
        assert(conn:query("insert into hostile values ($1)", s))
      end
      local res = assert(conn:query("select s from hostile"))
      assert.are.equal(#evil, #res)
      for i, s in ipairs(evil) do
        assert.are.equal(s, res[i].s)
      end
    end)

    it("returns other types as the server prints them", function()
      assert.are.equal("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        one("select 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as v"))
      assert.are.equal("2024-01-02", one("select '2024-01-02'::date as v"))
      assert.are.equal("1 day 02:00:00", one("select '1 day 2 hours'::interval as v"))
      assert.matches("^2024%-01%-02 03:04:05%+00$", one("select '2024-01-02 03:04:05+00'::timestamptz at time zone 'UTC' || '+00' as v"))
    end)
  end)

  describe("json and jsonb", function()
    it("decodes objects, arrays and scalars", function()
      local v = one([[select '{"a": 1, "b": [true, null, "x"], "c": {"d": 1.5}}'::jsonb as v]])
      assert.are.equal(1, v.a)
      assert.is_true(v.b[1])
      assert.are.equal(pg.null, v.b[2])
      assert.are.equal("x", v.b[3])
      assert.are.equal(1.5, v.c.d)
      assert.are.equal("s", one([[select '"s"'::json as v]]))
      assert.are.equal(pg.null, one([[select 'null'::json as v]]))
    end)

    it("sends plain tables and pg.json values as JSON", function()
      local nested = { name = "n", tags = { "a", "b" }, meta = { deep = { deeper = { 1, 2, 3 } } }, on = false }
      local back = one("select $1::jsonb as v", nested)
      assert.are.same(nested, back)
      assert.are.equal('"just a string"', one("select $1::json::text as v", pg.json("just a string")))
      assert.are.equal("42", one("select $1::jsonb::text as v", pg.json(42)))
    end)

    it("keeps an empty array an array", function()
      local arr = one("select '[]'::jsonb as v")
      assert.are.equal(0, #arr)
      assert.are.equal("[]", one("select $1::jsonb::text as v", arr))
      assert.are.equal("{}", one("select $1::jsonb::text as v", {}))
      assert.are.equal("[]", one("select $1::jsonb::text as v", setmetatable({}, pg.json_array_mt)))
    end)

    it("refuses tables JSON cannot hold, writing nothing", function()
      local cyc = {}
      cyc.self = cyc
      for _, bad in ipairs { { [1] = 1, [3] = 3 }, { 1, x = 2 }, cyc, { f = print }, { n = 0 / 0 } } do
        local res, err = conn:query("select $1::jsonb as v", bad)
        assert.is_nil(res)
        assert.are.equal("invalid_input", err.kind)
        assert.matches("parameter %$1", err.message)
      end
    end)

    it("decodes unicode escapes and big numbers", function()
      local v = one([[select '{"s": "\u00e9\ud83c\udf89", "n": 12345678901, "f": 1e300}'::json as v]])
      assert.are.equal("é🎉", v.s)
      assert.are.equal(12345678901, v.n)
      assert.are.equal(1e300, v.f)
    end)
  end)

  describe("arrays", function()
    it("decodes one-dimensional arrays of every kind", function()
      assert.are.same({ 1, 2, 3 }, one("select array[1,2,3]::int4[] as v"))
      assert.are.same({ 1.5, -2 }, one("select array[1.5,-2]::float8[] as v"))
      assert.are.same({ true, false }, one("select array[true,false] as v"))
      assert.are.same({ "1.10", "2" }, one("select array[1.10,2]::numeric[] as v"))
      assert.are.same({}, one("select '{}'::text[] as v"))
      local j = one([[select array['{"a":1}'::jsonb, '[1]'::jsonb] as v]])
      assert.are.equal(1, j[1].a)
      assert.are.equal(1, j[2][1])
    end)

    it("handles quoting, escapes, NULLs and multi-byte text", function()
      local v = one([[select array['a,b', 'c"d', 'e\f', '', null, 'NULL', ' sp ', '日本'] as v]])
      assert.are.same({ "a,b", 'c"d', "e\\f", "", pg.null, "NULL", " sp ", "日本" }, v)
    end)

    it("sends pg.array values", function()
      local input = { "a,b", 'c"d', "e\\f", "", pg.null, "NULL", "{x}" }
      assert.are.same(input, one("select $1::text[] as v", pg.array(input)))
      assert.are.same({ 1, 2, 3 }, one("select $1::int8[] as v", pg.array { 1, 2, 3 }))
      assert.are.same({}, one("select $1::int[] as v", pg.array {}))
      assert.are.same({ { 1, 2 }, { 3, 4 } }, one("select $1::int[] as v", pg.array { { 1, 2 }, { 3, 4 } }))
      assert.are.equal(3, one("select array_length($1::bool[], 1) as v", pg.array { true, false, true }))
    end)

    it("decodes arrays with explicit bounds", function()
      assert.are.same({ 7, 8 }, one("select '[0:1]={7,8}'::int[] as v"))
    end)
  end)

  describe("bytea", function()
    it("round-trips every byte value", function()
      local bytes = {}
      for i = 0, 255 do
        bytes[#bytes + 1] = string.char(i)
      end
      local all = table.concat(bytes)
      assert.are.equal(all, one("select $1::bytea as v", pg.bytea(all)))
      assert.are.equal(256, one("select length($1::bytea) as v", pg.bytea(all)))
      assert.are.equal("", one("select $1::bytea as v", pg.bytea("")))
      assert.are.same({ "\0\1", "x" }, one([[select array['\x0001'::bytea, 'x'::bytea] as v]]))
    end)

    it("refuses NUL bytes in text parameters", function()
      local res, err = conn:query("select $1::text as v", "a\0b")
      assert.is_nil(res)
      assert.are.equal("invalid_input", err.kind)
      assert.matches("pg.bytea", err.message)
    end)
  end)

  describe("results", function()
    it("reports affected rows and the command", function()
      conn:exec("create temp table ar (x int)")
      local res = assert(conn:query("insert into ar select generate_series(1, 5)"))
      assert.are.equal(5, res.affected_rows)
      assert.are.equal("INSERT", res.command)
      res = assert(conn:query("update ar set x = x + 1 where x > $1", 2))
      assert.are.equal(3, res.affected_rows)
      res = assert(conn:query("delete from ar where x = $1", 100))
      assert.are.equal(0, res.affected_rows)
      res = assert(conn:query("select * from ar order by x"))
      assert.are.equal(5, #res)
      assert.are.equal("SELECT", res.command)
    end)

    it("takes many parameters of mixed kinds", function()
      local args, terms = {}, {}
      for i = 1, 100 do
        args[i] = i % 3 == 0 and tostring(i) or i
        terms[i] = "$" .. i .. "::int"
      end
      args[101] = { k = "v" }
      terms[101] = "($101::jsonb->>'k' = 'v')::int"
      assert.are.equal(5051, one("select " .. table.concat(terms, " + ") .. " as v", (table.unpack or unpack)(args)))
    end)

    it("refuses parameters it cannot encode", function()
      for _, bad in ipairs { print, coroutine.create(print), io.stdout } do
        local res, err = conn:query("select $1 as v", bad)
        assert.is_nil(res)
        assert.are.equal("invalid_input", err.kind)
      end
    end)
  end)
end)
