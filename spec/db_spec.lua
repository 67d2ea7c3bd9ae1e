-- The DatabaseService against a real server: every operation's success and
-- failure paths, validation before SQL, cascades, pagination, joins, health,
-- stats, the singleton and graceful close.
local pg = require "coderunner.pg"
local db = require "coderunner.db"
local testing = require "coderunner.testing"
local t = testing.use { transaction = false } -- a fresh database, migrated, dropped at the end

local MISSING = "00000000-0000-4000-8000-000000000000"
local HASH = "$2b$12$abcdefghijklmnopqrstuv.secret-hash-value"

local conninfo, svc

-- n queries sent to the server so far (validation failures must not add any)
local function queries() return svc.pool:stats().queries end

-- Asserts nil, err of `kind` and that no SQL ran while producing it.
local function refused(kind, pattern, fn)
  local before = queries()
  local v, err = fn()
  assert.is_nil(v)
  assert.is_table(err, "expected an error object")
  assert.equal(kind, err.kind, tostring(err))
  if pattern then assert.matches(pattern, err.message, 1, true) end
  if kind == "invalid_input" and not err.sqlstate then
    assert.equal(before, queries(), "validation must fail before any SQL")
  end
  return err
end

local function count(tbl)
  return svc:query("SELECT count(*) AS n FROM " .. tbl)[1].n
end

local n = 0
local function email()
  n = n + 1
  return ("user%d-%d@example.com"):format(n, os.time())
end

local function no_secret(v, secret, seen)
  seen = seen or {}
  if type(v) == "string" then assert.not_matches(secret, v, 1, true) end
  if type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do no_secret(k, secret, seen); no_secret(x, secret, seen) end
  end
end

setup(function()
  conninfo = t.conninfo
  svc = assert(db.new({ url = conninfo, pool = { min = 1, max = 4 } }))
end)

teardown(function()
  if svc then svc:close() end
end)

