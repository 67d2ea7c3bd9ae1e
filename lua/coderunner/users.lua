-- Users repository: SQL and validation for the `users` table. Every function
-- takes an executor first (a pool, a connection or a transaction: anything with
-- :query), so the same code runs inside and outside a transaction.
local pg = require "coderunner.pg"
local repository = require "coderunner.repository"
local domain = require "coderunner.domain"

local check = repository.check
local first = repository.first

local users = {}

---@class coderunner.User
---@field id string              uuid
---@field email string
---@field password_hash string
---@field plan_type coderunner.PlanType
---@field created_at string      timestamptz as the server prints it
---@field updated_at string

--- Plans a user may have; the first is the default (domain.PLANS).
users.PLANS = domain.PLANS

-- email: what the schema's check constraint accepts, at most 254 characters.
local function check_email(email)
  local ok = type(email) == "string" and #email <= 254
  local host = ok and email:match("^[%w._%%+-]+@([%w.-]+)$")
  if host then
    local labels = {}
    for label in (host .. "."):gmatch("([^.]*)%.") do labels[#labels + 1] = label end
    ok = #labels >= 2 and labels[#labels]:match("^%a%a+$") ~= nil
    for _, label in ipairs(labels) do ok = ok and label:match("^[%w-]+$") ~= nil end
  end
  if not (ok and host) then
    return check.invalid(("email must be a valid address, got %s"):format(check.show(email)))
  end
  return email
end
users.check_email = check_email

local function check_hash(hash)
  if type(hash) ~= "string" or hash == "" then
    -- never echo the value: it is a secret
    return check.invalid("password_hash must be a non-empty string")
  end
  return hash
end

local COLUMNS = "id, email, password_hash, plan_type, created_at, updated_at"
local INSERT_SQL = "INSERT INTO users (email, password_hash, plan_type) VALUES ($1, $2, $3) RETURNING " .. COLUMNS
local BY_ID_SQL = "SELECT " .. COLUMNS .. " FROM users WHERE id = $1"
local BY_EMAIL_SQL = "SELECT " .. COLUMNS .. " FROM users WHERE email = $1"
local LIST_SQL = "SELECT " .. COLUMNS .. " FROM users ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"

local function email_conflict(err, email)
  if err and err.kind == "conflict" then
    return nil, pg.error { kind = "conflict", message = ("a user with email %s already exists"):format(email),
      sqlstate = err.sqlstate, constraint = err.constraint }
  end
  return check.server_error(err)
end

--- Creates a user. plan_type defaults to "free".
---@param exec coderunner.pg.Executor
---@param email string
---@param password_hash string
---@param plan_type? coderunner.PlanType
---@return coderunner.User|nil user
---@return coderunner.pg.Error|nil err  invalid_input, conflict (email taken), connect, ...
function users.create(exec, email, password_hash, plan_type)
  local err
  email, err = check_email(email)
  if not email then return nil, err end
  password_hash, err = check_hash(password_hash)
  if not password_hash then return nil, err end
  plan_type, err = check.one_of(plan_type == nil and domain.DEFAULT_PLAN or plan_type, users.PLANS, "plan_type")
  if not plan_type then return nil, err end
  local res
  res, err = exec:query(INSERT_SQL, email, password_hash, plan_type)
  if not res then return email_conflict(err, email) end
  return res[1]
end

--- The user with this id, or nil.
---@param exec coderunner.pg.Executor
---@param id string
---@return coderunner.User|nil user
---@return coderunner.pg.Error|nil err
function users.get_by_id(exec, id)
  local err
  id, err = check.uuid(id, "user id")
  if not id then return nil, err end
  return first(exec:query(BY_ID_SQL, id))
end

--- The user with this email, or nil.
---@param exec coderunner.pg.Executor
---@param email string
---@return coderunner.User|nil user
---@return coderunner.pg.Error|nil err
function users.get_by_email(exec, email)
  local err
  email, err = check_email(email)
  if not email then return nil, err end
  return first(exec:query(BY_EMAIL_SQL, email))
end

local USER_ROW = {
  table = "users", returning = COLUMNS, what = "user",
  fields = { "email", "password_hash", "plan_type" },
  validate = {
    email = check_email,
    password_hash = check_hash,
    plan_type = function(v) return check.one_of(v, users.PLANS, "plan_type") end,
  },
}

---@class coderunner.UserUpdates
---@field email? string
---@field password_hash? string
---@field plan_type? coderunner.PlanType

--- Updates the given fields; returns the updated user, or nil when there is no
--- such user. An empty updates table changes nothing and returns the user.
---@param exec coderunner.pg.Executor
---@param id string
---@param updates coderunner.UserUpdates
---@return coderunner.User|nil user
---@return coderunner.pg.Error|nil err  invalid_input (unknown field, bad value), conflict
function users.update(exec, id, updates)
  local row, err = repository.update(exec, USER_ROW, id, updates, users.get_by_id)
  if err then return email_conflict(err, type(updates) == "table" and updates.email or nil) end
  return row
end

--- Deletes the user (their projects and deployments go with it).
---@param exec coderunner.pg.Executor
---@param id string
---@return boolean|nil deleted  false when there was no such user
---@return coderunner.pg.Error|nil err
function users.delete(exec, id)
  return repository.delete(exec, "users", "user", id)
end

--- A page of users, newest first (ties by id).
---@param exec coderunner.pg.Executor
---@param limit? integer   1..1000, default 50
---@param offset? integer  >= 0, default 0
---@return coderunner.User[]|nil users
---@return coderunner.pg.Error|nil err
function users.list(exec, limit, offset)
  local err
  limit, offset = check.page(limit, offset)
  if not limit then return nil, offset end
  local res
  res, err = exec:query(LIST_SQL, limit, offset)
  if not res then return nil, err end
  return res
end

return users
