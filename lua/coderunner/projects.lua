-- Projects repository: SQL and validation for the `projects` table. Every
-- function takes an executor first (pool, connection or transaction).
local repository = require "coderunner.repository"

local check = repository.check
local nest = repository.nest
local first = repository.first

local projects = {}

---@class coderunner.Project
---@field id string
---@field user_id string
---@field name string
---@field description? string
---@field created_at string
---@field updated_at string

---@class coderunner.PublicUser  a user without password_hash
---@field id string
---@field email string
---@field plan_type coderunner.PlanType
---@field created_at string
---@field updated_at string

---@class coderunner.ProjectWithUser: coderunner.Project
---@field user coderunner.PublicUser

local COLUMNS = "id, user_id, name, description, created_at, updated_at"
local NAME_MAX, DESCRIPTION_MAX = 255, 10000
local INSERT_SQL = "INSERT INTO projects (user_id, name, description) VALUES ($1, $2, $3) RETURNING " .. COLUMNS
local BY_ID_SQL = "SELECT " .. COLUMNS .. " FROM projects WHERE id = $1"
local BY_USER_SQL = "SELECT " .. COLUMNS .. " FROM projects WHERE user_id = $1"
  .. " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
local WITH_USER_SQL = [[
    SELECT p.id, p.user_id, p.name, p.description, p.created_at, p.updated_at,
           u.id AS user__id, u.email AS user__email, u.plan_type AS user__plan_type,
           u.created_at AS user__created_at, u.updated_at AS user__updated_at
      FROM projects p JOIN users u ON u.id = p.user_id
     WHERE p.id = $1]]

--- Creates a project for an existing user.
---@param exec coderunner.pg.Executor
---@param user_id string
---@param name string
---@param description? string
---@return coderunner.Project|nil project
---@return coderunner.pg.Error|nil err  invalid_input (bad value, or no user with that id), connect, ...
function projects.create(exec, user_id, name, description)
  local err, res
  user_id, err = check.uuid(user_id, "user id")
  if not user_id then return nil, err end
  name, err = check.text(name, "project name", NAME_MAX)
  if not name then return nil, err end
  description, err = check.optional_text(description, "project description", DESCRIPTION_MAX)
  if not description then return nil, err end
  res, err = exec:query(INSERT_SQL, user_id, name, description)
  if not res then
    if err.sqlstate == "23503" then
      return check.server_error(err, ("user %s does not exist"):format(user_id))
    end
    return check.server_error(err)
  end
  return res[1]
end

--- The project with this id, or nil.
---@param exec coderunner.pg.Executor
---@param id string
---@return coderunner.Project|nil project
---@return coderunner.pg.Error|nil err
function projects.get_by_id(exec, id)
  local err
  id, err = check.uuid(id, "project id")
  if not id then return nil, err end
  return first(exec:query(BY_ID_SQL, id))
end

--- A page of the user's projects, newest first (ties by id).
---@param exec coderunner.pg.Executor
---@param user_id string
---@param limit? integer   1..1000, default 50
---@param offset? integer  >= 0, default 0
---@return coderunner.Project[]|nil projects
---@return coderunner.pg.Error|nil err
function projects.list_by_user(exec, user_id, limit, offset)
  local err
  user_id, err = check.uuid(user_id, "user id")
  if not user_id then return nil, err end
  limit, offset = check.page(limit, offset)
  if not limit then return nil, offset end
  return exec:query(BY_USER_SQL, user_id, limit, offset)
end

local PROJECT_ROW = {
  table = "projects", returning = COLUMNS, what = "project",
  fields = { "name", "description" },
  validate = {
    name = function(v) return check.text(v, "project name", NAME_MAX) end,
    description = function(v) return check.optional_text(v, "project description", DESCRIPTION_MAX) end,
  },
}

---@class coderunner.ProjectUpdates
---@field name? string
---@field description? string|coderunner.pg.Null  pg.null clears it

--- Updates name and/or description; returns the project, or nil when there is
--- no such project. An empty updates table changes nothing.
---@param exec coderunner.pg.Executor
---@param id string
---@param updates coderunner.ProjectUpdates
---@return coderunner.Project|nil project
---@return coderunner.pg.Error|nil err  invalid_input (unknown field, bad value)
function projects.update(exec, id, updates)
  local row, err = repository.update(exec, PROJECT_ROW, id, updates, projects.get_by_id)
  if err then return check.server_error(err) end
  return row
end

--- Deletes the project (its deployments go with it).
---@param exec coderunner.pg.Executor
---@param id string
---@return boolean|nil deleted  false when there was no such project
---@return coderunner.pg.Error|nil err
function projects.delete(exec, id)
  return repository.delete(exec, "projects", "project", id)
end

--- The project with its owner nested as `user` (without password_hash), or nil.
---@param exec coderunner.pg.Executor
---@param id string
---@return coderunner.ProjectWithUser|nil project
---@return coderunner.pg.Error|nil err
function projects.get_with_user(exec, id)
  local err, res
  id, err = check.uuid(id, "project id")
  if not id then return nil, err end
  res, err = exec:query(WITH_USER_SQL, id)
  if not res then return nil, err end
  local row = res[1]
  if not row then return nil end
  row.user = nest(row, "user__", repository.PUBLIC_USER_COLUMNS)
  return row
end

return projects