describe("users", function()
  it("create_user returns the row with defaults", function()
    local e = email()
    local u = assert(svc:create_user(e, HASH))
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", u.id)
    assert.equal(e, u.email)
    assert.equal(HASH, u.password_hash)
    assert.equal("free", u.plan_type)
    assert.is_string(u.created_at)
    assert.equal(u.created_at, u.updated_at)
    assert.equal("pro", assert(svc:create_user(email(), HASH, "pro")).plan_type)
    assert.equal("enterprise", assert(svc:create_user(email(), HASH, "enterprise")).plan_type)
  end)

  it("create_user validates email, hash and plan before any SQL and writes nothing", function()
    local before = count("users")
    for _, bad in ipairs({ "plain", "a@b", "a@@b.com", "a b@c.com", "a@.com", "a@b..com", "a@b.c0m", "",
      ("x"):rep(250) .. "@e.com", 42, false }) do
      refused("invalid_input", "email", function() return svc:create_user(bad, HASH) end)
    end
    refused("invalid_input", "password_hash", function() return svc:create_user(email(), "") end)
    refused("invalid_input", "password_hash", function() return svc:create_user(email(), nil) end)
    refused("invalid_input", "plan_type must be one of free, pro, enterprise", function()
      return svc:create_user(email(), HASH, "platinum")
    end)
    assert.equal(before, count("users"))
  end)

  it("create_user with a taken email is a conflict, without the hash anywhere", function()
    local e = email()
    assert(svc:create_user(e, HASH))
    local err = refused("conflict", "already exists", function() return svc:create_user(e, "other" .. HASH) end)
    assert.equal("23505", err.sqlstate)
    assert.equal("users_email_key", err.constraint)
    no_secret(err, HASH)
    no_secret(tostring(err), "secret-hash")
  end)

  it("get_user_by_id and get_user_by_email find the user, nil when missing", function()
    local u = assert(svc:create_user(email(), HASH))
    assert.same(u, svc:get_user_by_id(u.id))
    assert.same(u, svc:get_user_by_id(u.id:upper()))
    assert.same(u, svc:get_user_by_email(u.email))
    local v, err = svc:get_user_by_id(MISSING)
    assert.is_nil(v); assert.is_nil(err)
    v, err = svc:get_user_by_email("nobody@example.com")
    assert.is_nil(v); assert.is_nil(err)
    refused("invalid_input", "user id must be a UUID", function() return svc:get_user_by_id("42") end)
    refused("invalid_input", "user id must be a UUID", function() return svc:get_user_by_id(nil) end)
    refused("invalid_input", "user id", function() return svc:get_user_by_id("' OR 1=1 --") end)
    refused("invalid_input", "email", function() return svc:get_user_by_email("nope") end)
  end)

  it("update_user touches only the given known columns", function()
    local u = assert(svc:create_user(email(), HASH))
    local e2 = email()
    local v = assert(svc:update_user(u.id, { email = e2, plan_type = "pro" }))
    assert.equal(e2, v.email)
    assert.equal("pro", v.plan_type)
    assert.equal(HASH, v.password_hash)
    assert.is_true(v.updated_at >= u.updated_at)
    v = assert(svc:update_user(u.id, { password_hash = "new-hash" }))
    assert.equal("new-hash", v.password_hash)
    assert.equal(e2, v.email)
    assert.same(v, svc:update_user(u.id, {}))
    assert.is_nil(svc:update_user(MISSING, { plan_type = "pro" }))
  end)

  it("update_user refuses unknown keys and bad values without SQL", function()
    local u = assert(svc:create_user(email(), HASH))
    refused("invalid_input", "unknown field \"is_admin\"", function()
      return svc:update_user(u.id, { is_admin = true })
    end)
    refused("invalid_input", "unknown field \"id\"", function() return svc:update_user(u.id, { id = MISSING }) end)
    refused("invalid_input", "unknown field", function()
      return svc:update_user(u.id, { ["plan_type = 'pro'; DROP TABLE users; --"] = 1 })
    end)
    refused("invalid_input", "plan_type", function() return svc:update_user(u.id, { plan_type = "gold" }) end)
    refused("invalid_input", "email", function() return svc:update_user(u.id, { email = "bad" }) end)
    refused("invalid_input", "must be a table", function() return svc:update_user(u.id, "plan=pro") end)
    refused("invalid_input", "user id", function() return svc:update_user("nope", {}) end)
    assert.same(u, svc:get_user_by_id(u.id))
  end)

  it("update_user to a taken email is a conflict", function()
    local a = assert(svc:create_user(email(), HASH))
    local b = assert(svc:create_user(email(), HASH))
    refused("conflict", a.email, function() return svc:update_user(b.id, { email = a.email }) end)
  end)

  it("delete_user returns true, then false", function()
    local u = assert(svc:create_user(email(), HASH))
    assert.is_true(svc:delete_user(u.id))
    assert.is_false(svc:delete_user(u.id))
    assert.is_nil(svc:get_user_by_id(u.id))
    refused("invalid_input", "user id", function() return svc:delete_user("x") end)
  end)
end)

