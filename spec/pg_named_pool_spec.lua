-- Named pools (`pg.pool{ name = ... }`): one pool per process for every Lua
-- state that asks, options that disagree refused, close for every holder,
-- closed by the last release; and the maintenance thread that closes idle
-- connections on time with nobody calling the pool. (Sharing across the Lua
-- states of one process is shown by `make test-openresty`, where nginx's
-- worker-thread VMs share one pool and the server sees at most max
-- connections per nginx worker.)
local pg = require "coderunner.pg"
local server = require "support.server"

describe("coderunner.pg named pool", function()
  local admin
  setup(function() admin = server.connect() end)
  teardown(function() admin:close() end)

  local function count_backends(app) return server.count_backends(admin, app) end
  local function backends(app, expected, seconds) return server.backends_settled(admin, app, expected, seconds) end

  local function conninfo(app) return "application_name=" .. app end

  it("returns the one pool of a name: one budget, one set of counters", function()
    local a = assert(pg.pool { name = "np_same", conninfo = conninfo("np_same"), min = 0, max = 2,
      acquire_timeout = 0.2 })
    local b = assert(pg.pool { name = "np_same" })   -- options left out agree
    assert.are_not.equal(a, b)                       -- two objects ...
    assert.equal("np_same", a:stats().name)
    assert(a:query("select 1"))
    assert.equal(1, b:stats().queries)               -- ... one pool
    local c1 = assert(a:acquire())
    local c2 = assert(b:acquire())
    assert.equal(2, a:stats().busy)
    local c3, err = b:acquire()                      -- max is 2 for both together
    assert.is_nil(c3)
    assert.equal("pool_timeout", err.kind)
    assert.equal(2, count_backends("np_same"))
    a:release(c1)
    b:release(c2)
    a:close()
  end)

  it("refuses options that disagree with the living pool, naming the option", function()
    local a = assert(pg.pool { name = "np_opts", conninfo = conninfo("np_opts"), min = 0, max = 3,
      idle_timeout = 10 })
    local same = assert(pg.pool { name = "np_opts", conninfo = conninfo("np_opts"), min = 0, max = 3,
      idle_timeout = 10 })
    local b, err = pg.pool { name = "np_opts", max = 4 }
    assert.is_nil(b)
    assert.equal("invalid_input", err.kind)
    assert.equal('pool "np_opts" is already open with max = 3, not 4', err.message)
    b, err = pg.pool { name = "np_opts", idle_timeout = 2.5 }
    assert.is_nil(b)
    assert.matches("idle_timeout = 10, not 2.5", err.message, 1, true)
    -- another conninfo: refused without printing either (they may hold passwords)
    b, err = pg.pool { name = "np_opts", conninfo = "application_name=np_opts password=s3cret" }
    assert.is_nil(b)
    assert.equal('pool "np_opts" is already open with another conninfo', err.message)
    assert.not_matches("s3cret", tostring(err), 1, true)
    -- bad input is still checked first
    b, err = pg.pool { name = "np_opts", max = 0 }
    assert.is_nil(b)
    assert.equal("invalid_input", err.kind)
    b, err = pg.pool { name = "" }
    assert.is_nil(b)
    assert.equal("invalid_input", err.kind)
    assert.has_error(function() pg.pool { name = 42 } end)
    same:close()
    a:close()
  end)

  it("close() closes it for every holder and frees the name", function()
    local a = assert(pg.pool { name = "np_close", conninfo = conninfo("np_close"), min = 1, max = 2 })
    local b = assert(pg.pool { name = "np_close" })
    assert.equal(1, backends("np_close", 1))
    assert.is_true(a:close())
    assert.is_true(a:is_closed())
    assert.is_true(b:is_closed())                    -- closed for b too
    local res, err = b:query("select 1")
    assert.is_nil(res)
    assert.equal("closed", err.kind)
    assert.equal(0, backends("np_close", 0))
    -- the name is free: a new pool, while b still holds the old one
    local c = assert(pg.pool { name = "np_close", conninfo = conninfo("np_close"), min = 0, max = 5 })
    assert.is_false(c:is_closed())
    assert.equal(5, c:stats().max)
    assert(c:query("select 1"))
    assert.is_true(b:close())                        -- idempotent, and does not touch c
    assert.is_false(c:is_closed())
    c:close()
  end)

  it("busy connections of a closed pool close when released", function()
    local a = assert(pg.pool { name = "np_busy", conninfo = conninfo("np_busy"), min = 0, max = 2 })
    local b = assert(pg.pool { name = "np_busy" })
    local conn = assert(b:acquire())
    assert.is_false(a:close(0))                      -- one still out
    assert.equal(1, count_backends("np_busy"))
    assert(conn:query("select 1"))                   -- a borrowed connection still works
    b:release(conn)
    assert.equal(0, backends("np_busy", 0))
    b:close()
  end)

  it("the last holder to go closes the pool", function()
    local held = { assert(pg.pool { name = "np_last", conninfo = conninfo("np_last"), min = 2, max = 2 }) }
    local b = assert(pg.pool { name = "np_last" })
    assert.equal(2, backends("np_last", 2))
    assert.equal(1, #held)
    held[1] = nil
    collectgarbage()
    collectgarbage()
    assert.equal(2, count_backends("np_last"))       -- b still holds it
    assert(b:query("select 1"))
    b = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.equal(0, backends("np_last", 0))
    -- and the name makes a new pool
    local c = assert(pg.pool { name = "np_last", conninfo = conninfo("np_last"), min = 0, max = 3 })
    assert.equal(3, c:stats().max)
    c:close()
  end)

  it("keeps each Lua object's hooks its own", function()
    local seen_a, seen_b = {}, {}
    local a = assert(pg.pool { name = "np_hooks", conninfo = conninfo("np_hooks"), min = 0, max = 2,
      slow_query_ms = 0, on_slow_query = function(info) seen_a[#seen_a + 1] = info.sql end })
    local b = assert(pg.pool { name = "np_hooks",
      on_slow_query = function(info) seen_b[#seen_b + 1] = info.sql end })
    assert(a:query("select 'a'"))
    assert(b:query("select 'b'"))
    assert.same({ "select 'a'" }, seen_a)
    assert.same({ "select 'b'" }, seen_b)
    a:close()
    b:close()
  end)

  it("closes idle connections after idle_timeout with nobody calling the pool, keeping min", function()
    local p = assert(pg.pool { name = "np_idle", conninfo = conninfo("np_idle"), min = 1, max = 4,
      idle_timeout = 1 })
    local held = {}
    for i = 1, 4 do held[i] = assert(p:acquire()) end
    for i = 1, 4 do p:release(held[i]) end
    assert.equal(4, count_backends("np_idle"))
    -- no call on the pool from here: only its maintenance thread runs
    pg.sleep(2)
    assert.equal(1, backends("np_idle", 1, 1))
    assert.equal(1, p:stats().total)
    p:close()
  end)

  it("a private pool (no name) has its maintenance thread too", function()
    local p = assert(pg.pool { conninfo = conninfo("np_private"), min = 0, max = 3, idle_timeout = 0.5 })
    local c1, c2 = assert(p:acquire()), assert(p:acquire())
    p:release(c1)
    p:release(c2)
    assert.equal(2, count_backends("np_private"))
    pg.sleep(1.5)
    assert.equal(0, backends("np_private", 0, 1))
    assert.is_nil(p:stats().name)
    p:close()
  end)
end)
