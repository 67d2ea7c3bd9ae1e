-- Deployments repository: SQL and validation for the `deployments` table,
-- including the status machine. Every function takes an executor first (pool,
-- connection or transaction).
local pg = require "coderunner.pg"
local repository = require "coderunner.repository"
local domain = require "coderunner.domain"

local check = repository.check
local first = repository.first

-- A refused status move is this domain's own error kind, not the core's.
pg.register_error_kind "invalid_transition"
local unpack = table.unpack or unpack -- luacheck: ignore 143

local deployments = {}

---@class coderunner.Deployment
---@field id string
---@field project_id string
---@field app_sandbox_id? string
---@field public_url? string
---@field db_sandbox_id? string
---@field db_connection_info? table  jsonb, decoded
---@field status coderunner.DeploymentStatus
---@field runtime_type string
---@field created_at string
---@field updated_at string

---@class coderunner.DeploymentWithDetails: coderunner.Deployment
---@field project coderunner.Project
---@field user coderunner.PublicUser  the project's owner, without password_hash

--- Every status, in the order of the schema's enum (domain.STATUSES).
deployments.STATUSES = domain.STATUSES

--- The allowed moves: TRANSITIONS[from][to] is true when from -> to is allowed (domain.TRANSITIONS).
deployments.TRANSITIONS = domain.TRANSITIONS

--- True when a deployment may move from `from` to `to` (same status: true).
deployments.can_move = domain.can_move

--- The statuses a deployment in `from` may move to, as a readable list.
deployments.allowed_targets = domain.allowed_targets

local ALLOWED_FROM = domain.ALLOWED_FROM

local COLUMNS = "id, project_id, app_sandbox_id, public_url, db_sandbox_id, db_connection_info, status, "
  .. "runtime_type, created_at, updated_at"
local FIELDS = { "runtime_type", "app_sandbox_id", "public_url", "db_sandbox_id", "db_connection_info", "status" }
local PROJECT_COLUMNS = { "id", "user_id", "name", "description", "created_at", "updated_at" }
local BY_ID_SQL = "SELECT " .. COLUMNS .. " FROM deployments WHERE id = $1"
local BY_PROJECT_SQL = "SELECT " .. COLUMNS .. " FROM deployments WHERE project_id = $1"
  .. " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
local BY_STATUS_SQL = "SELECT " .. COLUMNS .. " FROM deployments WHERE status = $1::deployment_status"
  .. " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
local WITH_DETAILS_SQL = [[
    SELECT d.id, d.project_id, d.app_sandbox_id, d.public_url, d.db_sandbox_id, d.db_connection_info,
           d.status, d.runtime_type, d.created_at, d.updated_at,
           p.id AS project__id, p.user_id AS project__user_id, p.name AS project__name,
           p.description AS project__description, p.created_at AS project__created_at,
           p.updated_at AS project__updated_at,
           u.id AS user__id, u.email AS user__email, u.plan_type AS user__plan_type,
           u.created_at AS user__created_at, u.updated_at AS user__updated_at
      FROM deployments d
      JOIN projects p ON p.id = d.project_id
      JOIN users u ON u.id = p.user_id
     WHERE d.id = $1]]
local RUNNING_COUNT_SQL = [[
    SELECT count(*) AS n FROM deployments d JOIN projects p ON p.id = d.project_id
     WHERE p.user_id = $1 AND d.status = 'running']]

local function check_status(status)
  return check.one_of(status, deployments.STATUSES, "status")
end

local function check_url(url)
  if url == nil or url == pg.null then return pg.null end
  if type(url) ~= "string" or #url > 2048 or not url:match("^[hH][tT][tT][pP][sS]?://[%w%-%.]+[^%s]*$") then
    return check.invalid(("public_url must be an http or https URL, got %s"):format(check.show(url)))
  end
  return url
end

local function check_info(info)
  if info == nil or info == pg.null then return pg.null end
  if type(info) ~= "table" then
    return check.invalid(("db_connection_info must be a table, got %s"):format(type(info)))
  end
  return info
end