describe("projects", function()
  local user
  before_each(function() user = assert(svc:create_user(email(), HASH)) end)

  it("create_project, get_project_by_id", function()
    local p = assert(svc:create_project(user.id, "site", "my site"))
    assert.equal(user.id, p.user_id)
    assert.equal("site", p.name)
    assert.equal("my site", p.description)
    assert.same(p, svc:get_project_by_id(p.id))
    local q = assert(svc:create_project(user.id, "bare"))
    assert.is_nil(q.description)
    assert.is_nil(svc:get_project_by_id(MISSING))
  end)

  it("create_project for a missing user is invalid_input naming the user", function()
    local before = count("projects")
    local err = refused("invalid_input", "user " .. MISSING .. " does not exist", function()
      return svc:create_project(MISSING, "orphan")
    end)
    assert.equal("23503", err.sqlstate)
    assert.equal(before, count("projects"))
  end)

  it("create_project validates before SQL", function()
    refused("invalid_input", "project name", function() return svc:create_project(user.id, "") end)
    refused("invalid_input", "project name", function() return svc:create_project(user.id, "   ") end)
    refused("invalid_input", "project name", function() return svc:create_project(user.id, ("n"):rep(256)) end)
    refused("invalid_input", "project name", function() return svc:create_project(user.id, 7) end)
    refused("invalid_input", "description", function() return svc:create_project(user.id, "a", {}) end)
    refused("invalid_input", "user id", function() return svc:create_project("u1", "a") end)
  end)

  it("update_project, including clearing the description with pg.null", function()
    local p = assert(svc:create_project(user.id, "a", "desc"))
    local q = assert(svc:update_project(p.id, { name = "b" }))
    assert.equal("b", q.name)
    assert.equal("desc", q.description)
    q = assert(svc:update_project(p.id, { description = pg.null }))
    assert.is_nil(q.description)
    assert.is_nil(svc:update_project(MISSING, { name = "x" }))
    refused("invalid_input", "unknown field \"user_id\"", function()
      return svc:update_project(p.id, { user_id = MISSING })
    end)
    refused("invalid_input", "project name", function() return svc:update_project(p.id, { name = "" }) end)
  end)

  it("delete_project cascades to its deployments", function()
    local p = assert(svc:create_project(user.id, "a"))
    local d = assert(svc:create_deployment(p.id, { runtime_type = "node" }))
    assert.is_true(svc:delete_project(p.id))
    assert.is_nil(svc:get_deployment_by_id(d.id))
    assert.is_false(svc:delete_project(p.id))
    assert.is_not_nil(svc:get_user_by_id(user.id))
  end)

  it("get_project_with_user nests the owner without password_hash", function()
    local p = assert(svc:create_project(user.id, "joined", "d"))
    local j = assert(svc:get_project_with_user(p.id))
    assert.equal(p.id, j.id)
    assert.equal("joined", j.name)
    assert.same({ id = user.id, email = user.email, plan_type = user.plan_type, created_at = user.created_at,
      updated_at = user.updated_at }, j.user)
    assert.is_nil(j.user.password_hash)
    assert.is_nil(j.password_hash)
    assert.is_nil(j.user__email)
    no_secret(j, HASH)
    assert.is_nil(svc:get_project_with_user(MISSING))
    refused("invalid_input", "project id", function() return svc:get_project_with_user("p") end)
  end)
end)

