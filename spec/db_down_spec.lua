-- The service starts with the database down, says so, fails each operation with
-- kind "connect", and recovers by itself when the database comes back.
local server = require "support.server"
local db = require "coderunner.db"
local migrate = require "coderunner.migrate"

local UUID = "00000000-0000-4000-8000-000000000000"

-- Every operation, with valid arguments (so nothing is refused before SQL).
local OPERATIONS = {
  { "create_user", "down@example.com", "hash", "free" },
  { "get_user_by_id", UUID },
  { "get_user_by_email", "down@example.com" },
  { "update_user", UUID, { plan_type = "pro" } },
  { "delete_user", UUID },
  { "get_users", 10, 0 },
  { "create_project", UUID, "p", "d" },
  { "get_project_by_id", UUID },
  { "get_projects_by_user_id", UUID, 10, 0 },
  { "update_project", UUID, { name = "n" } },
  { "delete_project", UUID },
  { "get_project_with_user", UUID },
  { "create_deployment", UUID, { runtime_type = "node" } },
  { "get_deployment_by_id", UUID },
  { "get_deployments_by_project_id", UUID, 10, 0 },
  { "update_deployment_status", UUID, "building" },
  { "update_deployment", UUID, { app_sandbox_id = "x" } },
  { "delete_deployment", UUID },
  { "get_deployment_with_details", UUID },
  { "get_deployments_by_status", "running", 10, 0 },
  { "get_running_deployment_count_by_user", UUID },
  { "get_system_stats" },
}

local unpack = table.unpack or unpack -- luacheck: ignore 143

describe("with the database down", function()
  local svc

  setup(function()
    -- nothing listens on port 1
    svc = assert(db.new({ url = "host=127.0.0.1 port=1 dbname=x user=u password=down-secret",
      pool = { min = 2, max = 3, connect_timeout = 1 } }))
  end)

  teardown(function() svc:close() end)

  it("starts anyway", function()
    assert.is_table(svc)
    assert.is_false(svc:is_closed())
  end)

  it("health() reports unhealthy with the reason, and no password", function()
    local h = svc:health()
    assert.equal("unhealthy", h.status)
    assert.equal("connect", h.error_kind)
    assert.is_string(h.error)
    assert.is_nil(h.latency_ms)
    assert.is_table(h.pool)
    assert.not_matches("down-secret", h.error, 1, true)
    assert.not_matches("down-secret", tostring(svc), 1, true)
  end)

  for _, op in ipairs(OPERATIONS) do
    it(op[1] .. " returns nil, err with kind connect", function()
      local v, err = svc[op[1]](svc, unpack(op, 2))
      assert.is_nil(v)
      assert.equal("connect", err.kind, tostring(err))
      assert.not_matches("down-secret", tostring(err), 1, true)
    end)
  end

  it("still validates first: invalid_input, not connect", function()
    local v, err = svc:create_user("bad", "h")
    assert.is_nil(v)
    assert.equal("invalid_input", err.kind)
  end)

  it("transactions fail with kind connect", function()
    local ran = false
    local v, err = svc:execute_in_transaction(function() ran = true end)
    assert.is_nil(v)
    assert.equal("connect", err.kind)
    assert.is_false(ran)
    v, err = svc:begin_transaction()
    assert.is_nil(v)
    assert.equal("connect", err.kind)
  end)
end)

describe("recovery", function()
  local NAME = "coderunner_db_down_later"

  it("recovers by itself when the database appears", function()
    local admin = server.connect()
    assert(admin:exec("DROP DATABASE IF EXISTS " .. NAME .. " WITH (FORCE)"))
    local svc = assert(db.new({ url = "dbname=" .. NAME, pool = { min = 1, max = 2, connect_timeout = 2 } }))

    local h = svc:health()
    assert.equal("unhealthy", h.status)
    assert.equal("connect", h.error_kind)
    assert.matches(NAME, h.error, 1, true)
    local v, err = svc:get_users()
    assert.is_nil(v)
    assert.equal("connect", err.kind)

    assert(admin:exec("CREATE DATABASE " .. NAME))
    admin:close()

    h = svc:health()
    assert.equal("healthy", h.status, h.error)
    assert.equal(NAME, h.database)
    assert(migrate.up(svc.pool, { dir = "migrations" }))
    local u = assert(svc:create_user("back@example.com", "h"))
    assert.equal(u.id, svc:get_user_by_id(u.id).id)
    assert.is_true(svc:close())
  end)

  it("recovers after the database's connections are terminated", function()
    local conninfo = server.fresh_database("coderunner_db_down_kill")
    local svc = assert(db.new({ url = conninfo, pool = { min = 2, max = 2 } }))
    assert.equal("healthy", svc:health().status)
    local admin = server.connect()
    assert(admin:query([[SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = 'coderunner_db_down_kill' AND pid <> pg_backend_pid()]]))
    admin:close()
    -- a query may fail on a connection that died under it, but the pool replaces it
    local ok = false
    for _ = 1, 3 do
      if svc:health().status == "healthy" then ok = true; break end
    end
    assert.is_true(ok)
    assert.equal("healthy", svc:health().status)
    svc:close()
  end)
end)
