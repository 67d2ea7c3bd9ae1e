-- How the DatabaseService reports errors: invalid input (checked before any
-- SQL), conflicts and missing parents, refused status moves, rollbacks, and a
-- database that is down. Each error is an object with a `kind`.
--
-- Run it with `coderunner-db examples errors`, which gives it the service and
-- a reporter `ex` (see examples/demo.lua); ex.failed() marks the walkthrough
-- failed when an operation that should fail succeeded.
local db = require "coderunner.db"
local migrate = require "coderunner.migrate"

return function(ex)
  local svc, must, say, step = ex.service, ex.must, ex.say, ex.step

  local function show_error(what, value, err)
    if value ~= nil then
      say("%s: unexpectedly succeeded", what)
      ex.failed()
      return
    end
    say("%s -> kind %s", what, err and err.kind or "none")
    say("   %s", tostring(err))
  end

  step("Set up")
  must(migrate.up(svc.pool, { dir = ex.dir }))
  local suffix = must(svc:query("SELECT substr(md5(random()::text), 1, 8) AS s"))[1].s
  local email = ("errors-%s@example.com"):format(suffix)
  local user = must(svc:create_user(email, "hash-never-printed"))
  local project = must(svc:create_project(user.id, "errors-demo"))
  local d = must(svc:create_deployment(project.id, { runtime_type = "go1.22" }))
  say("user %s, project %s, deployment %s", user.id:sub(1, 8), project.id:sub(1, 8), d.id:sub(1, 8))

  step("Invalid input (checked before any SQL)")
  show_error("create_user with a bad email", svc:create_user("not-an-email", "h"))
  show_error("create_user with an unknown plan", svc:create_user("x-" .. email, "h", "platinum"))
  show_error("get_user_by_id with a bad UUID", svc:get_user_by_id("42"))
  show_error("update_user with an unknown field", svc:update_user(user.id, { is_admin = true }))
  show_error("get_users with limit 0", svc:get_users(0))
  show_error("create_deployment with a bad URL", svc:create_deployment(project.id,
    { runtime_type = "node", public_url = "ftp://x" }))

  step("Conflicts and missing parents")
  show_error("create_user with a taken email", svc:create_user(email, "h"))
  show_error("create_project for a missing user",
    svc:create_project("00000000-0000-4000-8000-000000000000", "orphan"))
  say("get_user_by_id for a missing user -> %s (not found is plain nil)",
    tostring(svc:get_user_by_id("00000000-0000-4000-8000-000000000000")))

  step("Invalid status moves")
  show_error("pending -> running", svc:update_deployment_status(d.id, "running"))
  show_error("unknown status", svc:update_deployment_status(d.id, "paused"))

  step("Rollback")
  local ok, terr = svc:execute_in_transaction(function(tx)
    assert(tx:update_user(user.id, { plan_type = "pro" }))
    assert(tx:update_deployment_status(d.id, "building"))
    error("something broke halfway", 0)
  end)
  say("execute_in_transaction raised -> %s, %s", tostring(ok), tostring(terr))
  say("plan still %s, status still %s", must(svc:get_user_by_id(user.id)).plan_type,
    must(svc:get_deployment_by_id(d.id)).status)
  local tx = must(svc:begin_transaction())
  must(tx:delete_user(user.id))
  must(svc:rollback_transaction(tx))
  say("manual begin/delete/rollback: user still there: %s", tostring(svc:get_user_by_id(user.id) ~= nil))

  step("Database down")
  local down = must(db.new({ url = "host=127.0.0.1 port=1 connect_timeout=1", pool = { min = 0 } }))
  local h = down:health()
  say("health: %s (%s)", h.status, h.error_kind)
  show_error("get_users while down", down:get_users())
  down:close()

  step("Clean up")
  say("delete user: %s", tostring(must(svc:delete_user(user.id))))
end