-- Validators per field; each returns the value to bind, or nil, err.
local VALIDATE = {
  runtime_type = function(v) return check.text(v, "runtime_type", 50) end,
  app_sandbox_id = function(v) return check.optional_text(v, "app_sandbox_id", 255) end,
  db_sandbox_id = function(v) return check.optional_text(v, "db_sandbox_id", 255) end,
  public_url = check_url,
  db_connection_info = check_info,
  status = check_status,
}
-- SQL casts per field.
local CAST = { db_connection_info = "::jsonb", status = "::deployment_status" }

local DEPLOYMENT_ROW = {
  table = "deployments", returning = COLUMNS, what = "deployment",
  fields = FIELDS, validate = VALIDATE, cast = CAST,
}

-- INSERT statements per set of fields given, each built once.
local INSERT_SQL = repository.sql_cache(function(key)
  local names, values = { "project_id" }, { "$1" }
  for f in key:gmatch("[^,]+") do
    names[#names + 1] = f
    values[#values + 1] = "$" .. #names .. (CAST[f] or "")
  end
  return ("INSERT INTO deployments (%s) VALUES (%s) RETURNING %s"):format(table.concat(names, ", "),
    table.concat(values, ", "), COLUMNS)
end)

---@class coderunner.DeploymentData
---@field runtime_type string              required, non-empty
---@field app_sandbox_id? string
---@field public_url? string               http or https URL
---@field db_sandbox_id? string
---@field db_connection_info? table        stored as jsonb
---@field status? coderunner.DeploymentStatus  default "pending"

--- Creates a deployment of an existing project.
---@param exec coderunner.pg.Executor
---@param project_id string
---@param data coderunner.DeploymentData
---@return coderunner.Deployment|nil deployment
---@return coderunner.pg.Error|nil err  invalid_input (bad value, or no project with that id), connect, ...
function deployments.create(exec, project_id, data)
  local err, fields, res
  project_id, err = check.uuid(project_id, "project id")
  if not project_id then return nil, err end
  fields, err = check.updates(data, FIELDS, "deployment data")
  if not fields then return nil, err end
  if data.runtime_type == nil then return check.invalid("runtime_type is required") end
  local params = { project_id }
  for _, f in ipairs(fields) do
    local v, verr = VALIDATE[f](data[f])
    if v == nil then return nil, verr end
    params[#params + 1] = v
  end
  res, err = exec:query(INSERT_SQL[table.concat(fields, ",")], unpack(params, 1, #params))
  if not res then
    if err.sqlstate == "23503" then
      return check.server_error(err, ("project %s does not exist"):format(project_id))
    end
    return check.server_error(err)
  end
  return res[1]
end

--- The deployment with this id, or nil.
---@param exec coderunner.pg.Executor
---@param id string
---@return coderunner.Deployment|nil deployment
---@return coderunner.pg.Error|nil err
function deployments.get_by_id(exec, id)
  local err
  id, err = check.uuid(id, "deployment id")
  if not id then return nil, err end
  return first(exec:query(BY_ID_SQL, id))
end

--- A page of the project's deployments, newest first (ties by id).
---@param exec coderunner.pg.Executor
---@param project_id string
---@param limit? integer   1..1000, default 50
---@param offset? integer  >= 0, default 0
---@return coderunner.Deployment[]|nil deployments
---@return coderunner.pg.Error|nil err
function deployments.list_by_project(exec, project_id, limit, offset)
  local err
  project_id, err = check.uuid(project_id, "project id")
  if not project_id then return nil, err end
  limit, offset = check.page(limit, offset)
  if not limit then return nil, offset end
  return exec:query(BY_PROJECT_SQL, project_id, limit, offset)
end

--- A page of the deployments in one status, newest first (ties by id).
---@param exec coderunner.pg.Executor
---@param status coderunner.DeploymentStatus
---@param limit? integer
---@param offset? integer
---@return coderunner.Deployment[]|nil deployments
---@return coderunner.pg.Error|nil err
function deployments.list_by_status(exec, status, limit, offset)
  local err
  status, err = check_status(status)
  if not status then return nil, err end
  limit, offset = check.page(limit, offset)
  if not limit then return nil, offset end
  return exec:query(BY_STATUS_SQL, status, limit, offset)
end

-- One statement decides and reports: `moved` updates the row only when its
-- current status may move to $2 (the row lock makes a concurrent mover wait and
-- re-check); when it did not, `current` locks and reads the row as it is now,
-- so a refusal names the status that actually refused it.
local MOVE_SQL = ([[
WITH moved AS (
  UPDATE deployments SET status = $2::deployment_status
   WHERE id = $1 AND status = ANY($3::deployment_status[])
  RETURNING %s
), current_row AS (
  SELECT %s FROM deployments
   WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM moved)
     FOR UPDATE
)
SELECT true AS moved, * FROM moved
UNION ALL
SELECT false AS moved, * FROM current_row]]):format(COLUMNS, COLUMNS)

--- Moves a deployment to `status` when DESIGN.md's status machine allows it,
--- checked atomically by the UPDATE itself. Setting the status it already has
--- succeeds and changes nothing. Returns the deployment, or nil when there is
--- no such deployment.
---@param exec coderunner.pg.Executor
---@param id string
---@param status coderunner.DeploymentStatus
---@return coderunner.Deployment|nil deployment
---@return coderunner.pg.Error|nil err  invalid_input, invalid_transition (with from_status, to_status)
function deployments.update_status(exec, id, status)
  local err, res
  id, err = check.uuid(id, "deployment id")
  if not id then return nil, err end
  status, err = check_status(status)
  if not status then return nil, err end
  res, err = exec:query(MOVE_SQL, id, status, pg.array(ALLOWED_FROM[status]))
  if not res then return nil, err end
  local row = res[1]
  if not row then return nil end
  local moved = row.moved
  row.moved = nil
  if moved or row.status == status then return row end
  return nil, pg.error { kind = "invalid_transition", from_status = row.status, to_status = status,
    message = ("deployment %s cannot move from %s to %s (allowed from %s: %s)"):format(id, row.status, status,
      row.status, deployments.allowed_targets(row.status)) }
end

---@class coderunner.DeploymentUpdates
---@field runtime_type? string
---@field app_sandbox_id? string|coderunner.pg.Null
---@field public_url? string|coderunner.pg.Null
---@field db_sandbox_id? string|coderunner.pg.Null
---@field db_connection_info? table|coderunner.pg.Null

--- Updates the given fields (not status: use update_status); returns the
--- deployment, or nil when there is no such deployment.
---@param exec coderunner.pg.Executor
---@param id string
---@param updates coderunner.DeploymentUpdates
---@return coderunner.Deployment|nil deployment
---@return coderunner.pg.Error|nil err  invalid_input
function deployments.update(exec, id, updates)
  if type(updates) == "table" and updates.status ~= nil then
    return check.invalid("deployment updates: status changes go through update_deployment_status")
  end
  local row, err = repository.update(exec, DEPLOYMENT_ROW, id, updates, deployments.get_by_id)
  if err then return check.server_error(err) end
  return row
end

--- Deletes the deployment.
---@param exec coderunner.pg.Executor
---@param id string
---@return boolean|nil deleted  false when there was no such deployment
---@return coderunner.pg.Error|nil err
function deployments.delete(exec, id)
  return repository.delete(exec, "deployments", "deployment", id)
end

--- The deployment with its project and the project's owner nested as
--- `project` and `user` (without password_hash), or nil.
---@param exec coderunner.pg.Executor
---@param id string
---@return coderunner.DeploymentWithDetails|nil deployment
---@return coderunner.pg.Error|nil err
function deployments.get_with_details(exec, id)
  local err, res
  id, err = check.uuid(id, "deployment id")
  if not id then return nil, err end
  res, err = exec:query(WITH_DETAILS_SQL, id)
  if not res then return nil, err end
  local row = res[1]
  if not row then return nil end
  row.project = repository.nest(row, "project__", PROJECT_COLUMNS)
  row.user = repository.nest(row, "user__", repository.PUBLIC_USER_COLUMNS)
  return row
end

--- How many of the user's deployments are running.
---@param exec coderunner.pg.Executor
---@param user_id string
---@return integer|nil count
---@return coderunner.pg.Error|nil err
function deployments.running_count_by_user(exec, user_id)
  local err, res
  user_id, err = check.uuid(user_id, "user id")
  if not user_id then return nil, err end
  res, err = exec:query(RUNNING_COUNT_SQL, user_id)
  if not res then return nil, err end
  return res[1].n
end

return deployments
