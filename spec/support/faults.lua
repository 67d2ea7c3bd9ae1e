-- Fault injection for the throwaway cluster of `make test`: restart or stop
-- the server (pg_ctlcluster, as pg_virtualenv set it up: PGVERSION and
-- PG_CLUSTER_CONF_ROOT, cluster "regress"), now or in the background while a
-- spec keeps working, and terminate backends from another process (psql).
-- A spec that needs these and finds no such cluster fails; it never skips.
local server = require "support.server"

local faults = {}

local function sh(cmd)
  local status = os.execute(cmd)
  return status == true or status == 0
end
faults.sh = sh

--- The cluster's pg_ctlcluster prefix; raises outside pg_virtualenv.
local function ctl_prefix()
  local version = os.getenv("PGVERSION")
  assert(os.getenv("PG_CLUSTER_CONF_ROOT") and version,
    "fault specs need the throwaway cluster of `make test` (pg_virtualenv), which they restart")
  -- without a sanitizer runtime preloaded into the tool (make asan)
  return "env -u LD_PRELOAD pg_ctlcluster " .. version .. " regress "
end

--- pg_ctlcluster <action> [-m mode], waiting for it.
function faults.ctl(action, mode)
  local cmd = ctl_prefix() .. action .. (mode and (" -m " .. mode) or "") .. " >/dev/null 2>&1"
  assert(sh(cmd), "pg_ctlcluster " .. action .. " failed")
end

local seq = 0

--- Runs the shell command after `delay` seconds in the background; returns a
--- handle for faults.wait(handle).
function faults.later(delay, cmd)
  seq = seq + 1
  local marker = os.tmpname()
  os.remove(marker)
  assert(sh(("(sleep %s; %s >/dev/null 2>&1; touch %s) >/dev/null 2>&1 &"):format(delay, cmd, marker)))
  return marker
end

--- pg_ctlcluster <action> [-m mode] after `delay` seconds, in the background.
function faults.ctl_later(delay, action, mode)
  return faults.later(delay, ctl_prefix() .. action .. (mode and (" -m " .. mode) or ""))
end

--- SQL through psql after `delay` seconds, in the background (another
--- process, so it can reach a backend this one is blocked on).
function faults.psql_later(delay, sql)
  return faults.later(delay, "env -u LD_PRELOAD psql -X -q -At -c " .. ("%q"):format(sql))
end

--- Waits (up to `seconds`) for a background command to finish.
function faults.wait(marker, seconds)
  local done = server.eventually(function()
    local f = io.open(marker, "r")
    if f then f:close() end
    return f ~= nil
  end, seconds or 30)
  os.remove(marker)
  assert(done, "a background fault command did not finish")
end

local data_directory

--- Remembers which cluster the specs talk to (see faults.wait_up).
function faults.remember_cluster()
  local c = server.connect()
  data_directory = c:query("show data_directory")[1].data_directory
  c:close()
end

--- Waits until the server accepts connections again, and checks it is the
--- same cluster (another pg_virtualenv started meanwhile could take the port).
function faults.wait_up(seconds)
  local pg = require "coderunner.pg"
  local conn
  local up = server.eventually(function()
    conn = pg.connect("", { connect_timeout = 1 })
    return conn ~= nil
  end, seconds or 30)
  assert(up, "the server did not come back")
  local dir = conn:query("show data_directory")[1].data_directory
  conn:close()
  assert(data_directory == nil or dir == data_directory,
    "after the restart the port belongs to another cluster (" .. dir .. "): parallel pg_virtualenv runs?")
end

return faults
