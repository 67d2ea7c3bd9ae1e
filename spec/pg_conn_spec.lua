-- Connections: connecting, errors, the statement cache, lifecycle, logging.
local pg = require "coderunner.pg"
local server = require "support.server"

local function env(name)
  return os.getenv(name) or ""
end

describe("coderunner.pg connections", function()
  describe("connect", function()
    it("connects from the PG* environment, keywords and a URL", function()
      local a = assert(pg.connect(""))
      assert.are.equal(1, a:query("select 1 as one")[1].one)
      a:close()
      local kw = string.format("host=%s port=%s dbname=%s", env "PGHOST", env "PGPORT", env "PGDATABASE")
      local b = assert(pg.connect(kw))
      assert.are.equal(env "PGDATABASE", b:query("select current_database() as d")[1].d)
      b:close()
      local url = string.format("postgresql://%s:%s@localhost:%s/%s", env "PGUSER", env "PGPASSWORD",
        env "PGPORT", env "PGDATABASE")
      local c, err = pg.connect(url)
      assert(c, err)
      assert.matches("^%d+$", c:parameter("server_version_num") or tostring(c:server_version()))
      assert.is_true(c:server_version() >= 130000)
      c:close()
    end)

    it("fails with kind connect, and never shows the password", function()
      local conn, err = pg.connect("postgresql://someone:s3cr3t-pw@127.0.0.1:1/db", { connect_timeout = 2 })
      assert.is_nil(conn)
      assert.are.equal("connect", err.kind)
      assert.is_nil(tostring(err):find("s3cr3t", 1, true))
      conn, err = pg.connect("host=127.0.0.1 port=1 password=s3cr3t-pw connect_timeout=1")
      assert.is_nil(conn)
      assert.are.equal("connect", err.kind)
      assert.is_nil(err.message:find("s3cr3t", 1, true))
      conn, err = pg.connect("password=s3cr3t-pw user=nobody_like_this")
      assert.is_nil(conn)
      assert.is_nil(err.message:find("s3cr3t", 1, true))
    end)

    it("refuses an unparsable conninfo with kind invalid_input, as pg.pool does", function()
      local conn, err = pg.connect("this is = not valid '")
      assert.is_nil(conn)
      assert.are.equal("invalid_input", err.kind) -- issue 7: checked before connecting
    end)

    it("times out connecting to a server that never answers", function()
      -- a socket that accepts connections and never speaks
      local listener = assert(io.popen([[python3 -c "
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(3)"]]))
      local port = assert(listener:read("*l"))
      local started = os.time()
      local conn, err = pg.connect("host=127.0.0.1 port=" .. port, { connect_timeout = 0.3 })
      assert.is_nil(conn)
      assert.are.equal("timeout", err.kind) -- issue 7: a connect_timeout is kind timeout
      assert.matches("timed out", err.message)
      assert.is_true(os.time() - started <= 2)
      listener:close()
    end)

    it("tostring names the server, never the password", function()
      local conn = server.connect()
      local s = tostring(conn)
      assert.matches("^coderunner%.pg%.conn %(", s)
      if env "PGPASSWORD" ~= "" then
        assert.is_nil(s:find(env "PGPASSWORD", 1, true))
      end
      conn:close()
      assert.are.equal("coderunner.pg.conn (closed)", tostring(conn))
    end)
  end)

  describe("lifecycle", function()
    it("closes idempotently and raises on use after close", function()
      local conn = server.connect()
      assert.is_true(conn:close())
      assert.is_true(conn:close())
      assert.is_true(conn:is_closed())
      assert.has_error(function() conn:query("select 1") end, "attempt to use a closed connection")
      assert.has_error(function() conn:exec("select 1") end)
    end)

    it("is closed by the garbage collector", function()
      local before = server.connect()
      local count = function()
        return before:query("select count(*)::int as n from pg_stat_activity where application_name = 'coderunner-db'")[1].n
      end
      local n0 = count()
      do
        local c = server.connect()
        assert.are.equal(n0 + 1, count())
        assert.is_false(c:is_closed()) -- the last use; it is garbage after this block
      end
      collectgarbage()
      collectgarbage()
      assert.is_truthy(server.eventually(function() return count() == n0 end))
      before:close()
    end)

    if _VERSION == "Lua 5.4" then
      it("supports to-be-closed variables", function()
        local chunk = assert(load([[
          local server = ...
          local kept
          do
            local conn <close> = server.connect()
            kept = conn
          end
          return kept:is_closed()
        ]]))
        assert.is_true(chunk(server))
      end)
    end

    it("raises for programmer errors", function()
      local conn = server.connect()
      assert.has_error(function() conn:query() end)
      assert.has_error(function() conn:query(42 and {}) end)
      assert.has_error(function() pg.connect("", { statement_cache = "x" }) end)
      conn:close()
    end)
  end)

  describe("errors", function()
    local conn
    setup(function()
      conn = server.connect()
      assert(conn:exec("drop table if exists errs; create table errs (id int primary key, n int check (n > 0))"))
    end)
    teardown(function()
      conn:exec("drop table if exists errs")
      conn:close()
    end)

    it("carries SQLSTATE and libpq's fields", function()
      local res, err = conn:query("select * from no_such_table")
      assert.is_nil(res)
      assert.are.equal("server", err.kind)
      assert.are.equal("42P01", err.sqlstate)
      assert.are.equal("ERROR", err.severity)
      assert.are.equal(15, err.position)
      assert.matches("no_such_table", err.message)
      assert.are.equal('server: relation "no_such_table" does not exist (SQLSTATE 42P01)', tostring(err))
      assert.is_true(pg.is_error(err))
    end)

    it("maps unique violations to conflict with the constraint", function()
      assert(conn:query("insert into errs values (1, 1)"))
      local res, err = conn:query("insert into errs values ($1, $2)", 1, 1)
      assert.is_nil(res)
      assert.are.equal("conflict", err.kind)
      assert.are.equal("23505", err.sqlstate)
      assert.are.equal("errs_pkey", err.constraint)
      assert.are.equal("errs", err.table)
      assert.matches("Key %(id%)=%(1%)", err.detail)
      -- the detail may quote row values: tostring leaves it out
      assert.is_nil(tostring(err):find("Key (id)", 1, true))
    end)

    it("reports check violations with the constraint name", function()
      local _, err = conn:query("insert into errs values (2, -1)")
      assert.are.equal("server", err.kind)
      assert.are.equal("23514", err.sqlstate)
      assert.are.equal("errs_n_check", err.constraint)
    end)

    it("maps statement timeouts to timeout", function()
      assert(conn:query("set statement_timeout = 50"))
      local _, err = conn:query("select pg_sleep(2)")
      assert.are.equal("timeout", err.kind)
      assert.are.equal("57014", err.sqlstate)
      assert(conn:query("set statement_timeout = 0"))
    end)

    it("works with assert()", function()
      local ok, msg = pcall(function()
        assert(conn:query("select 1/0"))
      end)
      assert.is_false(ok)
      assert.matches("division by zero", tostring(msg))
    end)

    it("builds Lua-side errors with pg.error", function()
      local err = pg.error { kind = "invalid_input", message = "email is not valid", field = "email" }
      assert.are.equal("invalid_input: email is not valid", tostring(err))
      assert.are.equal("email", err.field)
      assert.has_error(function() pg.error { kind = "nope", message = "x" } end)
      assert.has_error(function() pg.error { kind = "server" } end)
    end)

    it("accepts error kinds the Lua layers register, and only well-formed names", function()
      assert.has_error(function() pg.error { kind = "spec_refusal", message = "x" } end)
      assert.are.equal("spec_refusal", pg.register_error_kind("spec_refusal"))
      assert.are.equal("spec_refusal", pg.register_error_kind("spec_refusal")) -- idempotent
      local err = pg.error { kind = "spec_refusal", message = "not now" }
      assert.is_true(pg.is_error(err))
      assert.are.equal("spec_refusal: not now", tostring(err))
      assert.has_error(function() pg.register_error_kind("Bad Kind") end)
      assert.has_error(function() pg.register_error_kind("") end)
      assert.has_error(function() pg.register_error_kind({}) end)
    end)

    it("tells the core's facts about a SQLSTATE with pg.sqlstate_info", function()
      local function info(code, msg) return pg.sqlstate_info(code, msg) end
      assert.are.same({ kind = "conflict", retryable = false, stale_plan = false, rejects_value = false }, info("23505"))
      assert.are.equal("timeout", info("57014").kind)
      assert.are.equal("closed", info("08006").kind)
      assert.are.equal("closed", info("57P01").kind)
      assert.is_true(info("40001").retryable)
      assert.is_true(info("40P01").retryable)
      assert.are.equal("server", info("40001").kind)
      assert.is_true(info("26000").stale_plan)
      assert.is_true(info("0A000", "cached plan must not change result type").stale_plan)
      assert.is_false(info("0A000", "COPY is not supported").stale_plan)
      for _, code in ipairs { "23514", "22P02", "23503", "23502", "22001" } do
        assert.is_true(info(code).rejects_value, code)
      end
      assert.are.same({ kind = "server", retryable = false, stale_plan = false, rejects_value = false }, info("42P01"))
      assert.has_error(function() pg.sqlstate_info() end)
    end)

    it("runs scripts with exec and stops at the first error", function()
      local res = assert(conn:exec("create temp table s1 (x int); insert into s1 values (1), (2); select count(*)::int as n from s1"))
      assert.are.equal(2, res[1].n)
      local _, err = conn:exec("insert into s1 values (3); select nope; insert into s1 values (4)")
      assert.are.equal("42703", err.sqlstate)
      -- a multi-statement script runs in one implicit transaction: nothing stays
      assert.are.equal(2, conn:query("select count(*)::int as n from s1")[1].n)
    end)

    it("refuses COPY through query", function()
      local _, err = conn:query("copy (select 1) to stdout")
      assert.are.equal("invalid_input", err.kind)
      assert.are.equal(1, conn:query("select 1 as x")[1].x) -- still usable
    end)
  end)

  describe("statement cache", function()
    it("prepares once and reuses, per SQL text", function()
      local conn = assert(pg.connect("", { statement_cache = 4 }))
      for i = 1, 5 do
        assert.are.equal(i, conn:query("select $1::int as v", i)[1].v)
      end
      local st = conn:cache_stats()
      assert.are.equal(1, st.misses)
      assert.are.equal(4, st.hits)
      assert.are.equal(1, st.entries)
      local prepared = conn:query("select count(*)::int as n from pg_prepared_statements")[1].n
      assert.are.equal(2, prepared) -- the two statements above
      conn:close()
    end)

    it("evicts the least recently used statement", function()
      local conn = assert(pg.connect("", { statement_cache = 2 }))
      conn:query("select 1 as a")
      conn:query("select 2 as b")
      conn:query("select 1 as a") -- a is now the most recent
      conn:query("select 3 as c") -- evicts b
      assert.are.equal(2, conn:cache_stats().entries)
      -- exec uses the simple protocol: it does not touch the cache
      local names = conn:exec("select statement from pg_prepared_statements order by statement")
      local texts = {}
      for _, row in ipairs(names) do
        texts[#texts + 1] = row.statement
      end
      assert.is_truthy(table.concat(texts, "|"):find("select 1 as a", 1, true))
      assert.is_falsy(table.concat(texts, "|"):find("select 2 as b", 1, true))
      conn:close()
    end)

    it("can be turned off", function()
      local conn = assert(pg.connect("", { statement_cache = 0 }))
      conn:query("select 1 as a")
      conn:query("select 1 as a")
      assert.are.same({ size = 0, entries = 0, hits = 0, misses = 0, replans = 0, binary_results = 0 }, conn:cache_stats())
      assert.are.equal(0, conn:query("select count(*)::int as n from pg_prepared_statements")[1].n)
      conn:close()
    end)

    it("re-prepares transparently when the result type changes", function()
      local conn = server.connect()
      assert(conn:exec("drop table if exists stale; create table stale (a int); insert into stale values (1)"))
      assert.are.same({ a = 1 }, conn:query("select * from stale")[1])
      assert(conn:exec("alter table stale add column b text default 'x'"))
      local res, err = conn:query("select * from stale")
      assert(res, err)
      assert.are.same({ a = 1, b = "x" }, res[1])
      assert.are.equal(1, conn:cache_stats().replans)
      assert(conn:exec("drop table stale"))
      conn:close()
    end)

    it("reports a stale plan inside a transaction and recovers after it", function()
      local conn = server.connect()
      assert(conn:exec("drop table if exists stale2; create table stale2 (a int); insert into stale2 values (1)"))
      assert(conn:query("select * from stale2"))
      local other = server.connect()
      assert(other:exec("alter table stale2 add column b int default 2"))
      other:close()
      local tx = assert(conn:begin())
      local res, err = tx:query("select * from stale2")
      assert.is_nil(res)
      assert.are.equal("0A000", err.sqlstate)
      tx:rollback()
      res = assert(conn:query("select * from stale2"))
      assert.are.same({ a = 1, b = 2 }, res[1])
      conn:close()
    end)

    it("survives DEALLOCATE ALL behind its back", function()
      local conn = server.connect()
      assert(conn:query("select 5 as v"))
      assert(conn:exec("deallocate all"))
      assert.are.equal(5, assert(conn:query("select 5 as v"))[1].v)
      conn:close()
    end)
  end)

  describe("notices and logging", function()
    it("passes server notices to the logger", function()
      local lines = {}
      local conn = assert(pg.connect("", { logger = function(level, msg, info)
        lines[#lines + 1] = { level = level, msg = msg, info = info }
      end }))
      assert(conn:exec("do $$ begin raise notice 'hello %', 42; raise warning 'careful'; end $$"))
      assert.are.equal(2, #lines)
      assert.are.equal("notice", lines[1].level)
      assert.are.equal("NOTICE: hello 42", lines[1].msg)
      assert.are.equal("warn", lines[2].level)
      assert.are.equal("WARNING", lines[2].info.severity)
      conn:close()
    end)

    it("logs slow queries with the SQL text and never the parameters", function()
      local lines = {}
      local conn = assert(pg.connect("", { slow_query_ms = 20, logger = function(level, msg, info)
        lines[#lines + 1] = { level = level, msg = msg, info = info }
      end }))
      assert(conn:query("select pg_sleep(0.05), $1::text as secret", "hunter2"))
      assert(conn:query("select 1"))
      assert.are.equal(1, #lines)
      assert.are.equal("warn", lines[1].level)
      assert.matches("^slow query %(%d+%.%d ms%): select pg_sleep%(0%.05%), %$1::text as secret$", lines[1].msg)
      assert.is_nil(lines[1].msg:find("hunter2", 1, true))
      assert.is_true(lines[1].info.duration_ms >= 20)
      conn:close()
    end)

    it("keeps going when a logger raises", function()
      local conn = assert(pg.connect("", { logger = function() error("logger broke") end }))
      assert(conn:exec("do $$ begin raise notice 'x'; end $$"))
      assert.are.equal(1, conn:query("select 1 as v")[1].v)
      conn:close()
    end)
  end)

  it("leaves no globals behind", function()
    local before = {}
    for k in pairs(_G) do
      before[k] = true
    end
    package.loaded["coderunner.pg"] = nil
    require "coderunner.pg"
    for k in pairs(_G) do
      assert.is_true(before[k], "new global " .. tostring(k))
    end
  end)
end)
