-- update_deployment_status: every one of the 7x7 moves, allowed or refused, and
-- concurrent moves of one deployment from separate processes, of which exactly
-- one wins.
local db = require "coderunner.db"
local pg = require "coderunner.pg"
local testing = require "coderunner.testing"
local t = testing.use { transaction = false } -- a fresh database, migrated, dropped at the end

local STATUSES = { "pending", "building", "deploying", "running", "stopping", "stopped", "failed" }

-- DESIGN.md's table, written out independently of the code under test.
local ALLOWED = {
  pending = { building = true, stopped = true, failed = true },
  building = { deploying = true, stopped = true, failed = true },
  deploying = { running = true, stopped = true, failed = true },
  running = { stopping = true, failed = true },
  stopping = { stopped = true, failed = true },
  stopped = { pending = true },
  failed = { pending = true },
}

local conninfo, svc, project

-- A child process (same Lua VM) that waits on advisory lock `barrier` when
-- given one, then moves deployment `id` to `status`, and prints the outcome.
local CHILD = [[
local db = require "coderunner.db"
local id, status, barrier = arg[1], arg[2], tonumber(arg[3])
local svc = assert(db.new({ url = os.getenv("RACE_URL"), pool = { min = 0, max = 1 } }))
if barrier then
  -- transaction-scoped: two pool:query calls share no session state (the pool
  -- resets a session lock before it lends the connection again)
  assert(svc:query("SELECT pg_advisory_xact_lock_shared($1)", barrier))
end
local d, err = svc:update_deployment_status(id, status)
if d then
  io.write("moved ", d.status, "\n")
else
  io.write("refused ", tostring(err and err.kind), " ", tostring(err and err.from_status), "\n")
end
svc:close()
]]

local child_path

local function spawn(app, id, status, barrier)
  local vm = os.getenv("CODERUNNER_LUA") or "lua5.4"
  local url = assert(pg.conninfo_with(conninfo, { application_name = app }))
  local cmd = ("RACE_URL='%s' %s %s %s %s %s 2>&1"):format(url:gsub("'", "'\\''"), vm, child_path, id,
    status, barrier or "")
  return assert(io.popen(cmd, "r"))
end

-- Waits until `n` sessions named like `pattern` wait on a lock.
local function wait_for_waiters(pattern, n)
  for _ = 1, 400 do
    local r = assert(svc:query([[SELECT count(*) AS n FROM pg_stat_activity
      WHERE application_name LIKE $1 AND wait_event_type = 'Lock']], pattern))
    if r[1].n >= n then return end
    assert(svc:query("SELECT pg_sleep(0.025)"))
  end
  error("the child processes never waited on the lock")
end

local function deployment(status)
  return assert(svc:create_deployment(project.id, { runtime_type = "node", status = status }))
end

setup(function()
  conninfo = t.conninfo
  svc = assert(db.new({ url = conninfo, pool = { min = 1, max = 4 } }))
  local user = assert(svc:create_user("status@example.com", "h"))
  project = assert(svc:create_project(user.id, "status"))
  child_path = os.tmpname()
  local f = assert(io.open(child_path, "w"))
  f:write(CHILD)
  f:close()
end)

teardown(function()
  if child_path then os.remove(child_path) end
  if svc then svc:close() end
end)

