-- The pool: limits, stats, reset on release, idle reaping, lifetime,
-- replacement of terminated backends, close.
local pg = require "coderunner.pg"
local server = require "support.server"

local function sleep(seconds)
  os.execute("sleep " .. seconds)
end

describe("coderunner.pg pool", function()
  local admin

  setup(function()
    admin = server.connect()
  end)

  teardown(function()
    admin:close()
  end)

  local function count_backends(app)
    return admin:query("select count(*)::int as n from pg_stat_activity where application_name = $1",
      app)[1].n
  end

  -- the number of server backends for app, once it settles at `expected`
  local function backends(app, expected)
    local n
    server.eventually(function()
      n = count_backends(app)
      return n == expected
    end)
    return n
  end

  local function new_pool(opts)
    opts.conninfo = opts.conninfo or "application_name=" .. (opts.app or "pool_spec")
    opts.app = nil
    return assert(pg.pool(opts))
  end

  it("opens min connections at once and grows lazily to max", function()
    local pool = new_pool { app = "p_grow", min = 2, max = 4 }
    local st = pool:stats()
    assert.are.equal(2, st.total)
    assert.are.equal(2, st.idle)
    assert.are.equal(2, backends("p_grow", 2))
    local held = {}
    for i = 1, 4 do
      held[i] = assert(pool:acquire())
    end
    st = pool:stats()
    assert.are.equal(4, st.total)
    assert.are.equal(4, st.busy)
    assert.are.equal(0, st.idle)
    assert.are.equal(4, st.connections_opened)
    for i = 1, 4 do
      pool:release(held[i])
    end
    assert.are.equal(4, pool:stats().idle)
    assert.is_true(pool:close())
    assert.are.equal(0, backends("p_grow", 0))
  end)

  it("times out acquiring when all max are busy", function()
    local pool = new_pool { min = 0, max = 2, acquire_timeout = 0.2 }
    local a, b = assert(pool:acquire()), assert(pool:acquire())
    local c, err = pool:acquire()
    assert.is_nil(c)
    assert.are.equal("pool_timeout", err.kind)
    local res, qerr = pool:query("select 1")
    assert.is_nil(res)
    assert.are.equal("pool_timeout", qerr.kind)
    local st = pool:stats()
    assert.are.equal(2, st.acquire_timeouts)
    assert.are.equal(2, st.errors.pool_timeout)
    pool:release(a)
    assert(pool:query("select 1"))
    pool:release(b)
    pool:close()
  end)

  it("counts queries, errors by kind and cache use", function()
    local pool = new_pool { min = 1, max = 1 }
    for _ = 1, 3 do
      assert(pool:query("select $1::int as v", 1))
    end
    assert.is_nil(pool:query("select * from nowhere"))
    local st = pool:stats()
    assert.are.equal(4, st.queries)
    assert.are.equal(1, st.errors.server)
    assert.are.equal(0, st.errors.conflict)
    -- the core's kinds only: kinds the Lua layers register are never counted
    local kinds = {}
    for k in pairs(st.errors) do kinds[#kinds + 1] = k end
    table.sort(kinds)
    assert.are.same({ "closed", "conflict", "connect", "invalid_input", "pool_timeout", "server", "timeout" }, kinds)
    assert.are.equal(2, st.cache_hits)
    assert.are.equal(2, st.cache_misses)
    assert.are.equal(1, st.min)
    assert.are.equal(1, st.max)
    assert.are.equal(0, st.waiting)
    pool:close()
  end)

  it("rolls back an open or failed transaction on release", function()
    local pool = new_pool { min = 1, max = 1 }
    assert(pool:query("create table if not exists pool_reset (x int)"))
    local conn = assert(pool:acquire())
    assert(conn:query("begin"))
    assert(conn:query("insert into pool_reset values (1)"))
    pool:release(conn)
    assert.has_error(function() conn:query("select 1") end, "connection was released to its pool")
    conn = assert(pool:acquire())
    assert.are.equal(0, conn:query("select count(*)::int as n from pool_reset")[1].n)
    assert(conn:query("begin"))
    assert.is_nil(conn:query("select broken"))
    pool:release(conn)
    local res = assert(pool:query("select count(*)::int as n from pool_reset"))
    assert.are.equal(0, res[1].n)
    assert.are.equal(1, pool:stats().connections_opened) -- the same connection, reset
    assert(pool:query("drop table pool_reset"))
    pool:close()
  end)

  it("returns a collected connection to the pool", function()
    local pool = new_pool { min = 0, max = 1, acquire_timeout = 0.1 }
    do
      local conn = assert(pool:acquire())
      assert(conn:query("begin"))
    end
    collectgarbage()
    collectgarbage()
    local st = pool:stats()
    assert.are.equal(1, st.idle)
    assert(pool:query("select 1"))
    pool:close()
  end)

  it("closes idle connections above min after idle_timeout", function()
    local pool = new_pool { app = "p_idle", min = 1, max = 3, idle_timeout = 0.2 }
    local a, b, c = pool:acquire(), pool:acquire(), pool:acquire()
    pool:release(a); pool:release(b); pool:release(c)
    assert.are.equal(3, pool:stats().idle)
    sleep(0.4)
    pool:maintain()
    local st = pool:stats()
    assert.are.equal(1, st.total)
    assert.are.equal(2, st.connections_closed)
    assert.are.equal(1, backends("p_idle", 1))
    pool:close()
  end)

  it("retires connections older than max_lifetime", function()
    local pool = new_pool { min = 1, max = 1, max_lifetime = 0.2 }
    local pid1 = pool:query("select pg_backend_pid() as p")[1].p
    sleep(0.3)
    local pid2 = pool:query("select pg_backend_pid() as p")[1].p
    assert.are_not.equal(pid1, pid2)
    assert.is_true(pool:stats().connections_closed >= 1)
    pool:close()
  end)

  it("replaces a terminated backend before running anything on it", function()
    local pool = new_pool { app = "p_term", min = 2, max = 2 }
    assert.are.equal(2, backends("p_term", 2))
    local killed = admin:query([[select count(pg_terminate_backend(pid))::int as n
      from pg_stat_activity where application_name = 'p_term']])[1].n
    assert.are.equal(2, killed)
    assert.are.equal(0, backends("p_term", 0)) -- both gone before the pool is used again
    for _ = 1, 4 do
      local res, err = pool:query("select 1 as one")
      assert(res, err)
      assert.are.equal(1, res[1].one)
    end
    local st = pool:stats()
    assert.are.equal(0, st.errors.closed)
    assert.is_true(st.connections_closed >= 1)
    pool:close()
  end)

  it("drops a connection that dies mid-statement and carries on", function()
    local pool = new_pool { app = "p_mid", min = 1, max = 1 }
    local conn = assert(pool:acquire())
    local pid = conn:backend_pid()
    -- the backend terminates itself while running the statement
    local res, err = conn:query("select pg_terminate_backend($1)", pid)
    assert.is_nil(res)
    assert.are.equal("closed", err.kind)
    pool:release(conn)
    assert.are.equal(1, pool:query("select 1 as v")[1].v)
    pool:close()
  end)

  it("starts with the server down and recovers when it comes back", function()
    admin:exec("drop database if exists pool_later")
    local pool = new_pool { conninfo = "dbname=pool_later", min = 1, max = 2, connect_timeout = 1 }
    assert.are.equal(0, pool:stats().total)
    assert.matches("pool_later", pool:stats().last_error)
    local res, err = pool:query("select 1")
    assert.is_nil(res)
    assert.are.equal("connect", err.kind)
    assert(admin:exec("create database pool_later"))
    assert.are.equal(1, assert(pool:query("select 1 as v"))[1].v)
    pool:close()
    admin:exec("drop database pool_later")
  end)

  it("rejects bad options with invalid_input", function()
    for _, opts in ipairs {
      { min = 3, max = 2 }, { max = 0 }, { idle_timeout = -1 }, { min = "x" },
      { conninfo = "host = = =" },
    } do
      local pool, err = pg.pool(opts)
      assert.is_nil(pool)
      assert.are.equal("invalid_input", err.kind)
    end
  end)

  it("never shows the password in tostring or errors", function()
    local pool = assert(pg.pool { conninfo = "postgresql://u:hunter2@127.0.0.1:1/x", min = 0, connect_timeout = 0.5 })
    assert.is_nil(tostring(pool):find("hunter2", 1, true))
    assert.matches("u:%*%*%*@", tostring(pool))
    local _, err = pool:query("select 1")
    assert.are.equal("connect", err.kind)
    assert.is_nil(tostring(err):find("hunter2", 1, true))
    pool:close()
  end)

  it("reports slow queries through on_slow_query", function()
    local seen = {}
    local pool = new_pool { min = 1, max = 1, slow_query_ms = 30, on_slow_query = function(info)
      seen[#seen + 1] = info
    end }
    assert(pool:query("select pg_sleep(0.06), $1::text", "top secret"))
    assert(pool:query("select 1"))
    assert.are.equal(1, #seen)
    assert.matches("^select pg_sleep", seen[1].sql)
    assert.is_nil(seen[1].sql:find("top secret", 1, true))
    assert.are.equal(1, pool:stats().slow_queries)
    pool:close()
  end)

  it("closes idempotently, waits for busy connections, and raises after close", function()
    local pool = new_pool { app = "p_close", min = 2, max = 2 }
    local conn = assert(pool:acquire())
    assert.is_false(pool:close(0.1)) -- one still busy
    assert.are.equal(1, backends("p_close", 1))
    pool:release(conn) -- closes it: the pool is gone
    assert.are.equal(0, backends("p_close", 0))
    assert.is_true(pool:close())
    assert.is_true(pool:is_closed())
    assert.has_error(function() pool:query("select 1") end, "attempt to use a closed pool")
  end)

  it("replaces every connection after a server restart", function()
    local pool = new_pool { app = "p_restart", min = 2, max = 3 }
    assert.are.equal(2, backends("p_restart", 2))
    local before = pool:stats().connections_opened
    local cluster = os.getenv("PG_CLUSTER_CONF_ROOT") and os.getenv("PGVERSION")
    if cluster then
      -- under pg_virtualenv (make test): a real fast restart of the server
      local started = admin:query("select pg_postmaster_start_time()::text as t")[1].t
      -- (pg_ctl on the data directory: see spec/support/faults.lua)
      require("support.faults").ctl("restart", "fast")
      admin:close()
      admin = server.connect()
      assert.are_not.equal(started, admin:query("select pg_postmaster_start_time()::text as t")[1].t)
    else
      -- an external server cannot be restarted from here: terminate the backends
      admin:query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'p_restart'")
      assert.are.equal(0, backends("p_restart", 0)) -- gone, as after a restart
    end
    for _ = 1, 3 do
      assert.are.equal(7, assert(pool:query("select 7 as v"))[1].v)
    end
    local st = pool:stats()
    assert.are.equal(0, st.errors.closed)
    assert.is_true(st.connections_opened > before)
    pool:close()
  end)

  if _VERSION == "Lua 5.4" then
    it("closes a to-be-closed pool at the end of its block", function()
      local chunk = assert(load([[
        local pg, kept = ...
        do
          local pool <close> = assert(pg.pool { min = 1, max = 1 })
          kept.pool = pool
        end
        return kept.pool:is_closed()
      ]]))
      assert.is_true(chunk(pg, {}))
    end)
  end

  it("refuses a connection from another pool", function()
    local p1, p2 = new_pool { min = 0, max = 1 }, new_pool { min = 0, max = 1 }
    local conn = assert(p1:acquire())
    assert.has_error(function() p2:release(conn) end)
    p1:release(conn)
    p1:close(); p2:close()
  end)
end)
