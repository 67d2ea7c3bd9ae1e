-- Transactions through the service: execute_in_transaction (and its legacy
-- alias transaction) hand fn every domain method bound to the transaction;
-- begin/commit/rollback_transaction; users, projects and deployments rolled
-- back together.
local db = require "coderunner.db"
local testing = require "coderunner.testing"
local t = testing.use { transaction = false } -- a fresh database, migrated, dropped at the end

local svc, other

local n = 0
local function email()
  n = n + 1
  return ("tx%d@example.com"):format(n)
end

local function counts()
  local r = assert(svc:query([[SELECT (SELECT count(*) FROM users) AS users,
    (SELECT count(*) FROM projects) AS projects, (SELECT count(*) FROM deployments) AS deployments]]))
  return r[1]
end

setup(function()
  svc = assert(db.new({ url = t.conninfo, pool = { min = 1, max = 4 } }))
  other = assert(db.new({ url = t.conninfo, pool = { min = 1, max = 1 } }))
end)

teardown(function()
  if svc then svc:close() end
  if other then other:close() end
end)

-- Creates a user, a project and a deployment through `ops`; returns them.
local function create_all(ops)
  local u = assert(ops:create_user(email(), "h", "pro"))
  local p = assert(ops:create_project(u.id, "in-tx"))
  local d = assert(ops:create_deployment(p.id, { runtime_type = "node", db_connection_info = { a = { b = 1 } } }))
  assert(ops:update_deployment_status(d.id, "building"))
  return u, p, d
end

describe("execute_in_transaction", function()
  it("hands fn every domain method bound to the transaction", function()
    local names = { "create_user", "get_user_by_id", "get_user_by_email", "update_user", "delete_user", "get_users",
      "create_project", "get_project_by_id", "get_projects_by_user_id", "update_project", "delete_project",
      "get_project_with_user", "create_deployment", "get_deployment_by_id", "get_deployments_by_project_id",
      "update_deployment_status", "update_deployment", "delete_deployment", "get_deployment_with_details",
      "get_deployments_by_status", "get_running_deployment_count_by_user", "query" }
    assert(svc:execute_in_transaction(function(ops)
      for _, name in ipairs(names) do assert.is_function(ops[name], name) end
    end))
  end)

  it("commits users, projects and deployments together and returns fn's results", function()
    local before = counts()
    local u, p, d = svc:execute_in_transaction(function(ops)
      local u, p, d = create_all(ops)
      -- visible inside, invisible outside until commit
      assert.equal(p.id, ops:get_deployment_with_details(d.id).project.id)
      assert.is_nil(other:get_user_by_id(u.id))
      return u, p, d
    end)
    assert.is_table(u)
    assert.equal(u.id, svc:get_user_by_id(u.id).id)
    assert.equal(p.id, svc:get_project_by_id(p.id).id)
    assert.equal("building", svc:get_deployment_by_id(d.id).status)
    assert.equal(u.id, other:get_user_by_id(u.id).id)
    local after = counts()
    assert.equal(before.users + 1, after.users)
    assert.equal(before.deployments + 1, after.deployments)
  end)

  it("returns true when fn returns nothing", function()
    assert.is_true(svc:execute_in_transaction(function(ops) assert(ops:get_users(1)) end))
  end)

  it("rolls everything back when fn returns nil, err", function()
    local before = counts()
    local my_err = { kind = "invalid_input", message = "changed my mind" }
    local v, err = svc:execute_in_transaction(function(ops)
      create_all(ops)
      return nil, my_err
    end)
    assert.is_nil(v)
    assert.equal(my_err, err)
    assert.same(before, counts())
  end)

  it("rolls everything back when fn raises, and returns nil and the error", function()
    local before = counts()
    local v, err = svc:execute_in_transaction(function(ops)
      create_all(ops)
      error("boom in the middle")
    end)
    assert.same(before, counts())
    assert.is_nil(v)
    assert.matches("boom in the middle", tostring(err), 1, true)
    v, err = svc:execute_in_transaction(function(ops)
      create_all(ops)
      error({ code = 42 })
    end)
    assert.is_nil(v)
    assert.same({ code = 42 }, err)
    assert.same(before, counts())
  end)

  it("rolls back updates and deletes of existing rows across the three tables", function()
    local u, p, d = create_all(svc)
    local keep = assert(svc:create_project(u.id, "kept"))
    local v, err = svc:execute_in_transaction(function(ops)
      assert(ops:update_user(u.id, { plan_type = "enterprise", email = email() }))
      assert(ops:update_project(p.id, { name = "renamed" }))
      assert(ops:update_deployment_status(d.id, "deploying"))
      assert(ops:update_deployment(d.id, { db_connection_info = { replaced = true } }))
      assert.is_true(ops:delete_project(keep.id))
      -- a refused move inside the transaction makes fn give up
      return ops:update_deployment_status(d.id, "pending")
    end)
    assert.is_nil(v)
    assert.equal("invalid_transition", err.kind)
    assert.same(u, svc:get_user_by_id(u.id))
    assert.equal("in-tx", svc:get_project_by_id(p.id).name)
    local now = svc:get_deployment_by_id(d.id)
    assert.equal("building", now.status)
    assert.same({ a = { b = 1 } }, now.db_connection_info)
    assert.is_not_nil(svc:get_project_by_id(keep.id))
  end)

  it("a conflict inside the transaction rolls back what came before it", function()
    local existing = assert(svc:create_user(email(), "h"))
    local before = counts()
    local v, err = svc:execute_in_transaction(function(ops)
      local u = assert(ops:create_user(email(), "h"))
      assert(ops:create_project(u.id, "lost"))
      return ops:create_user(existing.email, "h")
    end)
    assert.is_nil(v)
    assert.equal("conflict", err.kind)
    assert.same(before, counts())
  end)

  it("cascading deletes inside a rolled back transaction come back", function()
    local u, p, d = create_all(svc)
    assert.is_nil(svc:execute_in_transaction(function(ops)
      assert.is_true(ops:delete_user(u.id))
      assert.is_nil(ops:get_deployment_by_id(d.id))
      return nil, "undo"
    end))
    assert.equal(p.id, svc:get_project_by_id(p.id).id)
    assert.equal(d.id, svc:get_deployment_by_id(d.id).id)
  end)

  it("nests with a savepoint: an inner failure undoes only the inner part", function()
    local outer_user, inner_email
    assert(svc:execute_in_transaction(function(ops)
      outer_user = assert(ops:create_user(email(), "h"))
      inner_email = email()
      local v = ops:execute_in_transaction(function(inner)
        assert(inner:create_user(inner_email, "h"))
        return nil, "inner gives up"
      end)
      assert.is_nil(v)
    end))
    assert.is_not_nil(svc:get_user_by_id(outer_user.id))
    assert.is_nil(svc:get_user_by_email(inner_email))
  end)

  it("transaction(fn) is the legacy alias", function()
    local e = email()
    assert(svc:transaction(function(ops) assert(ops:create_user(e, "h")) end))
    assert.is_not_nil(svc:get_user_by_email(e))
    local e2 = email()
    assert.is_nil(svc:transaction(function(ops) assert(ops:create_user(e2, "h")); return nil, "no" end))
    assert.is_nil(svc:get_user_by_email(e2))
  end)

  it("passes options to the core (read only)", function()
    local v, err = svc:execute_in_transaction(function(ops)
      return ops:create_user(email(), "h")
    end, { read_only = true })
    assert.is_nil(v)
    assert.equal("25006", err.sqlstate)
  end)
end)