describe("update_deployment_status", function()
  for _, from in ipairs(STATUSES) do
    for _, to in ipairs(STATUSES) do
      local verdict = from == to and "keeps" or (ALLOWED[from][to] and "allows" or "refuses")
      it(("%s %s -> %s"):format(verdict, from, to), function()
        local d = deployment(from)
        local moved, err = svc:update_deployment_status(d.id, to)
        local now = assert(svc:get_deployment_by_id(d.id))
        if verdict == "refuses" then
          assert.is_nil(moved)
          assert.equal("invalid_transition", err.kind)
          assert.equal(from, err.from_status)
          assert.equal(to, err.to_status)
          assert.matches(("cannot move from %s to %s"):format(from, to), tostring(err), 1, true)
          assert.equal(from, now.status)
          assert.equal(d.updated_at, now.updated_at)
        else
          assert.is_nil(err)
          assert.equal(to, moved.status)
          assert.is_nil(moved.moved)
          assert.equal(to, now.status)
          if verdict == "keeps" then
            assert.same(d, moved)
            assert.equal(d.updated_at, now.updated_at)
          else
            assert.is_true(now.updated_at >= d.updated_at)
          end
        end
      end)
    end
  end

  it("returns plain nil for a missing deployment, invalid_input for bad arguments", function()
    local v, err = svc:update_deployment_status("00000000-0000-4000-8000-000000000000", "building")
    assert.is_nil(v); assert.is_nil(err)
    local d = deployment("pending")
    v, err = svc:update_deployment_status(d.id, "paused")
    assert.is_nil(v); assert.equal("invalid_input", err.kind)
    v, err = svc:update_deployment_status("nope", "building")
    assert.is_nil(v); assert.equal("invalid_input", err.kind)
    v, err = svc:update_deployment_status(d.id, nil)
    assert.is_nil(v); assert.equal("invalid_input", err.kind)
  end)

  it("walks a whole lifecycle and back", function()
    local d = deployment("pending")
    for _, s in ipairs({ "building", "deploying", "running", "stopping", "stopped", "pending", "failed", "pending" }) do
      assert.equal(s, assert(svc:update_deployment_status(d.id, s)).status)
    end
  end)
end)

describe("concurrent status moves", function()
  it("a move waiting on a row lock re-checks after the holder commits: it loses", function()
    local d = deployment("deploying")
    local tx = assert(svc:begin_transaction())
    assert.equal("running", assert(tx:update_deployment_status(d.id, "running")).status)
    local child = spawn("racer_commit", d.id, "stopped")
    wait_for_waiters("racer_commit", 1)
    assert(svc:commit_transaction(tx))
    local out = child:read("*a")
    child:close()
    assert.equal("refused invalid_transition running\n", out)
    assert.equal("running", svc:get_deployment_by_id(d.id).status)
  end)

  it("a move waiting on a row lock wins when the holder rolls back", function()
    local d = deployment("deploying")
    local tx = assert(svc:begin_transaction())
    assert(tx:update_deployment_status(d.id, "running"))
    local child = spawn("racer_rollback", d.id, "stopped")
    wait_for_waiters("racer_rollback", 1)
    assert(svc:rollback_transaction(tx))
    local out = child:read("*a")
    child:close()
    assert.equal("moved stopped\n", out)
    assert.equal("stopped", svc:get_deployment_by_id(d.id).status)
  end)

  it("two processes released at once: exactly one of two exclusive moves wins", function()
    for round = 1, 5 do
      local d = deployment("deploying")
      local barrier = 7000 + round
      local gate = assert(svc:begin_transaction())
      assert(gate:query("SELECT pg_advisory_xact_lock($1)", barrier))
      local a = spawn("racer_a" .. round, d.id, "running", barrier)
      local b = spawn("racer_b" .. round, d.id, "stopped", barrier)
      wait_for_waiters("racer_%" .. round, 2)
      assert(gate:rollback())
      local out_a, out_b = a:read("*a"), b:read("*a")
      a:close(); b:close()
      local final = svc:get_deployment_by_id(d.id).status
      local wins = (out_a:match("^moved") and 1 or 0) + (out_b:match("^moved") and 1 or 0)
      assert.equal(1, wins, out_a .. out_b)
      local winner, loser = out_a, out_b
      if out_b:match("^moved") then winner, loser = out_b, out_a end
      assert.equal("moved " .. final .. "\n", winner)
      assert.equal("refused invalid_transition " .. final .. "\n", loser)
    end
  end)
end)
