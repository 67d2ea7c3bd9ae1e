-- The fault suite: the server restarts (fast and immediate) under a running
-- loop of pool queries and transactions, backends are terminated idle and
-- busy, the server is down when the pool starts. Afterwards every
-- acknowledged write is present, each transaction is all or nothing, the pool
-- is whole (stats add up, new queries succeed), and every failed call returned
-- an error object (none raised). Prints the figures.
local pg = require "coderunner.pg"
local server = require "support.server"
local faults = require "support.faults"

local KINDS = { connect = true, server = true, timeout = true, pool_timeout = true, closed = true,
  invalid_input = true, conflict = true, invalid_transition = true }

describe("fault suite", function()
  local admin
  local totals = { calls = 0, ok = 0, errors = {}, writes_checked = 0, raised = 0 }

  setup(function()
    faults.remember_cluster()
    admin = server.connect()
    assert(admin:query("drop table if exists fault_writes"))
    assert(admin:query("create table fault_writes (id bigint primary key, pair bigint)"))
  end)

  teardown(function()
    admin:close() -- it may have died in a restart
    admin = server.connect()
    admin:query("drop table if exists fault_writes")
    admin:close()
    local kinds = {}
    for k, n in pairs(totals.errors) do kinds[#kinds + 1] = k .. "=" .. n end
    table.sort(kinds)
    print(("\nfault suite (%s): %d calls, %d ok, errors by kind {%s}, %d raised, %d acknowledged writes checked")
      :format(rawget(_G, "jit") and _G.jit.version or _VERSION, totals.calls, totals.ok, table.concat(kinds, ", "), totals.raised, totals.writes_checked))
  end)

  -- One run's bookkeeping: acknowledged single writes, acknowledged and
  -- failed transaction pairs.
  local function new_run(base)
    return { next_id = base, acked = {}, pairs_acked = {}, pairs_failed = {}, calls = 0, errors = {} }
  end

  -- Calls fn, which returns (value, err) as the core does; records what came back.
  local function call(run, fn)
    run.calls = run.calls + 1
    totals.calls = totals.calls + 1
    local ok, v, err = pcall(fn)
    if not ok then
      totals.raised = totals.raised + 1
      error("a call raised instead of returning an error object: " .. tostring(v))
    end
    if v == nil then
      assert.is_true(pg.is_error(err), "a failed call returned no error object: " .. tostring(err))
      assert.is_string(err.message)
      assert.is_true(KINDS[err.kind] ~= nil, "unknown kind " .. tostring(err.kind))
      run.errors[err.kind] = (run.errors[err.kind] or 0) + 1
      totals.errors[err.kind] = (totals.errors[err.kind] or 0) + 1
    else
      totals.ok = totals.ok + 1
    end
    return v, err
  end

  -- One round of the workload: a write, a two-row transaction, a read.
  local function round(run, pool, opts)
    opts = opts or {}
    local id = run.next_id
    run.next_id = id + 3
    if call(run, function() return pool:query("insert into fault_writes (id) values ($1)", id) end) then
      run.acked[#run.acked + 1] = id
    end
    local done = call(run, function()
      -- fn returns nil, err on failure (busted's assert would raise a string)
      return pool:transaction(function(tx)
        local r, e = tx:query("insert into fault_writes (id, pair) values ($1, $1)", id + 1)
        if r and opts.sleep then r, e = tx:query("select pg_sleep($1)", opts.sleep) end
        if r then r, e = tx:query("insert into fault_writes (id, pair) values ($1, $2)", id + 2, id + 1) end
        if not r then return nil, e end
      end)
    end)
    if done then run.pairs_acked[#run.pairs_acked + 1] = id + 1
    else run.pairs_failed[#run.pairs_failed + 1] = id + 1 end
    call(run, function() return pool:query("select count(*) as n from fault_writes where id < $1", 10) end)
  end

  -- Every acknowledged write is there; every transaction is all or nothing.
  local function check_writes(run)
    local present = {}
    local res = assert(admin:query("select id from fault_writes where id >= $1 and id < $2",
      run.acked[1] or 0, run.next_id + 3))
    for _, row in ipairs(res) do present[row.id] = true end
    for _, id in ipairs(run.acked) do
      assert.is_true(present[id] == true, "acknowledged write " .. id .. " is missing")
      totals.writes_checked = totals.writes_checked + 1
    end
    for _, id in ipairs(run.pairs_acked) do
      assert.is_true(present[id] and present[id + 1] or false, "acknowledged transaction " .. id .. " is missing")
      totals.writes_checked = totals.writes_checked + 2
    end
    for _, id in ipairs(run.pairs_failed) do
      -- a COMMIT whose answer was lost may have committed: but never half of it
      assert.are.equal(present[id] == true, present[id + 1] == true, "transaction " .. id .. " half-applied")
    end
  end

  -- The pool is whole: the counts add up, nothing is left busy, queries work.
  local function check_pool(pool, max)
    local st = pool:stats()
    assert.are.equal(st.total, st.idle + st.busy)
    assert.are.equal(0, st.busy)
    assert.are.equal(0, st.waiting)
    assert.is_true(st.total <= max)
    for _ = 1, max + 1 do
      assert.are.equal(1, assert(pool:query("select 1 as v"))[1].v)
    end
    local conns = {}
    for i = 1, max do conns[i] = assert(pool:acquire()) end
    for i = 1, max do pool:release(conns[i]) end
    st = pool:stats()
    assert.are.equal(max, st.total)
    assert.are.equal(max, st.idle)
  end

  -- Runs rounds until `seconds` pass and the background command finished.
  local function run_until(run, pool, marker, seconds, opts)
    local deadline = pg.monotonic() + seconds
    while pg.monotonic() < deadline do round(run, pool, opts) end
    faults.wait(marker)
    faults.wait_up()
    admin:close() -- its backend is gone with the restart
    admin = server.connect()
    -- the pool works again after the fault
    local recovered = server.eventually(function()
      return pool:query("select 1") ~= nil
    end, 10)
    assert.is_truthy(recovered)
  end

  for _, mode in ipairs { "fast", "immediate" } do
    it("a " .. mode .. " restart under load loses no acknowledged write", function()
      local run = new_run(mode == "fast" and 1000000 or 2000000)
      local pool = assert(pg.pool { min = 2, max = 4, acquire_timeout = 2, connect_timeout = 2, query_timeout = 5,
        conninfo = "application_name=fault_restart" })
      local marker = faults.ctl_later(0.4, "restart", mode)
      admin:close()
      run_until(run, pool, marker, 2.5)
      check_writes(run)
      check_pool(pool, 4)
      assert.is_true(#run.acked > 0)
      assert.is_true(run.calls > #run.acked)
      pool:close()
    end)
  end

  it("terminated idle and busy backends lose no acknowledged write", function()
    local run = new_run(3000000)
    local pool = assert(pg.pool { min = 3, max = 3, query_timeout = 5, conninfo = "application_name=fault_term" })
    -- busy: terminated while they run pg_sleep, from another process
    local markers = {}
    for i = 1, 3 do
      markers[i] = faults.psql_later(0.2 * i, [[select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'fault_term' and state = 'active']])
    end
    local deadline = pg.monotonic() + 1.2
    while pg.monotonic() < deadline do round(run, pool, { sleep = 0.05 }) end
    for i = 1, 3 do faults.wait(markers[i]) end
    -- idle: terminated between calls
    for _ = 1, 5 do
      assert(admin:query([[select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'fault_term' and state = 'idle']]))
      round(run, pool)
    end
    check_writes(run)
    check_pool(pool, 3)
    assert.is_true((run.errors.closed or 0) + (run.errors.server or 0) > 0, "no busy backend was hit")
    pool:close()
  end)

  it("a pool started while the server is down works once it is up, and refills min", function()
    local run = new_run(4000000)
    admin:close()
    faults.ctl("stop", "fast")
    local pool, err = pg.pool { min = 2, max = 3, connect_timeout = 1, acquire_timeout = 1,
      conninfo = "application_name=fault_down" }
    if not pool then faults.ctl("start") end
    assert(pool, tostring(err))
    assert.are.equal(0, pool:stats().total)
    local v, qerr = call(run, function() return pool:query("select 1") end)
    assert.is_nil(v)
    assert.are.equal("connect", qerr.kind)
    local marker = faults.ctl_later(0.5, "start")
    run_until(run, pool, marker, 1.5)
    -- no maintain(): the pool opened min again by itself, and backed off while down
    for _ = 1, 3 do call(run, function() return pool:query("select 1") end) end
    local st = pool:stats()
    assert.is_true(st.total >= 2, "total " .. st.total)
    assert.are.equal(0, st.consecutive_connect_failures)
    assert.is_true(st.connect_attempts < 100, "connect attempts " .. st.connect_attempts)
    check_writes(run)
    check_pool(pool, 3)
    pool:close()
  end)
end)
