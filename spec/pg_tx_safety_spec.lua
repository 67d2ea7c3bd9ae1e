-- Transactions that cannot lie: one transaction per connection, commit() true
-- only when the server committed, savepoint handles bound to their own
-- transaction, coroutines kept out of each other's transactions, and no
-- network I/O in a finalizer.
local pg = require "coderunner.pg"
local server = require "support.server"
local shell = require "support.shell"
local sh = shell.sh

describe("coderunner.pg transaction safety", function()
  local admin, conn

  setup(function()
    admin = server.connect()
    assert(admin:query("drop table if exists txs"))
    assert(admin:query("create table txs (id int primary key, v text)"))
  end)

  before_each(function()
    assert(admin:query("truncate txs"))
    conn = server.connect()
  end)

  after_each(function()
    conn:close()
  end)

  teardown(function()
    admin:query("drop table if exists txs")
    admin:close()
  end)

  local function ids()
    local out = {}
    for _, row in ipairs(assert(admin:query("select id from txs order by id"))) do out[#out + 1] = row.id end
    return table.concat(out, ",")
  end

  describe("one transaction per connection", function()
    it("refuses a second begin() while one is open", function()
      local a = assert(conn:begin())
      assert.has_error(function() conn:begin() end,
        "connection already has an open transaction (one transaction per connection)")
      assert.has_error(function() conn:transaction(function() end) end)
      assert(a:query("insert into txs values (1, 'a')"))
      assert.is_true(a:commit())
      assert.are.equal("1", ids())
      -- once it ended, a new one may start
      local b = assert(conn:begin())
      assert.is_true(b:rollback())
    end)

    it("a = begin; b = begin; a:rollback(); b:commit() can no longer store nothing and say true", function()
      local a = assert(conn:begin())
      local ok = pcall(conn.begin, conn)
      assert.is_false(ok)
      assert(a:query("insert into txs values (2, 'b')"))
      assert.is_true(a:rollback())
      assert.are.equal("", ids())
    end)

    it("refuses begin() inside a transaction begun with SQL", function()
      assert(conn:query("begin"))
      assert.has_error(function() conn:begin() end, "connection is inside a transaction begun with SQL; end it first")
      assert(conn:query("rollback"))
    end)

    it("a collected old transaction never touches a newer one", function()
      do
        local old = assert(conn:begin())
        assert.is_true(old:rollback())
      end
      local b = assert(conn:begin())
      assert(b:query("insert into txs values (3, 'c')"))
      collectgarbage()
      collectgarbage()
      assert.is_true(b:commit())
      assert.are.equal("3", ids())
    end)

    it("a transaction collected while open is rolled back at the connection's next use", function()
      do
        local old = assert(conn:begin())
        assert(old:query("insert into txs values (4, 'lost')"))
      end
      collectgarbage()
      collectgarbage()
      local b = assert(conn:begin())
      assert(b:query("insert into txs values (5, 'kept')"))
      assert.is_true(b:commit())
      assert.are.equal("5", ids())
    end)
  end)

  describe("commit() is true only when the server committed", function()
    it("returns an error when the transaction was ended by SQL behind the handle", function()
      local tx = assert(conn:begin())
      assert(tx:query("insert into txs values (6, 'x')"))
      assert(conn:query("rollback")) -- the same coroutine may still talk to the connection
      local ok, err = tx:commit()
      assert.is_nil(ok)
      assert.are.equal("server", err.kind)
      assert.are.equal("25P01", err.sqlstate)
      assert.are.equal("rolled_back", tx:status())
      assert.are.equal("", ids())
    end)

    it("refuses statements on a transaction ended by SQL (they would run outside it)", function()
      local tx = assert(conn:begin())
      assert(tx:exec("commit"))
      assert.has_error(function() tx:query("insert into txs values (7, 'x')") end,
        "transaction was ended by a COMMIT or ROLLBACK sent as SQL; use tx:commit() or tx:rollback()")
      assert.is_nil((tx:commit()))
    end)

    it("returns an error when the server rolls back at COMMIT (deferred constraint)", function()
      assert(conn:exec([[
        drop table if exists txs_child;
        create table txs_child (id int references txs(id) deferrable initially deferred)]]))
      local tx = assert(conn:begin())
      assert(tx:query("insert into txs_child values (99)"))
      local ok, err = tx:commit()
      assert.is_nil(ok)
      assert.are.equal("23503", err.sqlstate)
      assert.are.equal("rolled_back", tx:status())
      assert.are.equal(0, admin:query("select count(*)::int as n from txs_child")[1].n)
      assert(conn:query("drop table txs_child"))
    end)

    it("returns an error when a statement in the transaction failed", function()
      local tx = assert(conn:begin())
      assert(tx:query("insert into txs values (8, 'x')"))
      assert.is_nil(tx:query("select 1/0"))
      local ok, err = tx:commit()
      assert.is_nil(ok)
      assert.are.equal("25P02", err.sqlstate)
      assert.are.equal("", ids())
    end)
  end)

  describe("savepoints", function()
    it("get names never reused on the connection", function()
      local seen = {}
      for _ = 1, 2 do
        local tx = assert(conn:begin())
        for _ = 1, 3 do
          local sp = assert(tx:begin())
          local name = tostring(sp):match("savepoint (crpg_sp_%d+)")
          assert.is_string(name)
          assert.is_nil(seen[name])
          seen[name] = true
          assert.is_true(sp:rollback())
        end
        assert.is_true(tx:commit())
      end
    end)

    it("start only from the innermost open level", function()
      local tx = assert(conn:begin())
      local sp = assert(tx:begin())
      assert.has_error(function() tx:begin() end, "a savepoint is already open inside this transaction level")
      assert.is_true(sp:commit())
      assert.is_true(tx:commit())
    end)

    it("a stale savepoint handle from a finished transaction raises instead of touching a later one", function()
      local t1 = assert(conn:begin())
      local s1 = assert(t1:begin())
      assert.is_true(t1:commit())
      assert.are.equal("ended", s1:status())
      local t2 = assert(conn:begin())
      local s2 = assert(t2:begin())
      assert(s2:query("insert into txs values (9, 'kept')"))
      assert.has_error(function() s1:rollback() end, "savepoint is no longer open: an enclosing level ended it")
      assert.has_error(function() s1:query("select 1") end)
      assert.is_true(s2:commit())
      assert.is_true(t2:commit())
      assert.are.equal("9", ids())
    end)

    it("a savepoint rolled back by an enclosing level can no longer act", function()
      local tx = assert(conn:begin())
      local outer = assert(tx:begin())
      local inner = assert(outer:begin())
      assert(inner:query("insert into txs values (10, 'x')"))
      assert.is_true(outer:rollback())
      assert.are.equal("ended", inner:status())
      assert.has_error(function() inner:commit() end)
      assert(tx:query("insert into txs values (11, 'y')"))
      assert.is_true(tx:commit())
      assert.are.equal("11", ids())
    end)

    it("a collected savepoint is rolled back before its transaction goes on", function()
      local tx = assert(conn:begin())
      assert(tx:query("insert into txs values (12, 'kept')"))
      do
        local sp = assert(tx:begin())
        assert(sp:query("insert into txs values (13, 'lost')"))
      end
      collectgarbage()
      collectgarbage()
      assert(tx:query("insert into txs values (14, 'kept')"))
      assert.is_true(tx:commit())
      assert.are.equal("12,14", ids())
    end)
  end)

  describe("two coroutines sharing one connection", function()
    it("refuses the bare connection to a coroutine while another's transaction is open", function()
      local a = coroutine.wrap(function()
        local tx = assert(conn:begin())
        assert(tx:query("insert into txs values (20, 'a')"))
        coroutine.yield("open")
        assert.is_true(tx:rollback())
        coroutine.yield("done")
      end)
      assert.are.equal("open", a())
      local ok, err = pcall(conn.query, conn, "insert into txs values (21, 'b')")
      assert.is_false(ok)
      assert.matches("connection is busy in a transaction of another coroutine", err, 1, true)
      ok, err = pcall(conn.begin, conn)
      assert.is_false(ok)
      assert.matches("another coroutine", err, 1, true)
      assert.are.equal("done", a())
      -- B's insert was refused, not swallowed by A's rollback; now it runs
      assert(conn:query("insert into txs values (21, 'b')"))
      assert.are.equal("21", ids())
    end)
  end)

  describe("finalizers", function()
    it("collecting an open transaction does no network I/O, even with the backend frozen", function()
      local pid = conn:backend_pid()
      do
        local tx = assert(conn:begin())
        assert(tx:query("insert into txs values (30, 'lost')"))
      end
      -- a ROLLBACK sent now would wait forever for a stopped backend
      assert.is_true(sh("kill -STOP " .. pid))
      local t0 = os.time()
      local c0 = os.clock()
      collectgarbage()
      collectgarbage()
      local took = os.clock() - c0
      os.execute("kill -CONT " .. pid)
      assert.is_true(os.time() - t0 <= 1)
      assert.is_true(took < 0.5)
      -- the next use rolls the abandoned transaction back, then runs
      assert(conn:query("insert into txs values (31, 'kept')"))
      assert.are.equal("31", ids())
    end)

    it("a pool transaction collected while open gives its slot back without I/O", function()
      local pool = assert(pg.pool { min = 0, max = 1, acquire_timeout = 0.5 })
      do
        local tx = assert(pool:begin())
        assert(tx:query("insert into txs values (40, 'lost')"))
      end
      collectgarbage()
      collectgarbage()
      assert(pool:query("insert into txs values (41, 'kept')"))
      assert.are.equal("41", ids())
      assert.are.equal(1, pool:stats().total)
      pool:close()
    end)
  end)
end)
