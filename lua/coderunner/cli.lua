-- The coderunner-db command line: global options, the commands of the modules
-- listed in cli.modules, exit codes, and the helpers those modules share.
--
-- Convention for a command module (coderunner.cli.migrate, coderunner.cli.service):
--
--   local M = {}
--   --- Adds this module's commands to the top-level argparse parser and returns
--   --- a handler per top-level command it added: handler(args) -> exit code.
--   function M.register(parser, common)
--     local cmd = parser:command("health", "Check the database")
--     cmd:flag("--verbose")
--     return { health = function(args) ... return common.EXIT.ok end }
--   end
--   return M
--
-- `args` is argparse's result: the global options (args.url, args.json,
-- args.no_color) plus the command's own. `common` (below) carries the shared
-- helpers: output (plain, coloured or JSON), errors, and the connection.
-- A handler returns one of common.EXIT; it never calls os.exit itself.
--
-- Output conventions: human lines on stdout (progress flushed as it happens,
-- also into a pipe), warnings on stderr; with --json one document on stdout,
-- `ok` true or false, `command` naming the command, and on failure
-- `error = { kind, message, ... }` (the same shape for every command).
local argparse = require "argparse"
local lfs = require "lfs"
local pg = require "coderunner.pg"

local cli = {}

--- Exit codes that scripts can rely on.
cli.EXIT = {
  ok = 0,
  failure = 1,  -- the command ran and failed (database error, bad migration, ...)
  usage = 2,    -- the command line was wrong
  pending = 3,  -- `migrate status --exit-code`: something is pending, changed or missing
}

--- Command modules, in the order their commands appear in --help. A module that
--- is not installed is left out.
cli.modules = { "coderunner.cli.migrate", "coderunner.cli.service", "coderunner.cli.watch",
  "coderunner.cli.load" }

--- The version that --version prints.
cli.VERSION = pg.version

---------------------------------------------------------------------------
-- Helpers shared by the command modules
---------------------------------------------------------------------------

local STYLES = { red = "31", green = "32", yellow = "33", blue = "34", bold = "1", dim = "2" }

-- Whether stdout is a terminal, from what fd 1 points at (no process forked).
local function stdout_is_terminal()
  local target = lfs.symlinkattributes("/proc/self/fd/1", "target")
  if type(target) ~= "string" then return false end
  return target:match("^/dev/pts/%d") ~= nil or target:match("^/dev/tty") ~= nil
    or target == "/dev/console"
end

-- The fields of an error object worth printing (never the connection string).
local ERROR_FIELDS = { "kind", "message", "sqlstate", "severity", "detail", "hint", "position", "schema",
                       "table", "column", "constraint", "file", "line", "row" }

--- A plain table of an error object's fields: what --json prints as `error`.
---@param err any
---@return table
function cli.error_table(err)
  if type(err) ~= "table" and type(err) ~= "userdata" then return { kind = "error", message = tostring(err) } end
  local t = {}
  for _, k in ipairs(ERROR_FIELDS) do
    local ok, v = pcall(function() return err[k] end)
    if ok then t[k] = v end
  end
  t.kind = t.kind or "error"
  t.message = t.message or tostring(err)
  return t
end

--- A number as people read it: whole numbers as they are, others with at most
--- 14 significant digits (0.518, not 0.51800000000000002).
---@param n number
---@return number
function cli.tidy_number(n)
  if n ~= n or n == math.huge or n == -math.huge then return n end
  if math.type and math.type(n) == "integer" then return n end
  if n % 1 == 0 and n > -2 ^ 53 and n < 2 ^ 53 then return n end
  return tonumber(("%.14g"):format(n))
end

