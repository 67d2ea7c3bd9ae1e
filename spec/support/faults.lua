-- Fault injection for the throwaway cluster of `make test`: restart or stop
-- the server (pg_ctl on the cluster pg_virtualenv set up: PGVERSION and
-- PG_CLUSTER_CONF_ROOT, cluster "regress"), now or in the background while a
-- spec keeps working, and terminate backends from another process (psql).
-- A spec that needs these and finds no such cluster fails; it never skips.
local server = require "support.server"
local shell = require "support.shell"

local faults = {}

local sh, capture = shell.sh, shell.capture
faults.sh = sh

--- The cluster's pg_ctl command prefix; raises outside pg_virtualenv. pg_ctl on
--- the data directory, not pg_ctlcluster: all pg_virtualenv clusters share the
--- name 15/regress and so the external pid file pg_ctlcluster trusts, which
--- parallel runs overwrite.
local prefix
local function ctl_prefix()
  if prefix then return prefix end
  local root, version = os.getenv("PG_CLUSTER_CONF_ROOT"), os.getenv("PGVERSION")
  assert(root and version, "fault specs need the throwaway cluster of `make test` (pg_virtualenv), which they restart")
  local conf = ("%s/%s/regress/postgresql.conf"):format(root, version)
  local f = assert(io.open(conf, "r"))
  local data = f:read("*a"):match("\ndata_directory%s*=%s*'([^']+)'")
  f:close()
  assert(data, "no data_directory in " .. conf)
  local log = root:gsub("/[^/]+$", "") .. ("/log/postgresql-%s-regress.log"):format(version)
  local bindir = capture("pg_config --bindir 2>/dev/null")
  if bindir == "" or not bindir:find(version, 1, true) then bindir = "/usr/lib/postgresql/" .. version .. "/bin" end
  -- pg_ctl refuses root: run it as the data directory's owner
  local owner = capture("stat -c %U " .. data)
  local as = (capture("id -u") == "0" and owner ~= "root") and ("runuser -u " .. owner .. " -- ") or ""
  -- without a sanitizer runtime preloaded into the tool (make asan)
  prefix = ("env -u LD_PRELOAD %s%s/pg_ctl -D %s -w -t 60 -l %s -o '-c config_file=%s' ")
    :format(as, bindir, data, log, conf)
  return prefix
end

--- pg_ctl <action> [-m mode], waiting for it (restart, stop, start).
function faults.ctl(action, mode)
  local cmd = ctl_prefix() .. (mode and ("-m " .. mode .. " ") or "") .. action .. " >/dev/null 2>&1"
  assert(sh(cmd), "pg_ctl " .. action .. " failed")
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

--- pg_ctl <action> [-m mode] after `delay` seconds, in the background.
function faults.ctl_later(delay, action, mode)
  return faults.later(delay, ctl_prefix() .. (mode and ("-m " .. mode .. " ") or "") .. action)
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
