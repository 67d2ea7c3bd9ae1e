-- Nothing leaks to the next borrower: session state one caller left on a
-- pooled connection (SET, set_config(..., false), advisory locks, temporary
-- tables, LISTEN, PREPARE by hand) is reset before the connection is lent
-- again; plain statements cost no reset; reset = "always" | "auto" | "never".
local pg = require "coderunner.pg"
local server = require "support.server"

describe("coderunner.pg pool session reset", function()
  local admin

  setup(function()
    admin = server.connect()
  end)

  teardown(function()
    admin:close()
  end)

  local DIRTY = {
    { "SET statement_timeout", "SET statement_timeout = 50",
      "select current_setting('statement_timeout') = '0' as clean" },
    { "set_config(..., false)", "select set_config('app.user_id', '42', false)",
      "select coalesce(current_setting('app.user_id', true), '') = '' as clean" },
    { "pg_advisory_lock", "select pg_advisory_lock(4242)",
      "select not exists (select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as clean" },
    { "a temporary table", "create temp table leak_tt (x int)",
      "select to_regclass('pg_temp.leak_tt') is null as clean" },
    { "LISTEN", "listen leak_channel",
      "select not exists (select 1 from pg_listening_channels()) as clean" },
    { "PREPARE by hand", "prepare leak_stmt as select 1",
      "select not exists (select 1 from pg_prepared_statements where name = 'leak_stmt') as clean" },
    { "SET after a comment", "/* note */ -- more\n  set search_path = pg_catalog",
      "select current_setting('search_path') <> 'pg_catalog' as clean" },
  }

  for _, case in ipairs(DIRTY) do
    it("the next borrower does not inherit " .. case[1] .. " (pool:query)", function()
      local pool = assert(pg.pool { min = 1, max = 1 })
      local pid = assert(pool:query("select pg_backend_pid() as p"))[1].p
      assert(pool:exec(case[2]))
      local row = assert(pool:query(case[3] .. ", pg_backend_pid() as p"))[1]
      assert.is_true(row.clean)
      assert.are.equal(pid, row.p) -- the same connection, reset rather than replaced
      assert.are.equal(1, pool:stats().resets)
      pool:close()
    end)

    it("the next borrower does not inherit " .. case[1] .. " (acquire/release)", function()
      local pool = assert(pg.pool { min = 1, max = 1 })
      local conn = assert(pool:acquire())
      assert(conn:exec(case[2]))
      pool:release(conn)
      conn = assert(pool:acquire())
      assert.is_true(assert(conn:query(case[3]))[1].clean)
      pool:release(conn)
      pool:close()
    end)
  end

  it("the advisory lock is free for others once its holder's connection is reset", function()
    local pool = assert(pg.pool { min = 1, max = 1 })
    assert(pool:query("select pg_advisory_lock(4243)"))
    assert(pool:query("select 1")) -- lent again: reset first
    assert.is_true(admin:query("select pg_try_advisory_lock(4243) as got")[1].got)
    assert(admin:query("select pg_advisory_unlock(4243)"))
    pool:close()
  end)

  it("plain statements cost no reset, and the statement cache survives them", function()
    local pool = assert(pg.pool { min = 1, max = 1 })
    for i = 1, 20 do
      assert(pool:query("select $1::int as v", i))
      assert(pool:query("update pg_class set relname = relname where false")) -- UPDATE ... SET is not SET
    end
    local st = pool:stats()
    assert.are.equal(0, st.resets)
    assert.is_true(st.cache_hits >= 38)
    pool:close()
  end)

  it("after a reset the statement cache starts over and cached statements still run", function()
    local pool = assert(pg.pool { min = 1, max = 1 })
    assert(pool:query("select $1::int as v", 1))
    assert(pool:query("select $1::int as v", 2))
    assert(pool:exec("set work_mem = '8MB'"))
    -- the server dropped its prepared statements: the cache must not use them
    assert.are.equal(3, assert(pool:query("select $1::int as v", 3))[1].v)
    assert.are.equal(0, pool:stats().errors.server)
    pool:close()
  end)

  it("reset = \"always\" resets after any use; \"never\" leaves the session as it was", function()
    local always = assert(pg.pool { min = 1, max = 1, reset = "always" })
    assert(always:query("select 1"))
    assert(always:query("select 1"))
    assert.is_true(always:stats().resets >= 1)
    always:close()
    local never = assert(pg.pool { min = 1, max = 1, reset = "never" })
    assert(never:exec("set statement_timeout = 50"))
    assert.are.equal("50ms", never:query("select current_setting('statement_timeout') as v")[1].v)
    assert.are.equal(0, never:stats().resets)
    never:close()
    local v, err = pg.pool { reset = "sometimes" }
    assert.is_nil(v)
    assert.are.equal("invalid_input", err.kind)
  end)
end)
