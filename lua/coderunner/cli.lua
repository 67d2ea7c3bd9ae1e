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
-- Also accepted: register returns nothing and a command's argparse action sets
-- `args.handler = fn(args, out)` (out prints one line); fn returns the exit code.
local argparse = require "argparse"

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
cli.modules = { "coderunner.cli.migrate", "coderunner.cli.service", "coderunner.cli.watch" }

---------------------------------------------------------------------------
-- JSON output (arrays keep their brackets even when empty)
---------------------------------------------------------------------------

local ARRAY = setmetatable({}, { __mode = "k" })

--- Marks t as a JSON array (so an empty one prints as []); returns t.
---@param t table
---@return table
function cli.array(t)
  ARRAY[t] = true
  return t
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function is_array(t)
  if ARRAY[t] then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function encode(v, out)
  local t = type(v)
  if v == nil then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    elseif v % 1 == 0 and v > -2 ^ 53 and v < 2 ^ 53 then
      out[#out + 1] = ("%d"):format(v)
    else
      out[#out + 1] = ("%.17g"):format(v)
    end
  elseif t == "string" then
    out[#out + 1] = encode_string(v)
  elseif t == "table" and is_array(v) then
    out[#out + 1] = "["
    for i = 1, #v do
      if i > 1 then out[#out + 1] = "," end
      encode(v[i], out)
    end
    out[#out + 1] = "]"
  elseif t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = encode_string(k) .. ":"
      local value = v[k]
      if value == nil then value = v[tonumber(k)] end
      encode(value, out)
    end
    out[#out + 1] = "}"
  else
    out[#out + 1] = encode_string(tostring(v))
  end
end

--- Encodes a Lua value as JSON (keys sorted; functions and userdata as strings).
---@param v any
---@return string
function cli.encode_json(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

---------------------------------------------------------------------------
-- Helpers shared by the command modules
---------------------------------------------------------------------------

local STYLES = { red = "31", green = "32", yellow = "33", blue = "34", bold = "1", dim = "2" }

local function stdout_is_terminal()
  local r = os.execute("test -t 1")
  return r == true or r == 0
end

-- The fields of an error object worth printing (never the connection string).
local ERROR_FIELDS = { "kind", "message", "sqlstate", "severity", "detail", "hint", "position", "schema",
                       "table", "column", "constraint", "file", "line" }

local function new_common(tty)
  ---@class coderunner.cli.Common
  local common = { EXIT = cli.EXIT, json = false, color = false, array = cli.array, encode_json = cli.encode_json }

  -- Called once the command line is parsed.
  function common.setup(args)
    common.json = args.json and true or false
    local no_color = os.getenv("NO_COLOR")
    common.color = tty and not common.json and not args.no_color and not (no_color and no_color ~= "")
  end

  --- text in a colour ("red", "green", "yellow", "blue", "bold", "dim") when colour is on.
  function common.paint(style, text)
    if not common.color or not STYLES[style] then return text end
    return "\27[" .. STYLES[style] .. "m" .. text .. "\27[0m"
  end

  --- One line of human output on stdout.
  function common.say(line)
    io.stdout:write(line, "\n")
  end

  --- One line on stderr (progress and warnings that are not the result).
  function common.note(line)
    io.stderr:write(line, "\n")
  end

  --- Prints value as one line of JSON on stdout.
  function common.emit(value)
    io.stdout:write(cli.encode_json(value), "\n")
    io.stdout:flush()
  end

  --- A plain table of an error object's fields.
  function common.error_table(err)
    if type(err) ~= "table" and type(err) ~= "userdata" then return { kind = "error", message = tostring(err) } end
    local t = {}
    for _, k in ipairs(ERROR_FIELDS) do t[k] = err[k] end
    t.message = t.message or tostring(err)
    return t
  end

  --- Reports a failure (JSON on stdout with --json, else a red line on stderr)
  --- and returns the exit code (default EXIT.failure). extra: more JSON fields.
  ---@param err any
  ---@param code? integer
  ---@param extra? table
  ---@return integer
  function common.fail(err, code, extra)
    if common.json then
      local out = { ok = false, error = common.error_table(err) }
      for k, v in pairs(extra or {}) do out[k] = v end
      common.emit(out)
    else
      local e = common.error_table(err)
      local line = common.paint("red", "error: ") .. tostring(e.message)
      if e.detail then line = line .. "\n  detail: " .. e.detail end
      if e.hint then line = line .. "\n  hint: " .. e.hint end
      common.note(line)
    end
    return code or cli.EXIT.failure
  end

  --- Resolves the connection settings: --url, else DATABASE_URL, DB_*, PG*.
  ---@return coderunner.Config|nil cfg
  ---@return coderunner.pg.Error|nil err
  function common.resolve(args)
    return require("coderunner.config").resolve({ url = args.url })
  end

  --- Opens one connection from the settings; the error names the database
  --- without its password.
  ---@return coderunner.pg.Conn|nil conn
  ---@return coderunner.pg.Error|coderunner.Config|nil err_or_cfg
  function common.connect(args)
    local pg = require "coderunner.pg"
    local cfg, err = common.resolve(args)
    if not cfg then return nil, err end
    local conn
    conn, err = pg.connect(cfg.conninfo, { connect_timeout = cfg.pool and cfg.pool.connect_timeout })
    if not conn then
      local target = cfg.conninfo_redacted ~= "" and cfg.conninfo_redacted or "the PG* environment"
      return nil, pg.error { kind = err and err.kind or "connect", message = ("could not connect to %s: %s"):format(
        target, tostring(err and err.message or err)) }
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
  parser:option("--url", "Database URL or libpq conninfo.")
  parser:flag("--json", "Machine-readable JSON on stdout.")
  parser:flag("--no-color", "No colour (it is off anyway when stdout is not a terminal, or NO_COLOR is set).")
  parser:command_target("command")
  local handlers = {}
  for _, modname in ipairs(cli.modules) do
    local ok, mod = pcall(require, modname)
    if ok then
      for name, handler in pairs(mod.register(parser, common) or {}) do handlers[name] = handler end
    elseif not tostring(mod):find("module '" .. modname .. "' not found", 1, true) then
      error(mod, 0)
    end
  end
  return parser, handlers
end

--- Runs the command line; returns the exit code.
---@param argv string[]
---@return integer
function cli.main(argv)
  local list = {}
  for i = 1, #(argv or {}) do list[i] = argv[i] end
  local common = new_common(stdout_is_terminal())
  local parser, handlers = cli.build(common)
  local shown = {}
  install_help(parser, shown)

  local called, ok, args = pcall(parser.pparse, parser, list)
  if shown.yes then return cli.EXIT.ok end
  if not called then error(ok, 0) end
  if not ok then
    local wants_json = false
    for _, a in ipairs(list) do if a == "--json" then wants_json = true end end
    if wants_json then
      common.json = true
      return common.fail({ kind = "usage", message = args }, cli.EXIT.usage)
    end
    io.stderr:write(parser:get_usage(), "\n\nerror: ", args, "\n(try coderunner-db --help)\n")
    return cli.EXIT.usage
  end
  common.setup(args)
  local handler = handlers[args.command]
  if type(args.handler) == "function" then
    local fn = args.handler
    handler = function(a) return fn(a, common.say) end
  end
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