-- A copy of v that the core's JSON encoder takes as people expect: numbers
-- tidied, error objects as tables, empty arrays kept as [] (marked with
-- pg.json_array_mt), keys of mixed tables as strings, anything else as text.
local function plain(v, depth)
  local t = type(v)
  if t == "number" then return cli.tidy_number(v) end
  if t == "string" or t == "boolean" or v == nil or v == pg.null then return v end
  if depth > 64 then return "..." end
  if t == "table" then
    local mt = getmetatable(v)
    if mt and mt ~= pg.json_array_mt and (mt.__tostring or mt.__name) and v.kind ~= nil then
      return cli.error_table(v)
    end
    local n, count = #v, 0
    for _ in pairs(v) do count = count + 1 end
    local out = {}
    if (n > 0 and n == count) or (count == 0 and mt == pg.json_array_mt) then
      for i = 1, n do out[i] = plain(v[i], depth + 1) end
      return setmetatable(out, pg.json_array_mt)
    end
    for k, x in pairs(v) do out[tostring(k)] = plain(x, depth + 1) end
    return out
  end
  if t == "userdata" then
    local ok, kind = pcall(function() return v.kind end)
    if ok and kind ~= nil then return cli.error_table(v) end
  end
  return tostring(v)
end

--- JSON text of v, as --json prints it (see plain above).
---@param v any
---@return string
function cli.encode_json(v)
  local text, err = pg.json_encode(plain(v, 0))
  if not text then
    text = assert(pg.json_encode { ok = false, error = { kind = "internal", message = tostring(err) } })
  end
  return text
end

--- Marks t as a JSON array (so an empty one prints as []); returns t.
---@param t table
---@return table
function cli.array(t)
  return setmetatable(t, pg.json_array_mt)
end

--- A converter for an option that takes a whole number >= min; its message
--- names the option.
---@param option string  e.g. "--steps"
---@param min? integer   default 0
---@return fun(s: string): integer|nil, string|nil
function cli.whole(option, min)
  min = min or 0
  return function(s)
    local n = type(s) == "string" and s:match("^%-?%d+$") and tonumber(s)
    if n and n >= min then return math.floor(n) end
    return nil, ("%s: a whole number%s is expected, got '%s'"):format(option, min > 0 and (" >= " .. min) or "",
      tostring(s))
  end
end

--- A converter for an option that takes a number of seconds >= 0.
---@param option string
---@return fun(s: string): number|nil, string|nil
function cli.seconds(option)
  return function(s)
    local n = tonumber(s)
    if n and n >= 0 and n == n then return n end
    return nil, ("%s: a number of seconds >= 0 is expected, got '%s'"):format(option, tostring(s))
  end
end

