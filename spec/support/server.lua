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

return server
