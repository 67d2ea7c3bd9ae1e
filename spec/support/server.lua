-- Spec helpers for the throwaway server that `make test` starts (pg_virtualenv
-- exports PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE). A spec that needs a
-- server and finds none fails here, loudly; it never skips.
local pg = require "coderunner.pg"

local server = {}

--- A connection to the default database of the test server.
function server.connect()
  local conn, err = pg.connect("")
  assert(conn, "specs need a PostgreSQL server (run them with `make test`): " .. tostring(err))
  return conn
end

--- Drops and creates database `name`; returns a conninfo string for it (the
--- rest of the connection parameters come from the PG* environment).
function server.fresh_database(name)
  local conn = server.connect()
  local ident = conn:escape_identifier(name)
  assert(conn:exec("DROP DATABASE IF EXISTS " .. ident .. " WITH (FORCE)"))
  assert(conn:exec("CREATE DATABASE " .. ident))
  conn:close()
  return "dbname=" .. name
end

--- Calls fn until it returns a truthy value or `seconds` pass (backends exit
--- a moment after their client disconnects). Returns fn's last result.
function server.eventually(fn, seconds)
  local deadline = os.time() + (seconds or 3)
  local v = fn()
  while not v and os.time() <= deadline do
    os.execute("sleep 0.05")
    v = fn()
  end
  return v
end

--- How many server backends have application_name `app` (seen from conn).
function server.count_backends(conn, app)
  return conn:query("select count(*)::int as n from pg_stat_activity where application_name = $1", app)[1].n
end

--- The number of backends with application_name `app`, once it settles at
--- `expected` (or the last count after `seconds`, default 3).
function server.backends_settled(conn, app, expected, seconds)
  local n
  server.eventually(function()
    n = server.count_backends(conn, app)
    return n == expected
  end, seconds)
  return n
end

return server
