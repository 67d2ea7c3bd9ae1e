-- Statistics repository: the SQL behind the service's health check and system
-- statistics. Like the other repositories, every function takes an executor
-- first (pool, connection or transaction); the service chooses the snapshot.
local domain = require "coderunner.domain"

local stats = {}

local SERVER_SQL = "SELECT current_database() AS database, current_setting('server_version') AS server_version"
local PLANS_SQL = "SELECT plan_type, count(*) AS n FROM users GROUP BY plan_type"
local PROJECTS_SQL = "SELECT count(*) AS n FROM projects"
local STATUSES_SQL = "SELECT status::text AS status, count(*) AS n FROM deployments GROUP BY status"
local DATABASE_SQL = "SELECT current_database() AS name, pg_database_size(current_database()) AS size_bytes, "
  .. "pg_size_pretty(pg_database_size(current_database())) AS size"

--- The database's name and the server's version, in one round trip.
---@param exec coderunner.pg.Executor
---@return {database: string, server_version: string}|nil server
---@return coderunner.pg.Error|nil err
function stats.server(exec)
  local res, err = exec:query(SERVER_SQL)
  if not res then return nil, err end
  return res[1]
end

---@class coderunner.Counts
---@field users {total: integer, by_plan: table<string, integer>}
---@field projects {total: integer}
---@field deployments {total: integer, running: integer, by_status: table<string, integer>}
---@field database {name: string, size_bytes: integer, size: string}

--- Users by plan, projects, deployments by status and the database's size. Run
--- it in one read-only repeatable-read transaction for a consistent snapshot.
---@param exec coderunner.pg.Executor
---@return coderunner.Counts|nil counts
---@return coderunner.pg.Error|nil err
function stats.counts(exec)
  local plans, projects, statuses, database, err
  plans, err = exec:query(PLANS_SQL)
  if not plans then return nil, err end
  projects, err = exec:query(PROJECTS_SQL)
  if not projects then return nil, err end
  statuses, err = exec:query(STATUSES_SQL)
  if not statuses then return nil, err end
  database, err = exec:query(DATABASE_SQL)
  if not database then return nil, err end
  local out = {
    users = { total = 0, by_plan = {} },
    projects = { total = projects[1].n },
    deployments = { total = 0, running = 0, by_status = {} },
    database = database[1],
  }
  for _, plan in ipairs(domain.PLANS) do out.users.by_plan[plan] = 0 end
  for _, r in ipairs(plans) do
    out.users.by_plan[r.plan_type] = r.n
    out.users.total = out.users.total + r.n
  end
  for _, s in ipairs(domain.STATUSES) do out.deployments.by_status[s] = 0 end
  for _, r in ipairs(statuses) do
    out.deployments.by_status[r.status] = r.n
    out.deployments.total = out.deployments.total + r.n
  end
  out.deployments.running = out.deployments.by_status.running
  return out
end

return stats
