-- `coderunner-db migrate [up|down|status|validate|create NAME]`: the command
-- line of coderunner.migrate (see docs/migrations.md). `migrate` alone is `up`.
local migrate = require "coderunner.migrate"

local M = {}

local function version_text(v)
  return ("%03d"):format(v)
end

-- "2024-05-01 12:34:56.123456+00" -> "2024-05-01 12:34:56+00"
local function short_time(t)
  if not t then return "" end
  return (t:gsub("%.%d+", ""))
end

local function duration_text(ms)
  if not ms then return "" end
  return ("%.1f ms"):format(ms)
end

local function pad(s, width)
  return s .. (" "):rep(width - #s)
end

--- Adds the `migrate` command and its subcommands to parser.
---@param parser table  the top-level argparse parser
---@param common coderunner.cli.Common
---@return table<string, fun(args: table): integer>
function M.register(parser, common)
  local EXIT = common.EXIT
  local cmd = parser:command("migrate", "Apply, revert and inspect the schema migrations (default: up).")
  cmd:command_target("migrate_command")
  cmd:require_command(false)
  cmd:option("--dir", "Directory of the NNN_name.sql files (default: $CODERUNNER_MIGRATIONS, else the "
    .. "migrations installed with the modules" .. (migrate.defaults.dir and (", here " .. migrate.defaults.dir)
    or "") .. ").")
  cmd:option("--table", "History table.", migrate.defaults.table)
  cmd:option("--lock-timeout", "Seconds to wait for another runner.", tostring(migrate.defaults.lock_timeout))
    :convert(common.seconds("--lock-timeout"))
  cmd:flag("--allow-out-of-order", "Apply pending versions older than the newest applied one.")

  local up = cmd:command("up", "Apply the pending migrations.")
  up:option("--to", "Stop after this version."):convert(common.whole("--to"))
  up:flag("--dry-run", "Print what would run; change nothing.")

  local down = cmd:command("down", "Revert the newest applied migrations.")
  down:option("--steps", "How many to revert.", "1"):convert(common.whole("--steps", 1))
  down:flag("--dry-run", "Print what would run; change nothing.")

  local status = cmd:command("status", "Show every migration and its state.")
  status:flag("--exit-code", "Exit with 3 when anything is pending, changed or missing.")

  cmd:command("validate", "Check applied files are unchanged and present, and every file is well-formed.")

  local create = cmd:command("create", "Create the next migration file.")
  create:argument("name", "What the migration does, e.g. add_user_avatar.")

  -- Human progress: a line when each migration starts and one when it ends,
  -- flushed at once (common.reporter), so a pipe shows them as they happen.
  local reporter = common.reporter()
  local function progress(_, message, info)
    if common.json then return end
    local ev = info.event
    if ev == "applying" or ev == "reverting" then
      reporter.start(("%s %s"):format(common.paint("blue", pad(ev, 9)), version_text(info.version) .. " "
        .. info.name))
    elseif ev == "applied" or ev == "reverted" then
      reporter.finish(("%s %s %s"):format(common.paint("green", pad(ev, 9)), pad(version_text(info.version) .. " "
        .. info.name, 40), common.paint("dim", duration_text(info.duration_ms))))
    elseif ev == "would_apply" or ev == "would_revert" then
      common.say(common.paint("yellow", ev:gsub("_", " ")) .. " " .. version_text(info.version) .. " " .. info.name
        .. (info.transaction and " (in a transaction)" or " (outside a transaction)"))
      for line in (info.sql .. "\n"):gmatch("([^\n]*)\n") do common.say("    " .. line) end
    elseif ev == "waiting" or ev == "dropped_index" then
      common.note(common.paint("yellow", message))
    end
  end

  local function print_status(report)
    common.say(common.paint("bold", ("%-8s %-32s %-9s %-24s %s"):format("VERSION", "NAME", "STATE", "APPLIED AT",
      "DURATION")))
    local colours = { applied = "green", pending = "yellow", changed = "red", missing = "red" }
    for _, m in ipairs(report.migrations) do
      local state = m.state .. (m.out_of_order and "*" or "")
      common.say(("%-8s %-32s %s %-24s %s"):format(version_text(m.version), m.name,
        common.paint(colours[m.state], pad(state, 9)), short_time(m.applied_at), duration_text(m.duration_ms)))
    end
    common.say(("%d applied, %d pending, %d changed, %d missing; current version %s"):format(report.applied,
      report.pending, report.changed, report.missing, report.current and version_text(report.current) or "none"))
    if report.out_of_order > 0 then
      common.say("* pending but older than the current version: `up` refuses it unless --allow-out-of-order")
    end
  end

  local function run(args, runner, sub)
    if sub == "status" then
      local report, err = runner:status()
      if not report then return common.fail(err) end
      local attention = report.pending + report.changed + report.missing > 0
      if common.json then
        common.array(report.migrations)
        common.emit(report)
      else
        print_status(report)
      end
      return (args.exit_code and attention) and EXIT.pending or EXIT.ok
    elseif sub == "validate" then
      local report, err, failed = runner:validate()
      if not report then
        if failed then return common.fail(err, EXIT.failure, { problems = common.array(failed.problems) }) end
        return common.fail(err)
      end
      if common.json then
        common.emit({ checked = report.checked, problems = common.array({}) })
      else
        common.say(common.paint("green", "ok") .. (": %d migration files checked"):format(report.checked))
      end
      return EXIT.ok
    end

    local report, err
    if sub == "down" then
      report, err = runner:down({ steps = args.steps, dry_run = args.dry_run })
    else
      report, err = runner:up({ to = args.to, dry_run = args.dry_run })
    end
    if not report then return common.fail(err) end
    local list = report.applied or report.reverted
    if common.json then
      common.array(list)
      common.emit(report)
    else
      local verb = sub == "down" and "reverted" or "applied"
      if report.dry_run then
        common.say(("dry run: %d migration%s would be %s; nothing was changed"):format(#list,
          #list == 1 and "" or "s", verb))
      elseif #list == 0 then
        common.say(("nothing to %s; current version %s"):format(sub == "down" and "revert" or "apply",
          report.current and version_text(report.current) or "none"))
      else
        common.say(("%d migration%s %s; current version %s"):format(#list, #list == 1 and "" or "s", verb,
          report.current and version_text(report.current) or "none"))
      end
    end
    return EXIT.ok
  end

  -- --dir, else $CODERUNNER_MIGRATIONS, else the migrations installed beside the modules.
  local function directory(args)
    if args.dir then return args.dir end
    return migrate.default_dir()
  end

  local function handler(args)
    local sub = args.migrate_command or "up"
    if not args.migrate_command then common.command = "migrate up" end
    local dir, err = directory(args)
    if not dir then return common.fail(err, EXIT.usage) end
    if sub == "create" then
      local report
      report, err = migrate.create(dir, args.name)
      if not report then return common.fail(err) end
      if common.json then
        common.emit(report)
      else
        common.say("created " .. report.file)
      end
      return EXIT.ok
    end

    local conn, cerr, exit_code = common.connect(args)
    if not conn then return common.fail(cerr, exit_code) end
    local runner
    runner, err = migrate.new(conn, { dir = dir, table = args.table, lock_timeout = args.lock_timeout,
      allow_out_of_order = args.allow_out_of_order, logger = progress })
    local ok, code
    if runner then
      ok, code = pcall(run, args, runner, sub)
    else
      ok, code = true, common.fail(err)
    end
    conn:close()
    if not ok then error(code, 0) end
    return code
  end

  return { migrate = handler }
end

return M
