-- The migration lock: a session advisory lock, taken by polling
-- pg_try_advisory_lock between client-side sleeps, so a waiting runner holds
-- no snapshot (it cannot stall a CREATE INDEX CONCURRENTLY of the runner it
-- waits for). It lives on the runner's one dedicated connection, which also
-- runs the migrations, so the lock cannot outlive the work or vice versa.
local pg = require "coderunner.pg"

local lock = {}

-- First key of the advisory lock ("CRDB"); the second one is a hash of the
-- history table's name, so runners of different tables do not block each other.
lock.NAMESPACE = 0x43524442

local TRY_SQL = "select pg_try_advisory_lock($1::int4, $2::int4) as locked"
local UNLOCK_SQL = "select pg_advisory_unlock($1::int4, $2::int4)"
local HOLDER_SQL = [[
  select a.pid, coalesce(nullif(a.application_name, ''), 'no application_name') as app
  from pg_locks l join pg_stat_activity a on a.pid = l.pid
  where l.locktype = 'advisory' and l.granted and l.database = (select oid from pg_database
    where datname = current_database()) and l.classid = $1::oid and l.objid = $2::oid and l.objsubid = 2]]

local NAMESPACE_TEXT = ("%d"):format(lock.NAMESPACE)

--- Small, stable string hash into [0, 2^31), the same on every Lua VM: the
--- second key of the lock of a history table.
---@param s string
---@return integer
function lock.key(s)
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 2147483648 end
  return h
end

-- Who holds the lock (for the timeout message), as "pid N (application_name)".
local function holder(conn, key_text)
  local rows = conn:query(HOLDER_SQL, NAMESPACE_TEXT, key_text)
  if rows and rows[1] then return ("pid %s (%s)"):format(tostring(rows[1].pid), rows[1].app) end
  return "another session"
end

---@class coderunner.migrate.LockOptions
---@field key integer        lock.key(table name)
---@field table string       the history table's name (for the message)
---@field timeout number     seconds
---@field poll_interval number
---@field sleep? fun(seconds: number)   default pg.sleep
---@field on_wait? fun()     called once, when the lock is taken by another session

--- Takes the lock on conn by polling; nil, err (kind "timeout") after opts.timeout.
---@param conn coderunner.pg.Conn
---@param opts coderunner.migrate.LockOptions
---@return true|nil ok
---@return coderunner.pg.Error|nil err
function lock.acquire(conn, opts)
  local key_text = ("%d"):format(opts.key)
  local sleep = opts.sleep or pg.sleep
  local deadline, announced = pg.monotonic() + opts.timeout, false
  while true do
    local rows, err = conn:query(TRY_SQL, NAMESPACE_TEXT, key_text)
    if not rows then return nil, err end
    if rows[1].locked then return true end
    if pg.monotonic() >= deadline then
      return nil, pg.error { kind = "timeout", message = ("could not take the migration lock within %s s: %s is "
        .. "running migrations on this database (table %s); try again when it has finished, or raise the lock "
        .. "timeout"):format(tostring(opts.timeout), holder(conn, key_text), opts.table) }
    end
    if not announced then
      announced = true
      if opts.on_wait then opts.on_wait() end
    end
    sleep(opts.poll_interval)
  end
end

--- Releases the lock taken by lock.acquire on conn.
---@param conn coderunner.pg.Conn
---@param key integer
function lock.release(conn, key)
  conn:query(UNLOCK_SQL, NAMESPACE_TEXT, ("%d"):format(key))
end

return lock
