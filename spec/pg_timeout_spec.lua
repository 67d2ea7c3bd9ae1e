-- Client-side deadlines: a statement past its timeout is cancelled on the
-- server (pg_stat_activity shows it stopped), returns kind "timeout", and
-- leaves a usable connection, or one given up when the server does not answer
-- at all. conn:cancel() and pg.cancel(token) cancel from elsewhere.
local pg = require "coderunner.pg"
local server = require "support.server"

local shell = require "support.shell"
local sh = shell.sh

describe("coderunner.pg deadlines", function()
  local admin

  setup(function()
    admin = server.connect()
    assert(admin:query("drop table if exists tmo"))
    assert(admin:query("create table tmo (id int primary key)"))
  end)

  teardown(function()
    admin:query("drop table if exists tmo")
    admin:close()
  end)

  -- the backend's state, once it is no longer running `pattern`
  local function stopped(pid)
    return server.eventually(function()
      local row = admin:query("select state, query from pg_stat_activity where pid = $1", pid)[1]
      return row == nil or row.state ~= "active"
    end, 3)
  end

  local function timed(fn)
    local t0 = pg.monotonic()
    local a, b = fn()
    return a, b, pg.monotonic() - t0
  end

  it("query_timeout on a connection cancels the server's work and keeps the connection", function()
    local conn = assert(pg.connect("", { query_timeout = 0.3 }))
    local pid = conn:backend_pid()
    local res, err, took = timed(function() return conn:query("select pg_sleep(5)") end)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.matches("0.3", err.message, 1, true)
    assert.is_true(took < 2, "took " .. took)
    assert.is_truthy(stopped(pid))
    -- the same connection, usable
    assert.are.equal(pid, conn:backend_pid())
    assert.are.equal(1, assert(conn:query("select 1 as v"))[1].v)
    conn:close()
  end)

  it("a per-call timeout overrides the connection's", function()
    local conn = assert(pg.connect(""))
    local res, err, took = timed(function() return conn:query({ sql = "select pg_sleep($1)", timeout = 0.2 }, 5) end)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_true(took < 2)
    res, err = conn:exec({ sql = "select pg_sleep(5); select 1", timeout = 0.2 })
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.are.equal(2, assert(conn:query({ sql = "select 2 as v", timeout = 1 }))[1].v)
    conn:close()
  end)

  it("a statement blocked on a lock times out on a pool, and the pool stays whole", function()
    local pool = assert(pg.pool { min = 1, max = 1, query_timeout = 0.3 })
    local locker = server.connect()
    local tx = assert(locker:begin())
    assert(tx:query("lock table tmo in access exclusive mode"))
    local res, err, took = timed(function() return pool:query("insert into tmo values (1)") end)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_true(took < 2)
    -- nobody waits on the lock any more
    assert.is_truthy(server.eventually(function()
      return admin:query("select count(*)::int as n from pg_locks where not granted")[1].n == 0
    end, 3))
    assert.is_true(tx:rollback())
    locker:close()
    assert(pool:query("insert into tmo values (2)"))
    local st = pool:stats()
    assert.are.equal(1, st.total)
    assert.are.equal(1, st.errors.timeout)
    assert.are.equal(1, admin:query("select count(*)::int as n from tmo where id = 2")[1].n)
    pool:close()
  end)

  it("a timeout inside a transaction aborts it: commit() says so", function()
    local conn = assert(pg.connect("", { query_timeout = 0.2 }))
    local tx = assert(conn:begin())
    assert(tx:query("insert into tmo values (3)"))
    local res, err = tx:query("select pg_sleep(5)")
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    local ok, cerr = tx:commit()
    assert.is_nil(ok)
    assert.are.equal("25P02", cerr.sqlstate)
    assert.are.equal(0, admin:query("select count(*)::int as n from tmo where id = 3")[1].n)
    assert(conn:query("select 1"))
    conn:close()
  end)

  it("a server that does not answer at all: timeout, and the connection is given up", function()
    local pool = assert(pg.pool { min = 1, max = 1, query_timeout = 0.2, slow_query_ms = -1 })
    local conn = assert(pool:acquire())
    local pid = conn:backend_pid()
    assert.is_true(sh("kill -STOP " .. pid))
    local res, err, took = timed(function() return conn:query("select 1") end)
    sh("kill -CONT " .. pid)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_true(took < 4, "took " .. took) -- the deadline plus the cancel's grace
    -- the bare connection refuses further work; the pool discards it and opens another
    res, err = conn:query("select 1")
    assert.is_nil(res)
    assert.are.equal("closed", err.kind)
    pool:release(conn)
    local other = assert(pool:query("select pg_backend_pid() as p"))[1].p
    assert.are_not.equal(pid, other)
    pool:close()
  end)

  it("conn:cancel() and pg.cancel(token): harmless when idle, false once closed", function()
    local conn = assert(pg.connect(""))
    local token = conn:cancel_token()
    assert.is_number(token)
    -- the token is a plain number: it crosses to another thread or Lua state
    assert.is_true(pg.cancel(token))
    assert.is_true(conn:cancel())
    assert(conn:query("select 1"))
    conn:close()
    assert.is_false(pg.cancel(token))
  end)

  it("a statement cancelled on the server (pg_cancel_backend) is kind timeout, 57014", function()
    local conn = assert(pg.connect(""))
    local pid = conn:backend_pid()
    sh(("(sleep 0.3; env -u LD_PRELOAD psql -X -q -At -c 'select pg_cancel_backend(%d)' >/dev/null 2>&1) &"):format(pid))
    local res, err = conn:query("select pg_sleep(5)")
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.are.equal("57014", err.sqlstate)
    assert(conn:query("select 1"))
    conn:close()
  end)
end)