describe("begin_transaction / commit_transaction / rollback_transaction", function()
  it("commit makes the work visible", function()
    local tx = assert(svc:begin_transaction())
    local u, _, d = create_all(tx)
    assert.is_nil(other:get_user_by_id(u.id))
    assert.is_true(svc:commit_transaction(tx))
    assert.equal("committed", tx:status())
    assert.equal("building", other:get_deployment_by_id(d.id).status)
  end)

  it("rollback undoes users, projects and deployments together", function()
    local before = counts()
    local tx = assert(svc:begin_transaction())
    local u, p, d = create_all(tx)
    assert.equal(p.id, tx:get_project_with_user(p.id).id)
    assert.is_true(svc:rollback_transaction(tx))
    assert.equal("rolled_back", tx:status())
    assert.is_nil(svc:get_user_by_id(u.id))
    assert.is_nil(svc:get_deployment_by_id(d.id))
    assert.same(before, counts())
  end)

  it("the transaction object's own commit and rollback work too", function()
    local tx = assert(svc:begin_transaction())
    local e = email()
    assert(tx:create_user(e, "h"))
    assert(tx:commit())
    assert.is_not_nil(svc:get_user_by_email(e))
    tx = assert(svc:begin_transaction())
    assert(tx:delete_user(svc:get_user_by_email(e).id))
    assert(tx:rollback())
    assert.is_not_nil(svc:get_user_by_email(e))
    assert.matches("rolled_back", tostring(tx))
  end)

  it("commit_transaction accepts the core's own transaction object", function()
    local tx = assert(svc.pool:begin())
    local e = email()
    assert(tx:query("INSERT INTO users (email, password_hash) VALUES ($1, 'h')", e))
    assert(svc:commit_transaction(tx))
    assert.is_not_nil(svc:get_user_by_email(e))
  end)
end)
