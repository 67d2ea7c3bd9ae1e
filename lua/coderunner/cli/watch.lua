-- `coderunner-db watch`: prints the deployment status changes the schema
-- announces (migration 002: channel `deployment_status`, a JSON payload
-- {id, project_id, old_status, new_status}) as they are committed, one line
-- each (or one JSON object per line with --json), until interrupted or until
-- --count changes or --timeout seconds without one.
local pg = require "coderunner.pg"

local M = {}

--- The channel migration 002 notifies on.
M.CHANNEL = "deployment_status"

local function positive(s)
  local n = tonumber(s)
  if n and n > 0 then return n end
  return nil, "a number greater than 0 is expected"
end

--- Listens and prints; returns the exit code.
---@param args table
---@param common table
---@return integer
function M.watch(args, common)
  local conn, err = common.connect(args)
  if not conn then return common.fail(err) end
  local ok
  ok, err = conn:listen(M.CHANNEL)
  if not ok then
    conn:close()
    return common.fail(err)
  end
  if not common.json then common.note(("watching channel %s (Ctrl-C to stop)"):format(M.CHANNEL)) end
  io.stdout:flush()
  local seen = 0
  while not args.count or seen < args.count do
    local note
    note, err = conn:wait_notification(args.timeout)
    if not note then
      conn:close()
      if err then return common.fail(err) end
      return common.EXIT.ok -- --timeout passed without a change
    end
    seen = seen + 1
    local change = pg.json_decode(note.payload) or { payload = note.payload }
    if common.json then
      change.channel = note.channel
      common.emit(change)
    else
      common.say(("%s  deployment %s (project %s): %s -> %s"):format(os.date("!%Y-%m-%d %H:%M:%SZ"),
        tostring(change.id), tostring(change.project_id), tostring(change.old_status), tostring(change.new_status)))
      io.stdout:flush()
    end
  end
  conn:close()
  return common.EXIT.ok
end

--- Adds the `watch` command.
---@param parser table
---@param common table
---@return table<string, fun(args: table): integer>
function M.register(parser, common)
  local cmd = parser:command("watch", "Print deployment status changes as they are committed (LISTEN "
    .. M.CHANNEL .. ").")
  cmd:option("--count", "Stop after this many changes."):convert(positive)
  cmd:option("--timeout", "Stop after this many seconds without a change."):convert(positive)
  return { watch = function(args) return M.watch(args, common) end }
end

return M
