-- The service's commands of bin/coderunner-db: health, stats, and the runner of
-- the worked examples (`demo` runs examples/demo.lua, `examples errors` runs
-- examples/errors.lua). Each prints readable tables, or JSON with --json.
-- lua/coderunner/cli.lua loads this module and calls register(parser, common);
-- `common` brings the output helpers (say, emit, fail, paint) and EXIT codes.
local db = require "coderunner.db"
local domain = require "coderunner.domain"
local migrate = require "coderunner.migrate"
local files = require "coderunner.migrate.files"

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

--- Prints the health check; returns 0 when healthy, 1 otherwise. JSON: the
--- health table with `ok`; when unhealthy, `error = { kind, message }` as every
--- command's failure has it.
---@param args table  parsed arguments: url?, json?
---@param common coderunner.cli.Common
---@return integer exit_code
function M.health(args, common)
  local out = common.say
  local svc, err = service(args)
  if not svc then return common.fail(err, common.EXIT.usage) end
  local h = svc:health()
  svc:close()
  local healthy = h.status == "healthy"
  if common.json then
    if healthy then
      common.emit(h)
    else
      -- h.error is tostring(err), "kind: message": the shape's message is the message alone
      local kind = h.error_kind or "error"
      local message = h.error or ""
      if message:sub(1, #kind + 2) == kind .. ": " then message = message:sub(#kind + 3) end
      common.fail({ kind = kind, message = message }, common.EXIT.failure,
        { status = h.status, pool = h.pool })
    end
  else
    out("Database health: " .. common.paint(healthy and "green" or "red", h.status:upper()))
    local rows = {
      { "connection", svc.conninfo_redacted ~= "" and svc.conninfo_redacted or "(PG* environment)" },
    }
    if healthy then
      rows[#rows + 1] = { "database", h.database }
      rows[#rows + 1] = { "server version", h.server_version }
      rows[#rows + 1] = { "latency", ("%.2f ms"):format(h.latency_ms) }
    else
      rows[#rows + 1] = { "error", h.error }
    end
    for _, r in ipairs(pool_rows(h.pool)) do rows[#rows + 1] = r end
    print_pairs(out, rows)
  end
  return healthy and common.EXIT.ok or common.EXIT.failure
end

-- stats --------------------------------------------------------------------------

local function stats_rows(s)
  local rows = {
    { "database", ("%s (%s)"):format(s.database.name, s.database.size) },
    { "users", s.users.total },
  }
  for _, plan in ipairs(domain.PLANS) do rows[#rows + 1] = { "  " .. plan, s.users.by_plan[plan] } end
  rows[#rows + 1] = { "projects", s.projects.total }
  rows[#rows + 1] = { "deployments", s.deployments.total }
  for _, st in ipairs(domain.STATUSES) do
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

-- the worked examples: readable steps, or one JSON document ---------------------

--- Where the example `name` is: examples/<name>.lua beside the installed
--- modules (`<luadir>/coderunner/examples`) or in the checkout.
---@param name string
---@return string|nil path
---@return string|nil err
function M.example_path(name)
  local looked = {}
  for _, dir in ipairs(files.beside_modules("examples")) do
    local path = dir .. "/" .. name .. ".lua"
    local f = io.open(path, "r")
    if f then f:close(); return path end
    looked[#looked + 1] = path
  end
  return nil, ("the example %s is not installed (looked in %s)"):format(name,
    #looked > 0 and table.concat(looked, ", ") or "no place: coderunner.db is not on package.path")
end

-- The `ex` table an example gets (see examples/demo.lua).
local function reporter(common, svc, dir)
  local steps = common.array({})
  local ex = { service = svc, dir = dir, steps = steps, is_failed = false }
  local current
  function ex.step(title)
    current = { step = title, lines = common.array({}) }
    steps[#steps + 1] = current
    if not common.json then common.say(""); common.say(common.paint("bold", "== " .. title)) end
  end
  function ex.say(fmt, ...)
    local line = select("#", ...) > 0 and fmt:format(...) or fmt
    current.lines[#current.lines + 1] = line
    if not common.json then common.say("  " .. line) end
  end
  function ex.value(key, v) current[key] = v end
  function ex.failed() ex.is_failed = true end
  --- value, or stops the walkthrough naming what failed (what, else the current
  --- step's title) and the real error.
  function ex.must(value, err, what)
    if value == nil and err ~= nil then
      ex.is_failed = true
      local step = what or (current and current.step) or "setup"
      error({ walkthrough = true, message = tostring(step) .. ": " .. tostring(err) }, 0)
    end
    return value
  end
  return ex
end

--- Runs the example `name` against the service of the command line; returns
--- 0 when every step worked.
---@param name string  "demo", "errors"
---@param args table   url?, json?, dir?
---@param common coderunner.cli.Common
---@return integer exit_code
function M.run_example(name, args, common)
  local path, perr = M.example_path(name)
  if not path then return common.fail({ kind = "invalid_input", message = perr }) end
  local chunk, lerr = loadfile(path)
  if not chunk then return common.fail({ kind = "internal", message = lerr }) end
  local dir = args.dir
  if not dir then
    local derr
    dir, derr = migrate.default_dir()
    if not dir then return common.fail(derr, common.EXIT.usage) end
  end
  local svc, err = service(args)
  if not svc then return common.fail(err, common.EXIT.usage) end
  local ex = reporter(common, svc, dir)
  local ok, e = pcall(function() return chunk()(ex) end)
  svc:close()
  if not ok then
    ex.is_failed = true
    local msg = type(e) == "table" and e.message or tostring(e)
    if common.json then
      ex.steps[#ex.steps + 1] = { step = "failed", error = msg }
    else
      common.say(common.paint("red", "FAILED: ") .. msg)
    end
  end
  if common.json then common.emit({ ok = not ex.is_failed, example = name, steps = ex.steps }) end
  return ex.is_failed and common.EXIT.failure or common.EXIT.ok
end

-- registration -------------------------------------------------------------------

local DIR_HELP = "Migrations directory (default: $CODERUNNER_MIGRATIONS, else the installed migrations)."

--- Adds health, stats, demo and examples to the top-level argparse parser
--- (which owns the global --url and --json); returns a handler per command.
---@param parser table  an argparse parser
---@param common coderunner.cli.Common
---@return table<string, fun(args: table): integer>
function M.register(parser, common)
  parser:command("health", "Check the database: status, latency, server version, pool figures.")
  parser:command("stats", "Users by plan, projects, deployments by status, database size, pool counters.")
  parser:command("demo", "Walk through the whole service (examples/demo.lua): migrate, create, move statuses, "
    .. "join, stats, clean up."):option("--dir", DIR_HELP)
  local examples = parser:command("examples", "Worked examples of the service (`examples errors`: "
    .. "examples/errors.lua).")
  examples:argument("topic", "Which examples."):choices({ "errors" })
  examples:option("--dir", DIR_HELP)
  return {
    health = function(args) return M.health(args, common) end,
    stats = function(args) return M.stats(args, common) end,
    demo = function(args) return M.run_example("demo", args, common) end,
    examples = function(args) return M.run_example(args.topic, args, common) end,
  }
end

return M