--- The helpers a command module gets (see the convention above); `tty` says
--- whether stdout is a terminal (colour). For tools that reuse them.
---@param tty boolean
---@return coderunner.cli.Common
function cli.new_common(tty)
  ---@class coderunner.cli.Common
  local common = { EXIT = cli.EXIT, json = false, color = false, command = nil, array = cli.array,
                   encode_json = cli.encode_json, whole = cli.whole, seconds = cli.seconds }

  -- Called once the command line is parsed; command names it ("migrate up").
  function common.setup(args, command)
    common.json = args.json and true or false
    common.command = command
    local no_color = os.getenv("NO_COLOR")
    common.color = tty and not common.json and not args.no_color and not (no_color and no_color ~= "")
  end

  --- text in a colour ("red", "green", "yellow", "blue", "bold", "dim") when colour is on.
  function common.paint(style, text)
    if not common.color or not STYLES[style] then return text end
    return "\27[" .. STYLES[style] .. "m" .. text .. "\27[0m"
  end

  --- One line of human output on stdout, flushed at once (progress shows as
  --- it happens, also when stdout is a pipe).
  function common.say(line)
    io.stdout:write(line, "\n")
    io.stdout:flush()
  end

  --- One line on stderr (warnings that are not the result).
  function common.note(line)
    io.stderr:write(line, "\n")
    io.stderr:flush()
  end

  --- Prints a command's result as one JSON document on stdout, with
  --- `ok = true` and `command` added unless the value has them.
  function common.emit(value)
    if type(value) == "table" then
      if value.ok == nil then value.ok = true end
      if value.command == nil then value.command = common.command end
    end
    io.stdout:write(cli.encode_json(value), "\n")
    io.stdout:flush()
  end

  common.error_table = cli.error_table

  --- Reports a failure (JSON on stdout with --json, else a red line on stderr)
  --- and returns the exit code (default EXIT.failure). extra: more JSON fields.
  --- JSON: { ok = false, command, error = { kind, message, ... }, extra... }.
  ---@param err any
  ---@param code? integer
  ---@param extra? table
  ---@return integer
  function common.fail(err, code, extra)
    local e = cli.error_table(err)
    if common.json then
      local out = { ok = false, command = common.command, error = e }
      for k, v in pairs(extra or {}) do out[k] = v end
      io.stdout:write(cli.encode_json(out), "\n")
      io.stdout:flush()
    else
      local line = common.paint("red", "error: ") .. tostring(e.message)
      if e.detail then line = line .. "\n  detail: " .. e.detail end
      if e.hint then line = line .. "\n  hint: " .. e.hint end
      common.note(line)
    end
    return code or cli.EXIT.failure
  end

  --- A progress reporter for long work (migrations, bulk loads), the same for
  --- every command. Human mode: each line is printed and flushed as it
  --- happens; --json: silent (stdout keeps one document).
  ---   r.start(text)     when a piece of work starts: "text ..."
  ---   r.finish(text)    when it ends: the line as given
  ---   r.update(label, done, total?, unit?)  counts ("label: 500 of 2000 rows (25%)"),
  ---                     at most once per interval (1 s), and always when done == total
  ---@param opts? {interval?: number, clock?: fun(): number}
  function common.reporter(opts)
    opts = opts or {}
    local interval, clock = opts.interval or 1, opts.clock or pg.monotonic
    local r, last = {}, nil
    function r.start(text)
      if not common.json then common.say(text .. " ...") end
    end
    function r.finish(text)
      if not common.json then common.say(text) end
    end
    function r.update(label, done, total, unit)
      if common.json then return end
      local now = clock()
      if total and done >= total or not last or now - last >= interval then
        last = now
        local text = ("%s: %d%s"):format(label, done, total and (" of %d"):format(total) or "")
        if unit then text = text .. " " .. unit end
        if total and total > 0 then text = text .. (" (%d%%)"):format(math.floor(done * 100 / total)) end
        common.say(text)
      end
    end
    return r
  end

  --- Resolves the connection settings: --url, else DATABASE_URL, DB_*, PG*.
  ---@return coderunner.Config|nil cfg
  ---@return coderunner.pg.Error|nil err
  function common.resolve(args)
    return require("coderunner.config").resolve({ url = args.url })
  end

  --- Opens one connection from the settings; the error names the database
  --- without its password. A bad configuration returns EXIT.usage as third value.
  ---@return coderunner.pg.Conn|nil conn
  ---@return coderunner.pg.Error|coderunner.Config|nil err_or_cfg
  ---@return integer|nil exit_code  on failure
  function common.connect(args)
    local cfg, err = common.resolve(args)
    if not cfg then return nil, err, cli.EXIT.usage end
    local conn
    conn, err = pg.connect(cfg.conninfo, { connect_timeout = cfg.pool and cfg.pool.connect_timeout })
    if not conn then
      local target = cfg.conninfo_redacted ~= "" and cfg.conninfo_redacted or "the PG* environment"
      return nil, pg.error { kind = err and err.kind or "connect", message = ("could not connect to %s: %s"):format(
        target, tostring(err and err.message or err)) }, cli.EXIT.failure
    end
    return conn, cfg
  end

  return common
end