describe("deployments", function()
  local user, project
  before_each(function()
    user = assert(svc:create_user(email(), HASH))
    project = assert(svc:create_project(user.id, "app"))
  end)

  it("create_deployment stores every field; db_connection_info round-trips nested tables", function()
    local info = { host = "10.0.0.1", port = 5432, ssl = true, tags = { "a", "b" },
      options = { pool = { max = 5, idle = 1.5 }, name = "x" } }
    local d = assert(svc:create_deployment(project.id, {
      runtime_type = "node18", app_sandbox_id = "sbx-1", public_url = "https://app.example.com/path?q=1",
      db_sandbox_id = "dbx-1", db_connection_info = info,
    }))
    assert.equal("pending", d.status)
    assert.equal(project.id, d.project_id)
    assert.equal("node18", d.runtime_type)
    assert.equal("sbx-1", d.app_sandbox_id)
    assert.equal("https://app.example.com/path?q=1", d.public_url)
    assert.equal("dbx-1", d.db_sandbox_id)
    assert.same(info, d.db_connection_info)
    assert.same(info, svc:get_deployment_by_id(d.id).db_connection_info)
    local e = assert(svc:create_deployment(project.id, { runtime_type = "go", status = "building" }))
    assert.equal("building", e.status)
    assert.is_nil(e.public_url)
    assert.is_nil(e.db_connection_info)
  end)

  it("create_deployment validates before SQL", function()
    local before = count("deployments")
    refused("invalid_input", "runtime_type is required", function() return svc:create_deployment(project.id, {}) end)
    refused("invalid_input", "runtime_type", function()
      return svc:create_deployment(project.id, { runtime_type = "" })
    end)
    for _, url in ipairs({ "ftp://x.com", "http://", "https:// x.com", "javascript:alert(1)", "x.com", 5 }) do
      refused("invalid_input", "public_url", function()
        return svc:create_deployment(project.id, { runtime_type = "n", public_url = url })
      end)
    end
    refused("invalid_input", "db_connection_info must be a table", function()
      return svc:create_deployment(project.id, { runtime_type = "n", db_connection_info = "host=x" })
    end)
    refused("invalid_input", "status must be one of", function()
      return svc:create_deployment(project.id, { runtime_type = "n", status = "paused" })
    end)
    refused("invalid_input", "unknown field \"color\"", function()
      return svc:create_deployment(project.id, { runtime_type = "n", color = "red" })
    end)
    refused("invalid_input", "must be a table", function() return svc:create_deployment(project.id, nil) end)
    refused("invalid_input", "project id", function() return svc:create_deployment("x", { runtime_type = "n" }) end)
    assert.equal(before, count("deployments"))
  end)

  it("create_deployment for a missing project is invalid_input naming it", function()
    refused("invalid_input", "project " .. MISSING .. " does not exist", function()
      return svc:create_deployment(MISSING, { runtime_type = "n" })
    end)
  end)

  it("update_deployment updates known fields, refuses status and unknown keys", function()
    local d = assert(svc:create_deployment(project.id, { runtime_type = "n", public_url = "http://a.io" }))
    local e = assert(svc:update_deployment(d.id, { app_sandbox_id = "s2", db_connection_info = { k = { 1, 2 } },
      public_url = pg.null }))
    assert.equal("s2", e.app_sandbox_id)
    assert.same({ k = { 1, 2 } }, e.db_connection_info)
    assert.is_nil(e.public_url)
    assert.equal("n", e.runtime_type)
    refused("invalid_input", "update_deployment_status", function()
      return svc:update_deployment(d.id, { status = "running" })
    end)
    refused("invalid_input", "unknown field", function()
      return svc:update_deployment(d.id, { project_id = MISSING })
    end)
    refused("invalid_input", "public_url", function() return svc:update_deployment(d.id, { public_url = "nope" }) end)
    assert.is_nil(svc:update_deployment(MISSING, { app_sandbox_id = "x" }))
    assert.same(e, svc:update_deployment(d.id, {}))
  end)

  it("delete_deployment returns true, then false", function()
    local d = assert(svc:create_deployment(project.id, { runtime_type = "n" }))
    assert.is_true(svc:delete_deployment(d.id))
    assert.is_false(svc:delete_deployment(d.id))
    refused("invalid_input", "deployment id", function() return svc:delete_deployment(1) end)
  end)

  it("get_deployment_with_details nests project and user without password_hash", function()
    local d = assert(svc:create_deployment(project.id, { runtime_type = "n", db_connection_info = { a = 1 } }))
    local j = assert(svc:get_deployment_with_details(d.id))
    assert.equal(d.id, j.id)
    assert.same({ a = 1 }, j.db_connection_info)
    assert.same(project, j.project)
    assert.same({ id = user.id, email = user.email, plan_type = user.plan_type, created_at = user.created_at,
      updated_at = user.updated_at }, j.user)
    no_secret(j, HASH)
    for k in pairs(j) do assert.not_matches("__", k, 1, true) end
    assert.is_nil(svc:get_deployment_with_details(MISSING))
  end)

  it("get_running_deployment_count_by_user counts only running deployments of that user", function()
    assert.equal(0, svc:get_running_deployment_count_by_user(user.id))
    local other = assert(svc:create_project(user.id, "second"))
    for _, p in ipairs({ project, project, other }) do
      assert(svc:create_deployment(p.id, { runtime_type = "n", status = "running" }))
    end
    assert(svc:create_deployment(project.id, { runtime_type = "n", status = "stopped" }))
    local stranger = assert(svc:create_user(email(), HASH))
    local sp = assert(svc:create_project(stranger.id, "x"))
    assert(svc:create_deployment(sp.id, { runtime_type = "n", status = "running" }))
    assert.equal(3, svc:get_running_deployment_count_by_user(user.id))
    assert.equal(0, svc:get_running_deployment_count_by_user(MISSING))
    refused("invalid_input", "user id", function() return svc:get_running_deployment_count_by_user("me") end)
  end)

  it("get_deployments_by_status lists one status, newest first", function()
    local made = {}
    for i = 1, 3 do made[i] = assert(svc:create_deployment(project.id, { runtime_type = "n", status = "stopping" })) end
    local list = assert(svc:get_deployments_by_status("stopping"))
    assert.equal(3, #list)
    assert.equal(made[3].id, list[1].id)
    assert.equal(made[1].id, list[3].id)
    for _, d in ipairs(list) do assert.equal("stopping", d.status) end
    refused("invalid_input", "status", function() return svc:get_deployments_by_status("paused") end)
  end)
end)

describe("cascades", function()
  it("delete_user removes the user's projects and deployments, and nobody else's", function()
    local u = assert(svc:create_user(email(), HASH))
    local keep = assert(svc:create_user(email(), HASH))
    local p1 = assert(svc:create_project(u.id, "one"))
    local p2 = assert(svc:create_project(u.id, "two"))
    local kp = assert(svc:create_project(keep.id, "kept"))
    local ds = {}
    for _, p in ipairs({ p1, p1, p2 }) do ds[#ds + 1] = assert(svc:create_deployment(p.id, { runtime_type = "n" })) end
    local kd = assert(svc:create_deployment(kp.id, { runtime_type = "n" }))
    assert.is_true(svc:delete_user(u.id))
    assert.is_nil(svc:get_project_by_id(p1.id))
    assert.is_nil(svc:get_project_by_id(p2.id))
    for _, d in ipairs(ds) do assert.is_nil(svc:get_deployment_by_id(d.id)) end
    assert.equal(0, #assert(svc:get_projects_by_user_id(u.id)))
    assert.is_not_nil(svc:get_project_by_id(kp.id))
    assert.is_not_nil(svc:get_deployment_by_id(kd.id))
  end)
end)

describe("pagination", function()
  local user, project, ids
  setup(function()
    user = assert(svc:create_user(email(), HASH))
    project = assert(svc:create_project(user.id, "paged"))
    ids = {}
    for i = 1, 5 do
      ids[i] = assert(svc:create_project(user.id, "p" .. i)).id
    end
  end)

  it("lists newest first", function()
    local list = assert(svc:get_projects_by_user_id(user.id))
    assert.equal(6, #list)
    for i = 1, 5 do assert.equal(ids[6 - i], list[i].id) end
    assert.equal(project.id, list[6].id)
    for i = 2, #list do assert.is_true(list[i - 1].created_at >= list[i].created_at) end
  end)

  it("pages cover every row once; past the end is empty", function()
    local seen, offset = {}, 0
    while true do
      local page = assert(svc:get_projects_by_user_id(user.id, 2, offset))
      if #page == 0 then break end
      assert.is_true(#page <= 2)
      for _, p in ipairs(page) do
        assert.is_nil(seen[p.id]); seen[p.id] = true
      end
      offset = offset + 2
    end
    assert.equal(6, offset)
    assert.equal(0, #assert(svc:get_projects_by_user_id(user.id, 1000, 6)))
    assert.equal(0, #assert(svc:get_projects_by_user_id(user.id, 1, 1e9)))
    assert.equal(1, #assert(svc:get_projects_by_user_id(user.id, 1, 5)))
  end)

  it("has a stable order among rows created in one transaction (same created_at)", function()
    local made = assert(svc:execute_in_transaction(function(tx)
      local out = {}
      for i = 1, 6 do out[i] = assert(tx:create_deployment(project.id, { runtime_type = "r" .. i })).id end
      return out
    end))
    local all = assert(svc:get_deployments_by_project_id(project.id))
    assert.equal(6, #all)
    local a = {}
    for i, d in ipairs(all) do
      a[i] = d.id
      if i > 1 then
        assert.equal(all[1].created_at, d.created_at)
        assert.is_true(all[i - 1].id > d.id, "ties ordered by id, descending")
      end
    end
    for _ = 1, 3 do
      local pages = {}
      for off = 0, 5 do pages[#pages + 1] = assert(svc:get_deployments_by_project_id(project.id, 1, off))[1].id end
      assert.same(a, pages)
    end
    table.sort(made); table.sort(a)
    assert.same(made, a)
  end)

  it("refuses limits and offsets out of bounds before SQL", function()
    for _, limit in ipairs({ 0, -1, 1001, 1.5, "10", 0 / 0, math.huge }) do
      refused("invalid_input", "limit must be a whole number from 1 to 1000", function()
        return svc:get_users(limit, 0)
      end)
    end
    for _, offset in ipairs({ -1, 0.5, "0", math.huge }) do
      refused("invalid_input", "offset must be a whole number", function()
        return svc:get_projects_by_user_id(user.id, 10, offset)
      end)
    end
    refused("invalid_input", "limit", function() return svc:get_deployments_by_project_id(project.id, 5000) end)
    refused("invalid_input", "offset", function() return svc:get_deployments_by_status("running", 1, -3) end)
    assert.equal(1, #assert(svc:get_users(1)))
    assert.is_true(#assert(svc:get_users(1000, 0)) > 1)
  end)

  it("get_users pages newest first", function()
    local newest = assert(svc:create_user(email(), HASH))
    local page = assert(svc:get_users(2, 0))
    assert.equal(newest.id, page[1].id)
    local next_page = assert(svc:get_users(2, 1))
    assert.equal(page[2].id, next_page[1].id)
  end)
end)

describe("health and statistics", function()
  it("health reports status, latency, version, database and pool", function()
    local h = svc:health()
    assert.equal("healthy", h.status)
    assert.equal(t.database, h.database)
    assert.matches("^%d+", h.server_version)
    assert.is_number(h.latency_ms)
    assert.is_true(h.latency_ms >= 0 and h.latency_ms < 5000)
    assert.is_table(h.pool)
    assert.equal(4, h.pool.max)
    assert.is_true(h.pool.total >= 1)
    assert.is_nil(h.error)
  end)

  it("get_system_stats counts users by plan, projects, deployments by status", function()
    local s0 = assert(svc:get_system_stats())
    local u = assert(svc:create_user(email(), HASH, "enterprise"))
    local p = assert(svc:create_project(u.id, "stats"))
    assert(svc:create_deployment(p.id, { runtime_type = "n", status = "running" }))
    assert(svc:create_deployment(p.id, { runtime_type = "n", status = "failed" }))
    local s = assert(svc:get_system_stats())
    assert.equal(s0.users.total + 1, s.users.total)
    assert.equal(s0.users.by_plan.enterprise + 1, s.users.by_plan.enterprise)
    assert.equal(s0.users.by_plan.free, s.users.by_plan.free)
    assert.equal(s0.projects.total + 1, s.projects.total)
    assert.equal(s0.deployments.total + 2, s.deployments.total)
    assert.equal(s0.deployments.running + 1, s.deployments.running)
    assert.equal(s0.deployments.by_status.failed + 1, s.deployments.by_status.failed)
    assert.equal(0, s.deployments.by_status.deploying + s0.deployments.by_status.deploying)
    local total = 0
    for _, c in pairs(s.users.by_plan) do total = total + c end
    assert.equal(s.users.total, total)
    assert.equal(count("users"), s.users.total)
    assert.equal(t.database, s.database.name)
    assert.is_true(s.database.size_bytes > 0)
    assert.is_string(s.database.size)
    assert.is_table(s.pool)
    assert.is_number(s.slow_queries)
  end)

  it("slow queries are counted and logged (SQL only, never parameters)", function()
    local lines = {}
    local slow = assert(db.new({ url = conninfo, slow_query_ms = 1, pool = { min = 0, max = 1 },
      logger = function(level, message) lines[#lines + 1] = level .. " " .. message end }))
    assert(slow:query("SELECT pg_sleep(0.02), $1::text AS secret", "param-secret-value"))
    local s = assert(slow:get_system_stats())
    assert.is_true(s.slow_queries >= 1)
    assert.is_true(#lines >= 1)
    assert.matches("pg_sleep", table.concat(lines, "\n"), 1, true)
    assert.not_matches("param-secret-value", table.concat(lines, "\n"), 1, true)
    slow:close()
  end)
end)

describe("service lifecycle", function()
  it("db.instance() is one process-wide service, built from the environment", function()
    local a = assert(db.instance())
    local b = assert(db.instance())
    assert.equal(a, b)
    assert.equal("healthy", a:health().status)
    assert.is_true(a:close())
    local c = assert(db.instance())
    assert.not_equal(a, c)
    assert.equal(c, db.instance())
    c:close()
  end)

  it("db.new refuses a bad configuration", function()
    local s, err = db.new({ pool = { min = 5, max = 1 } })
    assert.is_nil(s)
    assert.equal("invalid_input", err.kind)
    assert.matches("pool.min", err.message)
  end)

  it("tostring of a service never shows the password", function()
    local s = assert(db.new({ url = "postgresql://app:pa55word-secret@127.0.0.1:1/x", pool = { min = 0 } }))
    assert.not_matches("pa55word", tostring(s), 1, true)
    assert.not_matches("pa55word", s.conninfo_redacted, 1, true)
    local h = s:health()
    no_secret(h, "pa55word")
    s:close()
  end)

  -- connections a pool opened with this application_name, as the server sees them
  local function sessions(app)
    return svc:query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", app)[1].n
  end
  -- a backend leaves pg_stat_activity a moment after its client hung up
  local function gone(app)
    for _ = 1, 100 do
      if sessions(app) == 0 then return true end
      svc:query("SELECT pg_sleep(0.02)")
    end
    return false
  end

  it("close() shuts the pool down gracefully and is idempotent", function()
    local s = assert(db.new({ url = conninfo .. " application_name=closer", pool = { min = 2, max = 3 } }))
    assert(s:get_users(1))
    assert.is_true(sessions("closer") >= 1)
    assert.is_true(s:close(1))
    assert.is_true(s:is_closed())
    assert.is_true(gone("closer"))
    assert.is_true(s:close())
    assert.matches("closed", tostring(s))
    -- using a closed service is a programmer error: it raises
    assert.has_error(function() s:get_users(1) end, "attempt to use a closed pool")
  end)

  it("close(timeout) waits for a busy connection, then closes it when released", function()
    local s = assert(db.new({ url = conninfo .. " application_name=busy_closer", pool = { min = 1, max = 2 } }))
    local tx = assert(s:begin_transaction())
    assert(tx:create_user(email(), HASH))
    assert.is_false(s:close(0.2))
    assert.equal(1, sessions("busy_closer"))
    assert(tx:rollback())
    assert.is_true(gone("busy_closer"))
  end)
end)
