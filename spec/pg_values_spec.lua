-- Issue 7: every value right, every secret kept. Each describe below is one
-- class of the issue, shown against the real server on the VM running it.
local pg = require "coderunner.pg"
local cjson = require "cjson"
local server = require "support.server"

local LUAJIT = type(jit) == "table"
local VM = os.getenv("CODERUNNER_LUA") or (LUAJIT and "luajit" or "lua5.4")

describe("issue 7: values", function()
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

  describe("the statement cache keys by SQL and parameter types", function()
    it("gives the same SQL with other parameter kinds the fresh-connection answer", function()
      local c = server.connect()
      assert.are.equal("\0", c:query("SELECT $1 AS v", pg.bytea("\0"))[1].v)
      assert.are.equal("\\x41", c:query("SELECT $1 AS v", "\\x41")[1].v) -- text, not bytea "A"
      assert.are.equal(2, c:cache_stats().entries)
      c:close()
    end)

    it("answers length($1) the same whatever ran before", function()
      local fresh = server.connect()
      local text_first = assert(fresh:query("SELECT length($1) AS v", "\\x4142"))[1].v
      fresh:close()
      local c = server.connect()
      assert.are.equal(2, c:query("SELECT length($1) AS v", pg.bytea("AB"))[1].v)
      assert.are.equal(text_first, c:query("SELECT length($1) AS v", "\\x4142")[1].v)
      assert.are.equal(6, text_first)
      c:close()
    end)

    it("runs the reverse order without 22021", function()
      local c = server.connect()
      assert.are.equal("\\x00ff", c:query("SELECT $1 AS v", "\\x00ff")[1].v)
      local res, err = c:query("SELECT $1 AS v", pg.bytea("\0\255"))
      assert(res, err)
      assert.are.equal("\0\255", res[1].v)
      c:close()
    end)
  end)

  describe("pg.array", function()
    it("takes pg.bytea, pg.json and pg.null as elements, not dimensions", function()
      assert.are.same({ "a\0b", pg.null, "" }, one("SELECT $1::bytea[] AS v", pg.array { pg.bytea("a\0b"), pg.null, pg.bytea("") }))
      assert.are.equal(1, one("SELECT array_ndims($1::bytea[]) AS v", pg.array { pg.bytea("x") }))
      local j = one("SELECT $1::jsonb[] AS v", pg.array { pg.json { a = 1 }, pg.json { 1, 2 }, pg.json("s"), pg.null })
      assert.are.equal(1, j[1].a)
      assert.are.same({ 1, 2 }, { j[2][1], j[2][2] })
      assert.are.equal("s", j[3])
      assert.are.equal(pg.null, j[4])
      assert.are.equal('{"{\\"a\\": 1}"}', one("SELECT $1::jsonb[]::text AS v", pg.array { pg.json { a = 1 } }))
      assert.are.same({ { "a", pg.null }, { pg.null, "b" } }, one("SELECT $1::text[] AS v", pg.array { { "a", pg.null }, { pg.null, "b" } }))
    end)

    it("refuses ragged nested tables before sending anything", function()
      conn:exec("CREATE TEMP TABLE ragged (a text[])")
      for _, bad in ipairs {
        { { { "a" } }, { "b" } },
        { { "a", "b" }, { "c" } },
        { "a", { "b" } },
        { { "a" }, "b" },
        { { 1, 2 }, {} },
        { { a = 1 } },
        { { { { { { { 1 } } } } } } },
      } do
        local res, err = conn:query("INSERT INTO ragged VALUES ($1)", pg.array(bad))
        assert.is_nil(res)
        assert.are.equal("invalid_input", err.kind)
        assert.matches("parameter %$1", err.message)
      end
      assert.are.equal(0, one("SELECT count(*)::int AS v FROM ragged"))
    end)

    it("encodes and decodes element types whose delimiter is not a comma (box uses ';')", function()
      local boxes = { "(1,1),(0,0)", "(3,3),(2,2)" }
      assert.are.same(boxes, one("SELECT $1::box[] AS v", pg.array(boxes)))
      assert.are.equal(2, one("SELECT array_length($1::box[], 1) AS v", pg.array(boxes)))
      assert.are.same({ { "(1,1),(0,0)" }, { "(2,2),(1,1)" } }, one("SELECT '{{(1,1),(0,0)};{(2,2),(1,1)}}'::box[] AS v"))
      conn:exec("CREATE TEMP TABLE boxes (b box[])")
      assert(conn:query("INSERT INTO boxes VALUES ($1)", pg.array(boxes)))
      assert.are.same(boxes, one("SELECT b AS v FROM boxes"))
    end)
  end)

  describe("floats", function()
    local function bits(x) return string.format("%a", x) end

    it("round-trip bit for bit, -0.0 included", function()
      for _, x in ipairs { 0.1, 1 / 3, 2 / 3, 1e-310, 5e-324, 1.7976931348623157e308, 123456.789e-20,
        0.30000000000000004, -2.5e-300, 4.35, 1e21 + 2 ^ 20 + 0.5 * 0, 2 ^ -1074 } do
        local back = one("SELECT $1 AS v", x)
        assert.are.equal(bits(x), bits(back))
        assert.are.equal(bits(x), bits(one("SELECT $1::float8 AS v", x)))
      end
      local z = one("SELECT $1 AS v", -0.0)
      assert.are.equal(0, z)
      assert.are.equal(-math.huge, 1 / z)
      assert.are.equal("-0", one("SELECT $1::float8::text AS v", -0.0))
      assert.are.equal("double precision", one("SELECT pg_typeof($1)::text AS v", -0.0))
      local nan = one("SELECT $1 AS v", 0 / 0)
      assert.is_true(nan ~= nan)
    end)

    it("sends integral floats as integers, the same on both VMs (1e15 reaches int8)", function()
      assert.are.equal("integer", one("SELECT pg_typeof($1)::text AS v", 3.0))
      assert.are.equal("bigint", one("SELECT pg_typeof($1)::text AS v", 1e15))
      assert.are.equal("1000000000000000", one("SELECT ($1::int8)::text AS v", 1e15))
      assert.are.equal("1000000000000000", one("SELECT $1::numeric::text AS v", 1e15))
      assert.are.equal("double precision", one("SELECT pg_typeof($1)::text AS v", 2.5))
      assert.are.equal("double precision", one("SELECT pg_typeof($1)::text AS v", 2 ^ 70))
    end)
  end)

  describe("bytea in text results", function()
    it("decodes small and large values alike (hex and escape output)", function()
      local c = server.connect()
      for _, n in ipairs { 0, 1, 85, 170, 171, 172, 1700 } do -- 3n bytes: around the 512-byte scratch
        local want = string.rep("\0\255a", n)
        for _, fmt in ipairs { "hex", "escape" } do
          assert(c:exec("SET bytea_output = " .. fmt))
          -- exec: the simple protocol, results in text
          local res = assert(c:exec(string.format("SELECT decode(repeat('00ff61', %d), 'hex') AS v", n)))
          assert.are.equal(want, res[1].v)
        end
      end
      c:close()
    end)
  end)

  describe("JSON the server accepted", function()
    it("decodes nesting as deep as the server allows", function()
      local n = 10000
      local v = one("SELECT (repeat('[', $1) || repeat(']', $1))::json AS v", n)
      local depth = 0
      while type(v) == "table" do
        depth = depth + 1
        v = v[1]
      end
      assert.are.equal(n, depth)
      local o = one([[SELECT (repeat('{"k":', $1) || '1' || repeat('}', $1))::jsonb AS v]], 5000)
      for _ = 1, 5000 do o = o.k end
      assert.are.equal(1, o)
    end)

    it("decodes a lone surrogate escape as U+FFFD", function()
      assert.are.equal("a\239\191\189b", one([[SELECT '"a\ud800b"'::json AS v]]))
      assert.are.equal("\239\191\189", one([[SELECT '"\udc00"'::json AS v]]))
      assert.are.same({ s = "\239\191\189\240\159\152\128" }, one([[SELECT '{"s": "\udfff\ud83d\ude00"}'::json AS v]]))
      assert.are.equal("\0", one([[SELECT '"\u0000"'::json AS v]]))
    end)

    it("returns an error naming the column, never a raw string, for JSON it cannot decode", function()
      -- a SQL_ASCII database hands out bytes that are not UTF-8 inside json
      local conninfo = "dbname=coderunner_sql_ascii client_encoding=SQL_ASCII"
      local admin = server.connect()
      assert(admin:exec("DROP DATABASE IF EXISTS coderunner_sql_ascii WITH (FORCE)"))
      assert(admin:exec("CREATE DATABASE coderunner_sql_ascii ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"))
      local c = assert(pg.connect(conninfo))
      local res, err = c:query([[SELECT 1 AS id, convert_from('\x22ff22', 'SQL_ASCII')::json AS doc]])
      assert.is_nil(res)
      assert.are.equal("server", err.kind)
      assert.matches('column "doc" %(json%)', err.message)
      assert.are.equal(1, c:query("SELECT 1 AS v")[1].v) -- the connection carries on
      c:close()
      assert(admin:exec("DROP DATABASE coderunner_sql_ascii"))
      admin:close()
    end)
  end)

  describe("every array type, enum and domain", function()
    setup(function()
      assert(conn:exec([[
        DROP TYPE IF EXISTS v7_mood CASCADE;
        DROP DOMAIN IF EXISTS v7_posint CASCADE;
        DROP DOMAIN IF EXISTS v7_moods CASCADE;
        CREATE TYPE v7_mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN v7_posint AS int CHECK (VALUE > 0);
        CREATE DOMAIN v7_moods AS v7_mood[];
      ]]))
    end)

    it("decodes our own schema's deployment_status[] to a Lua array", function()
      local dbname = "coderunner_values_schema"
      local c = assert(pg.connect(server.fresh_database(dbname)))
      assert(require("coderunner.migrate").up(c, { dir = "migrations" }))
      assert.are.same({ "pending", "failed" }, c:query("SELECT '{pending,failed}'::deployment_status[] AS v")[1].v)
      assert.are.same({ "running" }, c:query("SELECT array_agg(s) AS v FROM (SELECT 'running'::deployment_status AS s) x")[1].v)
      assert.are.equal("building", c:query("SELECT $1::deployment_status AS v", "building")[1].v)
      c:close()
    end)

    it("decodes enums and domains as their base type, and arrays of them", function()
      assert.are.equal("ok", one("SELECT 'ok'::v7_mood AS v"))
      assert.are.same({ "sad", pg.null, "happy" }, one("SELECT '{sad,NULL,happy}'::v7_mood[] AS v"))
      assert.are.equal(5, one("SELECT 5::v7_posint AS v"))
      assert.are.same({ 1, 2 }, one("SELECT '{1,2}'::v7_posint[] AS v"))
      assert.are.same({ "ok", "happy" }, one("SELECT '{ok,happy}'::v7_moods AS v"))
      assert.are.same({ "ok" }, one("SELECT $1::v7_mood[] AS v", pg.array { "ok" }))
    end)

    it("decodes arrays of types outside the built-in list element-wise", function()
      assert.are.same({ "10:00:00+02", "23:59:59-05" }, one("SELECT '{10:00+02,23:59:59-05}'::timetz[] AS v"))
      assert.are.same({ "08:00:2b:01:02:03" }, one("SELECT '{08:00:2b:01:02:03}'::macaddr[] AS v"))
      assert.are.same({ "[1,3)", "empty" }, one("SELECT ARRAY['[1,2]'::int4range, 'empty']::int4range[] AS v"))
      assert.are.same({ "<a>x</a>", "<b/>" }, one("SELECT ARRAY['<a>x</a>'::xml, '<b/>'] AS v"))
      assert.are.same({ "(1,2)" }, one("SELECT ARRAY[point(1,2)] AS v"))
      assert.are.same({ "1.00", "12.50" }, one("SELECT '{1,12.5}'::numeric(6,2)[] AS v"))
      assert.are.same({ "(1,x)", "(2,)" }, one("SELECT ARRAY[ROW(1,'x'), ROW(2,NULL)] AS v"))
      assert.are.equal("1 2", one("SELECT '1 2'::int2vector AS v")) -- not an array_out type: text
    end)
  end)

  describe("pg.register_type", function()
    local function parse_point(text)
      local x, y = text:match("^%(([^,]+),([^)]+)%)$")
      return { x = tonumber(x), y = tonumber(y) }
    end

    it("maps a type (by name, resolved through the server) and its arrays for one connection", function()
      local c = server.connect()
      assert.is_true(pg.register_type("point", parse_point, c))
      assert.are.same({ x = 1, y = 2.5 }, c:query("SELECT point(1, 2.5) AS v")[1].v)
      assert.are.same({ { x = 1, y = 2 }, pg.null, { x = 3, y = 4 } },
        c:query("SELECT ARRAY[point(1,2), NULL, point(3,4)] AS v")[1].v)
      assert.are.equal("(1,2)", one("SELECT point(1, 2) AS v")) -- other connections: untouched
      c:close()
    end)

    it("registers module-wide by name or OID, and through a pool", function()
      local seen = {}
      assert.is_true(pg.register_type("public.v7_mood", function(text, oid)
        seen[#seen + 1] = oid
        return text:upper()
      end))
      assert.are.equal("HAPPY", one("SELECT 'happy'::v7_mood AS v"))
      assert.are.same({ "SAD", "OK" }, one("SELECT '{sad,ok}'::v7_mood[] AS v"))
      assert.are.equal(one("SELECT 'v7_mood'::regtype::oid::int AS v"), seen[1])
      pg.register_type("public.v7_mood", nil)
      assert.are.equal("happy", one("SELECT 'happy'::v7_mood AS v"))

      local oid = one("SELECT 'int4range'::regtype::oid::int AS v")
      local pool = assert(pg.pool { conninfo = "", min = 0, max = 1 })
      pg.register_type(oid, function(text)
        local lo, hi = text:match("^%[(%-?%d+),(%-?%d+)%)$")
        return { lo = tonumber(lo), hi = tonumber(hi) }
      end, pool)
      assert.are.same({ lo = 1, hi = 5 }, pool:query("SELECT int4range(1, 5) AS v")[1].v)
      assert.are.same({ lo = 2, hi = 3 }, pool:transaction(function(tx)
        return tx:query("SELECT int4range(2, 3) AS v")[1].v
      end))
      assert.are.equal("[1,5)", one("SELECT int4range(1, 5) AS v"))
      pool:close()
      assert.has_error(function() pg.register_type({}, print) end)
      assert.has_error(function() pg.register_type("x", 42) end)
    end)
  end)

  describe("typed parameters", function()
    it("sends booleans as bool", function()
      assert.is_true(one("SELECT $1 AS v", true))
      assert.is_false(one("SELECT $1 AS v", false))
      assert.are.equal("boolean", one("SELECT pg_typeof($1)::text AS v", true))
      assert.is_true(one("SELECT $1 AND true AS v", true))
    end)

    it("types integers by size so that each common use works", function()
      assert.are.equal(4, one("SELECT $1 + $1 AS v", 2))
      assert.are.equal(6000000000, one("SELECT $1 + $1 AS v", 3000000000))
      assert.are.equal(5.0, one("SELECT $1 + $1 AS v", 2.5))
      assert.are.equal("bc", one("SELECT substr('abc', $1) AS v", 2))
      assert.are.equal("b", one("SELECT substr('abc', $1, $2) AS v", 2, 1))
      local limited = assert(conn:query("SELECT g AS v FROM generate_series(1, 10) g LIMIT $1 OFFSET $2", 3, 1))
      assert.are.equal(3, #limited)
      assert.are.equal(2, limited[1].v)
      assert.are.equal("2.5", one("SELECT $1::numeric AS v", 2.5))
      assert.are.equal("7", one("SELECT $1::numeric AS v", 7))
      assert.are.equal("integer", one("SELECT pg_typeof($1)::text AS v", 7))
      assert.are.equal("bigint", one("SELECT pg_typeof($1)::text AS v", 2 ^ 40))
      assert.are.equal("5", one("SELECT $1::text AS v", 5))
      assert.are.equal("5x", one("SELECT $1 || 'x' AS v", 5))
    end)

    it("compares and inserts into every numeric column type", function()
      conn:exec([[CREATE TEMP TABLE nums (i2 int2, i4 int4, i8 int8, n numeric, n2 numeric(10,2),
        f4 float4, f8 float8, o oid)]])
      assert(conn:query("INSERT INTO nums VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", 7, 7, 7, 7, 7, 7, 7, 7))
      assert(conn:query("INSERT INTO nums VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", -3, 2147483647, 2 ^ 40, 2.5, 2.25, 0.5, 0.1, 4000000000))
      local res = assert(conn:query("SELECT * FROM nums WHERE i4 = $1", 7))
      assert.are.same({ i2 = 7, i4 = 7, i8 = 7, n = "7", n2 = "7.00", f4 = 7, f8 = 7, o = 7 }, res[1])
      res = assert(conn:query("SELECT * FROM nums WHERE i2 = $1 AND i8 = $2 AND f8 = $3 AND o = $4", -3, 2 ^ 40, 0.1, 4000000000))
      assert.are.same({ i2 = -3, i4 = 2147483647, i8 = 2 ^ 40, n = "2.5", n2 = "2.25", f4 = 0.5, f8 = 0.1, o = 4000000000 }, res[1])
      assert.are.equal(2, one("SELECT count(*)::int AS v FROM nums WHERE n >= $1 AND f4 < $2", 2, 8))
      local bad, err = conn:query("INSERT INTO nums (i2) VALUES ($1)", 70000)
      assert.is_nil(bad) -- the server refuses, nothing wraps around
      assert.are.equal("22003", err.sqlstate)
    end)

    it("still leaves strings untyped, so they fit any column", function()
      assert.are.equal(12, one("SELECT $1::int AS v", "12"))
      assert.are.equal("2024-01-02", one("SELECT $1::date::text AS v", "2024-01-02"))
    end)
  end)

  describe("pg.null", function()
    it("is the light userdata NULL, the same value as cjson.null", function()
      assert.are.equal("userdata", type(pg.null))
      assert.is_true(require("cjson").null == pg.null)
      assert.is_true(rawequal(cjson.null, pg.null))
    end)

    it("accepts cjson.null as a parameter", function()
      assert.is_nil(one("SELECT $1::int AS v", cjson.null))
      assert.are.same({ 1, pg.null }, one("SELECT $1::int[] AS v", pg.array { 1, cjson.null }))
      assert.are.equal("[1, null]", one("SELECT $1::jsonb::text AS v", { 1, cjson.null }))
    end)

    it("lets lua-cjson encode decoded results holding NULL", function()
      local res = assert(conn:query([[SELECT '{"a": null, "b": [1, null]}'::jsonb AS j, ARRAY[1, NULL] AS a]]))
      local doc = cjson.decode(cjson.encode(res[1]))
      assert.are.equal(cjson.null, doc.j.a)
      assert.are.same({ 1, cjson.null }, doc.a)
      assert.are.equal(cjson.null, doc.j.b[2])
    end)
  end)

  describe("res.columns", function()
    it("lists every column in order with its type, duplicate names kept", function()
      local res = assert(conn:query("SELECT 1 AS a, 'x'::text AS a, 2.5::float8 AS b, ARRAY[1] AS c, 'ok'::v7_mood AS m"))
      assert.are.same({
        { name = "a", type_oid = 23, type = "int4" },
        { name = "a", type_oid = 25, type = "text" },
        { name = "b", type_oid = 701, type = "float8" },
        { name = "c", type_oid = 1007, type = "_int4" },
        { name = "m", type_oid = one("SELECT 'v7_mood'::regtype::oid::int AS v"), type = "v7_mood" },
      }, res.columns)
      assert.are.same({}, assert(conn:query("CREATE TEMP TABLE IF NOT EXISTS nocols (x int)")).columns)
      assert.are.equal(0, #assert(conn:query("SELECT 1 AS v WHERE false")))
      assert.are.equal("v", assert(conn:query("SELECT 1 AS v WHERE false")).columns[1].name)
    end)
  end)

  describe("client_encoding", function()
    local function show(c) return c:query("SHOW client_encoding")[1].client_encoding end

    it("is UTF8 unless the conninfo, the URL or PGCLIENTENCODING asks otherwise", function()
      local c = assert(pg.connect(""))
      assert.are.equal("UTF8", show(c))
      c:close()
      c = assert(pg.connect("client_encoding=LATIN1"))
      assert.are.equal("LATIN1", show(c))
      c:close()
      local url = ("postgresql://%s@%s:%s/%s?client_encoding=LATIN1"):format(os.getenv("PGUSER") or "postgres",
        (os.getenv("PGHOST") or "localhost"):gsub("/", "%%2F"), os.getenv("PGPORT") or "5432", os.getenv("PGDATABASE") or "postgres")
      c = assert(pg.connect(url))
      assert.are.equal("LATIN1", show(c))
      c:close()
      local p = assert(io.popen(("PGCLIENTENCODING=LATIN1 %s -e %q 2>&1"):format(VM,
        "local c = assert(require'coderunner.pg'.connect('')) io.write(c:query('SHOW client_encoding')[1].client_encoding)")))
      assert.are.equal("LATIN1", p:read("*a"))
      p:close()
    end)
  end)

  describe("errors that name the right cause", function()
    it("checks the parameter count before sending: invalid_input, and the connection stays", function()
      local pool = assert(pg.pool { conninfo = "", min = 1, max = 1 })
      local res, err = pool:query("SELECT $1::int AS v")
      assert.is_nil(res)
      assert.are.equal("invalid_input", err.kind)
      assert.matches("takes 1 parameter", err.message)
      res, err = pool:query("SELECT 1 AS v", 1, 2)
      assert.is_nil(res)
      assert.are.equal("invalid_input", err.kind)
      res, err = pool:query("SELECT $2::int AS v", 1)
      assert.is_nil(res)
      assert.are.equal("invalid_input", err.kind)
      -- $n inside quotes, comments and dollar quotes, and a$1 identifiers, do not count
      assert.are.equal("$1 $2", pool:query([[SELECT '$1 $2' /* $3 */ AS v -- $4
        ]])[1].v)
      assert.are.equal(3, pool:query("SELECT $1::int + length($$ $9 $$) - 2 AS v", 1)[1].v)
      local st = pool:stats()
      assert.are.equal(0, st.errors.closed or 0)
      assert.are.equal(1, st.connections_opened)
      assert.are.equal(1, pool:query("SELECT 1 AS v")[1].v)
      pool:close()
    end)

    it("reports a protocol violation (08P01) on a live connection as server, not closed", function()
      local c = server.connect()
      assert.are.equal("abc", c:query("SELECT $1 AS v", pg.bytea("abc"))[1].v) -- prepared as crpg_0
      -- behind the cache's back, the same name now takes an int4: binding 3 bytes
      -- of binary data to it is "insufficient data left in message"
      assert(c:exec("DEALLOCATE ALL; PREPARE crpg_0 (int4) AS SELECT $1 AS v"))
      local res, err = c:query("SELECT $1 AS v", pg.bytea("abc"))
      assert.is_nil(res)
      assert.are.equal("08P01", err.sqlstate)
      assert.are.equal("server", err.kind)
      assert.are.equal(1, c:query("SELECT 1 AS v")[1].v) -- the connection is fine
      c:close()
    end)

    it("reports kind closed only when the connection is lost", function()
      local c = server.connect()
      local pid = c:backend_pid()
      local admin = server.connect()
      assert(admin:query("SELECT pg_terminate_backend($1)", pid))
      admin:close()
      server.eventually(function() return true end, 0)
      local res, err = c:query("SELECT 1 AS v")
      assert.is_nil(res)
      assert.are.equal("closed", err.kind)
      c:close()
    end)
  end)
end)