-- Replaces the help flag of p and its subcommands by one that prints the help
-- and stops the parse (argparse's own calls os.exit).
local function install_help(p, shown)
  p:add_help { action = function()
    io.stdout:write(p:get_help(), "\n")
    shown.yes = true
    error("help shown", 0)
  end }
  for _, c in ipairs(p._commands or {}) do install_help(c, shown) end
end

--- Builds the parser with every command module's commands.
---@param common table
---@return table parser
---@return table<string, fun(args: table): integer> handlers
function cli.build(common)
  local parser = argparse("coderunner-db", "CodeRunner database administration.")
    :epilog("Connection: --url, else DATABASE_URL, else DB_HOST DB_PORT DB_NAME DB_USER DB_PASSWORD DB_SSL, "
      .. "else libpq's PG* variables.\nExit codes: 0 ok, 1 failure, 2 usage, 3 pending (migrate status --exit-code).")
  parser:option("--url", "Database URL (postgres://...) or libpq conninfo.")
  parser:flag("--json", "Machine-readable JSON on stdout.")
  parser:flag("--no-color", "No colour (it is off anyway when stdout is not a terminal, or NO_COLOR is set).")
  parser:command_target("command")
  local handlers = {}
  for _, modname in ipairs(cli.modules) do
    local ok, mod = pcall(require, modname)
    if ok then
      for name, handler in pairs(mod.register(parser, common)) do handlers[name] = handler end
    elseif not tostring(mod):find("module '" .. modname .. "' not found", 1, true) then
      error(mod, 0)
    end
  end
  return parser, handlers
end

-- "--steps -1" -> "--steps=-1": argparse would take "-1" for an option.
local function join_negative_numbers(list)
  local out = {}
  local i = 1
  while i <= #list do
    local a, b = list[i], list[i + 1]
    if a:match("^%-%-%a[%w-]*$") and b and b:match("^%-[%d.]+$") then
      out[#out + 1] = a .. "=" .. b
      i = i + 2
    else
      out[#out + 1] = a
      i = i + 1
    end
  end
  return out
end

-- The deepest (sub)command that list names, and its full name ("coderunner-db migrate down").
local function command_of(parser, list)
  local p, names = parser, {}
  for _, a in ipairs(list) do
    for _, c in ipairs(p._commands or {}) do
      for _, alias in ipairs(c._aliases or { c._name }) do
        if alias == a then p = c; names[#names + 1] = c._name; break end
      end
      if p == c then break end
    end
  end
  return p, table.concat(names, " ")
end

--- Runs the command line; returns the exit code.
---@param argv string[]
---@return integer
function cli.main(argv)
  local list = {}
  for i = 1, #(argv or {}) do list[i] = argv[i] end
  list = join_negative_numbers(list)
  local common = cli.new_common(stdout_is_terminal())
  local parser, handlers = cli.build(common)
  local shown = {}
  install_help(parser, shown)
  parser:flag("--version", "Print the version and exit."):action(function()
    io.stdout:write(("coderunner-db %s (libpq %s, %s)\n"):format(cli.VERSION, tostring(pg.libpq_version),
      rawget(_G, "jit") and _G.jit.version or _VERSION))
    shown.yes = true
    error("version shown", 0)
  end)

  local called, ok, args = pcall(parser.pparse, parser, list)
  if shown.yes then return cli.EXIT.ok end
  if not called then error(ok, 0) end
  if not ok then
    local cmd, name = command_of(parser, list)
    local message = name ~= "" and ("coderunner-db %s: %s"):format(name, args) or args
    local wants_json = false
    for _, a in ipairs(list) do if a == "--json" then wants_json = true end end
    if wants_json then
      common.json, common.command = true, name ~= "" and name or nil
      return common.fail({ kind = "usage", message = message }, cli.EXIT.usage)
    end
    io.stderr:write(cmd:get_usage(), "\n\nerror: ", message, "\n(try ", cmd:_get_fullname(), " --help)\n")
    return cli.EXIT.usage
  end
  local _, name = command_of(parser, list)
  common.setup(args, name)
  local handler = handlers[args.command]
  if not handler then
    return common.fail({ kind = "usage", message = "unknown command " .. tostring(args.command) }, cli.EXIT.usage)
  end
  local traceback
  local ran, code = xpcall(function() return handler(args) end, function(e)
    traceback = debug.traceback(tostring(e), 2)
    return e
  end)
  if not ran then
    common.note(traceback)
    return common.fail({ kind = "internal", message = "internal error: " .. tostring(code) })
  end
  return code or cli.EXIT.ok
end

return cli
