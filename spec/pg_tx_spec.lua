-- Transactions: callback and manual forms, savepoints, options, retries.
local pg = require "coderunner.pg"
local server = require "support.server"

describe("coderunner.pg transactions", function()
  local pool

  setup(function()
    pool = assert(pg.pool { min = 1, max = 3 })
    assert(pool:query("drop table if exists txt"))
    assert(pool:query("create table txt (id int primary key, v text)"))
  end)

  before_each(function()
    assert(pool:query("truncate txt"))
  end)

  teardown(function()
    pool:query("drop table if exists txt")
    pool:close()
  end)

  local function count()
    return pool:query("select count(*)::int as n from txt")[1].n
  end

  it("commits and returns what fn returned", function()
    local a, b = pool:transaction(function(tx)
      assert(tx:query("insert into txt values (1, 'a')"))
      return "x", 2
    end)
    assert.are.equal("x", a)
    assert.are.equal(2, b)
    assert.are.equal(1, count())
  end)

  it("returns true when fn returns nothing", function()
    assert.are.equal(true, pool:transaction(function(tx) tx:query("insert into txt values (1, 'a')") end))
    assert.are.equal(1, count())
  end)

  it("rolls back when fn raises, returning nil, err", function()
    local res, err = pool:transaction(function(tx)
      assert(tx:query("insert into txt values (1, 'a')"))
      error({ code = "boom" })
    end)
    assert.is_nil(res)
    assert.are.equal("boom", err.code)
    assert.are.equal(0, count())
    local _, err2 = pool:transaction(function(tx)
      assert(tx:query("insert into txt values (1, 'a')"))
      local ok, dup = tx:query("insert into txt values (1, 'dup')")
      if not ok then error(dup) end -- the error object itself, not luassert's message
    end)
    assert.are.equal("conflict", err2.kind)
    assert.are.equal(0, count())
  end)

  it("rolls back when fn returns nil, err", function()
    local res, err = pool:transaction(function(tx)
      assert(tx:query("insert into txt values (1, 'a')"))
      return nil, "changed my mind"
    end)
    assert.is_nil(res)
    assert.are.equal("changed my mind", err)
    assert.are.equal(0, count())
  end)

  it("refuses to commit after a swallowed error", function()
    local res, err = pool:transaction(function(tx)
      assert(tx:query("insert into txt values (1, 'a')"))
      tx:query("select nope") -- error ignored by the callback
      return "done"
    end)
    assert.is_nil(res)
    assert.are.equal("25P02", err.sqlstate)
    assert.are.equal(0, count())
  end)

  it("makes the tx object unusable after the transaction", function()
    local kept
    pool:transaction(function(tx) kept = tx end)
    assert.are.equal("committed", kept:status())
    assert.has_error(function() kept:query("select 1") end, "transaction is already committed")
  end)

  it("nests with savepoints", function()
    local ok = pool:transaction(function(tx)
      assert(tx:query("insert into txt values (1, 'outer')"))
      local r, err = tx:transaction(function(inner)
        assert(inner:query("insert into txt values (2, 'inner')"))
        error("inner fails")
      end)
      assert.is_nil(r)
      assert.matches("inner fails", err)
      assert(tx:transaction(function(inner)
        assert(inner:query("insert into txt values (3, 'kept')"))
        return inner:transaction(function(deeper)
          return deeper:query("insert into txt values (4, 'deeper')")
        end)
      end))
      return true
    end)
    assert.is_true(ok)
    local ids = {}
    for _, row in ipairs(pool:query("select id from txt order by id")) do
      ids[#ids + 1] = row.id
    end
    assert.are.same({ 1, 3, 4 }, ids)
  end)

  it("recovers from a failed statement inside a savepoint", function()
    assert(pool:transaction(function(tx)
      local _, err = tx:transaction(function(inner)
        return inner:query("insert into txt values (1, 'a'), (1, 'b')")
      end)
      assert.are.equal("conflict", err.kind)
      assert(tx:query("insert into txt values (2, 'after')"))
    end))
    assert.are.equal(1, count())
  end)

  it("applies isolation, read_only and settings", function()
    local iso, ro, uid = pool:transaction(function(tx)
      local r = tx:query([[select current_setting('transaction_isolation') as iso,
        current_setting('transaction_read_only') as ro, current_setting('app.user_id') as uid]])[1]
      return r.iso, r.ro, r.uid
    end, { isolation = "serializable", read_only = true, settings = { ["app.user_id"] = 42 } })
    assert.are.equal("serializable", iso)
    assert.are.equal("on", ro)
    assert.are.equal("42", uid)
    local _, err = pool:transaction(function(tx)
      return tx:query("insert into txt values (1, 'x')")
    end, { read_only = true })
    assert.are.equal("25006", err.sqlstate)
    -- settings are local to the transaction
    assert.are.equal("", pool:query("select current_setting('app.user_id', true) as v")[1].v or "")
    assert.has_error(function()
      pool:transaction(function() end, { isolation = "chaotic" })
    end)
  end)

  it("retries on serialization failure", function()
    assert(pool:query("insert into txt values (1, '0')"))
    local other = server.connect()
    local attempts = 0
    local result, err = pool:transaction(function(tx)
      attempts = attempts + 1
      local v = tx:query("select v from txt where id = 1")[1].v
      if attempts == 1 then
        -- a concurrent writer commits after our snapshot was taken
        assert(other:query("update txt set v = 'other' where id = 1"))
      end
      local ok, uerr = tx:query("update txt set v = $1 where id = 1", v .. "+mine")
      if not ok then error(uerr) end
      return v
    end, { isolation = "repeatable read", retries = 2 })
    assert(result, err)
    assert.are.equal(2, attempts)
    assert.are.equal("other", result)
    assert.are.equal("other+mine", pool:query("select v from txt where id = 1")[1].v)
    other:close()
  end)

  it("gives up after the retries with the serialization error", function()
    assert(pool:query("insert into txt values (1, '0')"))
    local other = server.connect()
    local attempts = 0
    local res, err = pool:transaction(function(tx)
      attempts = attempts + 1
      tx:query("select v from txt where id = 1")
      assert(other:query("update txt set v = $1 where id = 1", tostring(attempts)))
      return tx:query("update txt set v = 'mine' where id = 1")
    end, { isolation = "repeatable read", retries = 1 })
    assert.is_nil(res)
    assert.are.equal("40001", err.sqlstate)
    assert.are.equal(2, attempts)
    other:close()
  end)

  describe("manual form", function()
    it("begins, commits and rolls back", function()
      local tx = assert(pool:begin())
      assert(tx:query("insert into txt values (1, 'a')"))
      assert.is_true(tx:commit())
      assert.are.equal(1, count())
      tx = assert(pool:begin())
      assert(tx:query("insert into txt values (2, 'b')"))
      assert.is_true(tx:rollback())
      assert.are.equal(1, count())
      assert.has_error(function() tx:commit() end, "transaction is already rolled_back")
      assert.are.equal(0, pool:stats().busy)
    end)

    it("rolls back a collected transaction and frees its connection", function()
      do
        local tx = assert(pool:begin())
        assert(tx:query("insert into txt values (1, 'lost')"))
      end
      collectgarbage()
      collectgarbage()
      assert.are.equal(0, count())
      assert.are.equal(0, pool:stats().busy)
    end)

    it("works on a plain connection", function()
      local conn = server.connect()
      local tx = assert(conn:begin { isolation = "repeatable_read" })
      assert.are.equal("repeatable read", tx:query("select current_setting('transaction_isolation') as i")[1].i)
      assert(tx:commit())
      assert.are.equal(3, conn:transaction(function(t) return t:query("select 3 as v")[1].v end))
      conn:close()
    end)

    it("reports a failed COMMIT of a deferred constraint", function()
      assert(pool:exec([[drop table if exists dparent cascade; drop table if exists dchild;
        create table dparent (id int primary key);
        create table dchild (pid int references dparent deferrable initially deferred)]]))
      local tx = assert(pool:begin())
      assert(tx:query("insert into dchild values (99)"))
      local ok, err = tx:commit()
      assert.is_nil(ok)
      assert.are.equal("23503", err.sqlstate)
      assert.are.equal("rolled_back", tx:status())
      assert(pool:exec("drop table dchild; drop table dparent"))
    end)
  end)
end)
