-- The service's commands of bin/coderunner-db: health, stats, demo and
-- `examples errors`. Each prints readable tables, or JSON with --json.
-- lua/coderunner/cli.lua loads this module and calls register(parser, common);
-- `common` brings the output helpers (say, emit, fail, paint) and EXIT codes.
local db = require "coderunner.db"
local migrate = require "coderunner.migrate"

local M = {}

-- output -------------------------------------------------------------------------

-- Prints `rows` (array of {label, value}) as an aligned two-column table.
local function print_pairs(out, rows)
  local width = 0
  for _, r in ipairs(rows) do width = math.max(width, #r[1]) end
  for _, r in ipairs(rows) do
    out(("  %-" .. width .. "s  %s"):format(r[1], tostring(r[2])))
  end
end

local function pool_rows(p)
  local errors = {}
  for kind, n in pairs(p.errors or {}) do
    if n > 0 then errors[#errors + 1] = kind .. "=" .. n end
  end
  table.sort(errors)
  return {
    { "connections", ("%d total, %d idle, %d busy, %d waiting (min %d, max %d)"):format(p.total or 0, p.idle or 0,
      p.busy or 0, p.waiting or 0, p.min or 0, p.max or 0) },
    { "queries", ("%d (%d slow)"):format(p.queries or 0, p.slow_queries or 0) },
    { "errors", #errors > 0 and table.concat(errors, ", ") or "none" },
    { "opened / closed", ("%d / %d"):format(p.connections_opened or 0, p.connections_closed or 0) },
    { "acquire timeouts", p.acquire_timeouts or 0 },
  }
end

-- The service for a command: --url, else the environment.
local function service(args)
  return db.new({ url = args.url })
end

-- health -------------------------------------------------------------------------

--- Prints the health check; returns 0 when healthy, 1 otherwise.
---@param args table  parsed arguments: url?, json?
---@param common coderunner.cli.Common
---@return integer exit_code
function M.health(args, common)
  local out = common.say
  local svc, err = service(args)
  if not svc then return common.fail(err, common.EXIT.usage) end
  local h = svc:health()
  svc:close()
  if common.json then
    common.emit(h)
  else
    local healthy = h.status == "healthy"
    out("Database health: " .. common.paint(healthy and "green" or "red", h.status:upper()))
    local rows = {
      { "connection", svc.conninfo_redacted ~= "" and svc.conninfo_redacted or "(PG* environment)" },
    }
    if h.status == "healthy" then
      rows[#rows + 1] = { "database", h.database }
      rows[#rows + 1] = { "server version", h.server_version }
      rows[#rows + 1] = { "latency", ("%.2f ms"):format(h.latency_ms) }
    else
      rows[#rows + 1] = { "error", h.error }
    end
    for _, r in ipairs(pool_rows(h.pool)) do rows[#rows + 1] = r end
    print_pairs(out, rows)
  end
  return h.status == "healthy" and common.EXIT.ok or common.EXIT.failure
end

-- stats --------------------------------------------------------------------------

local function stats_rows(s)
  local rows = {
    { "database", ("%s (%s)"):format(s.database.name, s.database.size) },
    { "users", s.users.total },
  }
  for _, plan in ipairs(db.users.PLANS) do rows[#rows + 1] = { "  " .. plan, s.users.by_plan[plan] } end
  rows[#rows + 1] = { "projects", s.projects.total }
  rows[#rows + 1] = { "deployments", s.deployments.total }
  for _, st in ipairs(db.deployments.STATUSES) do
    rows[#rows + 1] = { "  " .. st, s.deployments.by_status[st] }
  end
  rows[#rows + 1] = { "running deployments", s.deployments.running }
  rows[#rows + 1] = { "slow queries", s.slow_queries }
  return rows
end

--- Prints the system statistics; returns 0, or 1 when the database failed.
---@param args table  url?, json?
---@param common coderunner.cli.Common
---@return integer exit_code
function M.stats(args, common)
  local out = common.say
  local svc, err = service(args)
  if not svc then return common.fail(err, common.EXIT.usage) end
  local s
  s, err = svc:get_system_stats()
  svc:close()
  if not s then return common.fail(err) end
  if common.json then
    common.emit(s)
  else
    out(common.paint("bold", "System statistics"))
    print_pairs(out, stats_rows(s))
    out(common.paint("bold", "Pool"))
    print_pairs(out, pool_rows(s.pool))
  end
  return common.EXIT.ok
end

-- a reporter for the walkthroughs: readable steps, or one JSON document --------

local function reporter(common)
  local r = { steps = common.array({}), failed = false }
  function r.step(title)
    r.current = { step = title, lines = common.array({}) }
    r.steps[#r.steps + 1] = r.current
    if not common.json then common.say(""); common.say(common.paint("bold", "== " .. title)) end
  end
  function r.say(fmt, ...)
    local line = select("#", ...) > 0 and fmt:format(...) or fmt
    r.current.lines[#r.current.lines + 1] = line
    if not common.json then common.say("  " .. line) end
  end
  function r.value(key, v) r.current[key] = v end
  function r.finish()
    if common.json then common.emit({ ok = not r.failed, steps = r.steps }) end
    return r.failed and common.EXIT.failure or common.EXIT.ok
  end
  return r
end

-- Stops the walkthrough with a readable message when an operation failed.
-- Returns value, or stops the walkthrough naming the failed step and its error.
-- what: the step ("create_user", ...); value, err: what the step returned.
local function must(r, what, value, err)
  if value == nil and err ~= nil then
    r.failed = true
    error({ walkthrough = true, message = tostring(what) .. ": " .. tostring(err) }, 0)
  end
  return value
end

local function run_walkthrough(args, common, body)
  local svc, err = service(args)
  if not svc then return common.fail(err, common.EXIT.usage) end
  local r = reporter(common)
  local ok, e = pcall(body, svc, r)
  svc:close()
  if not ok then
    r.failed = true
    local msg = type(e) == "table" and e.message or tostring(e)
    if common.json then
      r.steps[#r.steps + 1] = { step = "failed", error = msg }
    else
      common.say(common.paint("red", "FAILED: ") .. msg)
    end
  end
  return r.finish()
end

local function keys_of(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = tostring(k) end
  table.sort(ks)
  return table.concat(ks, ", ")
end

-- demo ---------------------------------------------------------------------------

local function demo(svc, r)
  r.step("Connect")
  r.say("connection: %s", svc.conninfo_redacted ~= "" and svc.conninfo_redacted or "(PG* environment)")
  local h = svc:health()
  must(r, "health", h.status == "healthy" and h or nil, h.error)
  r.say("PostgreSQL %s, database %s, round trip %.2f ms", h.server_version, h.database, h.latency_ms)

  r.step("Migrate")
  local report = must(r, "up", migrate.up(svc.pool, { dir = M.migrations_dir }))
  r.say("%d migration(s) applied from %s; schema at version %s", #(report.applied or {}), M.migrations_dir,
    tostring(report.current))

  local suffix = must(r, "query", svc:query("SELECT substr(md5(random()::text), 1, 8) AS s"))[1].s

  r.step("Create a user")
  local email = ("demo-%s@example.com"):format(suffix)
  local user = must(r, "create_user", svc:create_user(email, "$2b$12$demo.hash.never.printed", "pro"))
  r.say("user %s <%s> plan %s, created %s", user.id, user.email, user.plan_type, user.created_at)
  r.say("found again by email: %s", tostring(must(r, "get_user_by_email", svc:get_user_by_email(email)).id == user.id))
  user = must(r, "update_user", svc:update_user(user.id, { plan_type = "enterprise" }))
  r.say("plan updated to %s", user.plan_type)

  r.step("Create a project")
  local project = must(r, "create_project", svc:create_project(user.id, "demo-app", "A project made by the demo"))
  r.say("project %s %q owned by %s", project.id, project.name, project.user_id)

  r.step("Create deployments")
  local web = must(r, "create_deployment", svc:create_deployment(project.id, {
    runtime_type = "node18", app_sandbox_id = "sbx-" .. suffix,
    public_url = ("https://demo-%s.example.com"):format(suffix), db_sandbox_id = "db-" .. suffix,
    db_connection_info = { host = "10.0.0.5", port = 5432, options = { ssl = true, pool = { max = 5 } } },
  }))
  local worker = must(r, "create_deployment", svc:create_deployment(project.id, { runtime_type = "python3.11" }))
  r.say("deployment %s (%s) status %s", web.id, web.runtime_type, web.status)
  r.say("deployment %s (%s) status %s", worker.id, worker.runtime_type, worker.status)
  r.say("db_connection_info round-trips as a table: options.pool.max = %s",
    tostring(must(r, "get_deployment_by_id", svc:get_deployment_by_id(web.id)).db_connection_info.options.pool.max))

  r.step("Move statuses")
  for _, to in ipairs({ "building", "deploying", "running" }) do
    local d = must(r, "update_deployment_status", svc:update_deployment_status(web.id, to))
    r.say("%s -> %s", web.id:sub(1, 8), d.status)
  end
  must(r, "update_deployment_status", svc:update_deployment_status(worker.id, "failed"))
  r.say("%s -> failed", worker.id:sub(1, 8))
  local _, refused = svc:update_deployment_status(web.id, "building")
  r.say("running -> building refused: %s", tostring(refused))

  r.step("Joins")
  local pw = must(r, "get_project_with_user", svc:get_project_with_user(project.id))
  r.say("project %q with user %s (user fields: %s)", pw.name, pw.user.email, keys_of(pw.user))
  local dd = must(r, "get_deployment_with_details", svc:get_deployment_with_details(web.id))
  r.say("deployment %s of project %q of user %s", dd.id:sub(1, 8), dd.project.name, dd.user.email)
  r.say("running deployments of the user: %d", must(r, "get_running_deployment_count_by_user",
    svc:get_running_deployment_count_by_user(user.id)))
  r.say("deployments of the project, newest first: %d", #must(r, "get_deployments_by_project_id",
    svc:get_deployments_by_project_id(project.id, 10, 0)))
  r.say("failed deployments (first page): %d", #must(r, "get_deployments_by_status",
    svc:get_deployments_by_status("failed", 10, 0)))

  r.step("A transaction that rolls back")
  local _, terr = svc:execute_in_transaction(function(tx)
    local u = assert(tx:create_user("rolled-back-" .. suffix .. "@example.com", "x-hash", "free"))
    assert(tx:create_project(u.id, "never-seen"))
    return nil, "changed my mind"
  end)
  local gone = svc:get_user_by_email("rolled-back-" .. suffix .. "@example.com") == nil
  r.say("rolled back (%s); the user and project are gone: %s", tostring(terr), tostring(gone))

  r.step("Statistics")
  local s = must(r, "get_system_stats", svc:get_system_stats())
  r.value("stats", s)
  r.say("users %d (pro %d, enterprise %d), projects %d, deployments %d (running %d), database %s",
    s.users.total, s.users.by_plan.pro, s.users.by_plan.enterprise, s.projects.total, s.deployments.total,
    s.deployments.running, s.database.size)

  r.step("Health")
  h = svc:health()
  r.value("health", h)
  r.say("%s, %.2f ms; pool %d connections, %d queries", h.status, h.latency_ms or 0, h.pool.total, h.pool.queries)

  r.step("Clean up")
  r.say("delete user: %s", tostring(must(r, "delete_user", svc:delete_user(user.id))))
  r.say("project gone with it (cascade): %s", tostring(svc:get_project_by_id(project.id) == nil))
  r.say("deployment gone with it (cascade): %s", tostring(svc:get_deployment_by_id(web.id) == nil))
end

--- Walks through the whole service; returns 0 when every step worked.
---@param args table  url?, json?, migrations?
---@param common coderunner.cli.Common
---@return integer exit_code
function M.demo(args, common)
  M.migrations_dir = args.migrations or migrate.defaults.dir
  return run_walkthrough(args, common, demo)
end

-- examples errors ----------------------------------------------------------------

local function show_error(r, what, value, err)
  if value ~= nil then
    r.say("%s: unexpectedly succeeded", what)
    r.failed = true
    return
  end
  r.say("%s -> kind %s", what, err and err.kind or "none")
  r.say("   %s", tostring(err))
end

local function errors_walkthrough(svc, r)
  r.step("Set up")
  must(r, "up", migrate.up(svc.pool, { dir = M.migrations_dir }))
  local suffix = must(r, "query", svc:query("SELECT substr(md5(random()::text), 1, 8) AS s"))[1].s
  local email = ("errors-%s@example.com"):format(suffix)
  local user = must(r, "create_user", svc:create_user(email, "hash-never-printed"))
  local project = must(r, "create_project", svc:create_project(user.id, "errors-demo"))
  local d = must(r, "create_deployment", svc:create_deployment(project.id, { runtime_type = "go1.22" }))
  r.say("user %s, project %s, deployment %s", user.id:sub(1, 8), project.id:sub(1, 8), d.id:sub(1, 8))

  r.step("Invalid input (checked before any SQL)")
  show_error(r, "create_user with a bad email", svc:create_user("not-an-email", "h"))
  show_error(r, "create_user with an unknown plan", svc:create_user("x-" .. email, "h", "platinum"))
  show_error(r, "get_user_by_id with a bad UUID", svc:get_user_by_id("42"))
  show_error(r, "update_user with an unknown field", svc:update_user(user.id, { is_admin = true }))
  show_error(r, "get_users with limit 0", svc:get_users(0))
  show_error(r, "create_deployment with a bad URL", svc:create_deployment(project.id,
    { runtime_type = "node", public_url = "ftp://x" }))

  r.step("Conflicts and missing parents")
  show_error(r, "create_user with a taken email", svc:create_user(email, "h"))
  show_error(r, "create_project for a missing user",
    svc:create_project("00000000-0000-4000-8000-000000000000", "orphan"))
  r.say("get_user_by_id for a missing user -> %s (not found is plain nil)",
    tostring(svc:get_user_by_id("00000000-0000-4000-8000-000000000000")))

  r.step("Invalid status moves")
  show_error(r, "pending -> running", svc:update_deployment_status(d.id, "running"))
  show_error(r, "unknown status", svc:update_deployment_status(d.id, "paused"))

  r.step("Rollback")
  local ok, terr = svc:execute_in_transaction(function(tx)
    assert(tx:update_user(user.id, { plan_type = "pro" }))
    assert(tx:update_deployment_status(d.id, "building"))
    error("something broke halfway", 0)
  end)
  r.say("execute_in_transaction raised -> %s, %s", tostring(ok), tostring(terr))
  r.say("plan still %s, status still %s", must(r, "get_user_by_id", svc:get_user_by_id(user.id)).plan_type,
    must(r, "get_deployment_by_id", svc:get_deployment_by_id(d.id)).status)
  local tx = must(r, "begin_transaction", svc:begin_transaction())
  must(r, "delete_user", tx:delete_user(user.id))
  must(r, "rollback_transaction", svc:rollback_transaction(tx))
  r.say("manual begin/delete/rollback: user still there: %s", tostring(svc:get_user_by_id(user.id) ~= nil))

  r.step("Database down")
  local down = must(r, "new", db.new({ url = "host=127.0.0.1 port=1 connect_timeout=1", pool = { min = 0 } }))
  local h = down:health()
  r.say("health: %s (%s)", h.status, h.error_kind)
  show_error(r, "get_users while down", down:get_users())
  down:close()

  r.step("Clean up")
  r.say("delete user: %s", tostring(must(r, "delete_user", svc:delete_user(user.id))))
end

--- Shows how the service reports errors; returns 0 when each behaved as shown.
---@param args table  url?, json?, migrations?
---@param common coderunner.cli.Common
---@return integer exit_code
function M.examples_errors(args, common)
  M.migrations_dir = args.migrations or migrate.defaults.dir
  return run_walkthrough(args, common, errors_walkthrough)
end

-- registration -------------------------------------------------------------------

--- Adds health, stats, demo and examples to the top-level argparse parser
--- (which owns the global --url and --json); returns a handler per command.
---@param parser table  an argparse parser
---@param common coderunner.cli.Common
---@return table<string, fun(args: table): integer>
function M.register(parser, common)
  parser:command("health", "Check the database: status, latency, server version, pool figures.")
  parser:command("stats", "Users by plan, projects, deployments by status, database size, pool counters.")
  parser:command("demo", "Walk through the whole service: migrate, create, move statuses, join, stats, clean up.")
    :option("--migrations", "Migrations directory.", migrate.defaults.dir)
  local examples = parser:command("examples", "Worked examples of the service (`examples errors`).")
  examples:argument("topic", "Which examples."):choices({ "errors" })
  examples:option("--migrations", "Migrations directory.", migrate.defaults.dir)
  return {
    health = function(args) return M.health(args, common) end,
    stats = function(args) return M.stats(args, common) end,
    demo = function(args) return M.demo(args, common) end,
    examples = function(args) return M.examples_errors(args, common) end,
  }
end

return M
