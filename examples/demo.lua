-- A walk through the whole DatabaseService: migrate, create a user, a project
-- and deployments, move statuses, join, roll a transaction back, read the
-- statistics and the health, clean up.
--
-- Run it with `coderunner-db demo` (or `make demo`), which gives it the
-- service and a reporter `ex`:
--   ex.service       a coderunner.db service (DATABASE_URL, --url, ...)
--   ex.dir           the migrations directory
--   ex.step(title)   starts a step; ex.say(fmt, ...) prints a line of it
--   ex.value(k, v)   adds a value to the step (shown with --json)
--   ex.must(v, err, what)  v, or stops the walkthrough naming what failed
local migrate = require "coderunner.migrate"

local function keys_of(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = tostring(k) end
  table.sort(ks)
  return table.concat(ks, ", ")
end

return function(ex)
  local svc, must, say, step = ex.service, ex.must, ex.say, ex.step

  step("Connect")
  say("connection: %s", svc.conninfo_redacted ~= "" and svc.conninfo_redacted or "(PG* environment)")
  local h = svc:health()
  must(h.status == "healthy" and h or nil, h.error, "health")
  say("PostgreSQL %s, database %s, round trip %.2f ms", h.server_version, h.database, h.latency_ms)

  step("Migrate")
  local report = must(migrate.up(svc.pool, { dir = ex.dir }))
  say("%d migration(s) applied from %s; schema at version %s", #(report.applied or {}), ex.dir,
    tostring(report.current))

  local suffix = must(svc:query("SELECT substr(md5(random()::text), 1, 8) AS s"))[1].s

  step("Create a user")
  local email = ("demo-%s@example.com"):format(suffix)
  local user = must(svc:create_user(email, "$2b$12$demo.hash.never.printed", "pro"))
  say("user %s <%s> plan %s, created %s", user.id, user.email, user.plan_type, user.created_at)
  say("found again by email: %s", tostring(must(svc:get_user_by_email(email)).id == user.id))
  user = must(svc:update_user(user.id, { plan_type = "enterprise" }))
  say("plan updated to %s", user.plan_type)

  step("Create a project")
  local project = must(svc:create_project(user.id, "demo-app", "A project made by the demo"))
  say("project %s %q owned by %s", project.id, project.name, project.user_id)

  step("Create deployments")
  local web = must(svc:create_deployment(project.id, {
    runtime_type = "node18", app_sandbox_id = "sbx-" .. suffix,
    public_url = ("https://demo-%s.example.com"):format(suffix), db_sandbox_id = "db-" .. suffix,
    db_connection_info = { host = "10.0.0.5", port = 5432, options = { ssl = true, pool = { max = 5 } } },
  }))
  local worker = must(svc:create_deployment(project.id, { runtime_type = "python3.11" }))
  say("deployment %s (%s) status %s", web.id, web.runtime_type, web.status)
  say("deployment %s (%s) status %s", worker.id, worker.runtime_type, worker.status)
  say("db_connection_info round-trips as a table: options.pool.max = %s",
    tostring(must(svc:get_deployment_by_id(web.id)).db_connection_info.options.pool.max))

  step("Move statuses")
  for _, to in ipairs({ "building", "deploying", "running" }) do
    local d = must(svc:update_deployment_status(web.id, to))
    say("%s -> %s", web.id:sub(1, 8), d.status)
  end
  must(svc:update_deployment_status(worker.id, "failed"))
  say("%s -> failed", worker.id:sub(1, 8))
  local _, refused = svc:update_deployment_status(web.id, "building")
  say("running -> building refused: %s", tostring(refused))

  step("Joins")
  local pw = must(svc:get_project_with_user(project.id))
  say("project %q with user %s (user fields: %s)", pw.name, pw.user.email, keys_of(pw.user))
  local dd = must(svc:get_deployment_with_details(web.id))
  say("deployment %s of project %q of user %s", dd.id:sub(1, 8), dd.project.name, dd.user.email)
  say("running deployments of the user: %d", must(svc:get_running_deployment_count_by_user(user.id)))
  say("deployments of the project, newest first: %d", #must(svc:get_deployments_by_project_id(project.id, 10, 0)))
  say("failed deployments (first page): %d", #must(svc:get_deployments_by_status("failed", 10, 0)))

  step("A transaction that rolls back")
  local _, terr = svc:execute_in_transaction(function(tx)
    local u = assert(tx:create_user("rolled-back-" .. suffix .. "@example.com", "x-hash", "free"))
    assert(tx:create_project(u.id, "never-seen"))
    return nil, "changed my mind"
  end)
  local gone = svc:get_user_by_email("rolled-back-" .. suffix .. "@example.com") == nil
  say("rolled back (%s); the user and project are gone: %s", tostring(terr), tostring(gone))

  step("Statistics")
  local s = must(svc:get_system_stats())
  ex.value("stats", s)
  say("users %d (pro %d, enterprise %d), projects %d, deployments %d (running %d), database %s",
    s.users.total, s.users.by_plan.pro, s.users.by_plan.enterprise, s.projects.total, s.deployments.total,
    s.deployments.running, s.database.size)

  step("Health")
  h = svc:health()
  ex.value("health", h)
  say("%s, %.2f ms; pool %d connections, %d queries", h.status, h.latency_ms or 0, h.pool.total, h.pool.queries)

  step("Clean up")
  say("delete user: %s", tostring(must(svc:delete_user(user.id))))
  say("project gone with it (cascade): %s", tostring(svc:get_project_by_id(project.id) == nil))
  say("deployment gone with it (cascade): %s", tostring(svc:get_deployment_by_id(web.id) == nil))
end
