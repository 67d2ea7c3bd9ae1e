-- Users repository: SQL and validation for the `users` table. Every function
-- takes an executor first (a pool, a connection or a transaction: anything with
-- :query), so the same code runs inside and outside a transaction.
--
-- Also home of `users.check`, the validators the other repositories share.
local pg = require "coderunner.pg"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local users = {}

---@alias coderunner.PlanType "free"|"pro"|"enterprise"

---@class coderunner.User
---@field id string              uuid
---@field email string
---@field password_hash string
---@field plan_type coderunner.PlanType
---@field created_at string      timestamptz as the server prints it
---@field updated_at string

--- Plans a user may have; the first is the default.
users.PLANS = { "free", "pro", "enterprise" }

-- Validators shared by the repositories. Each returns nil, err (kind
-- invalid_input) when the value is refused, the value (normalised) otherwise.
local check = {}
users.check = check

--- Largest page a listing returns; the default page size.
check.MAX_LIMIT, check.DEFAULT_LIMIT = 1000, 50

---@param message string
---@param fields? table  extra fields for the error object
---@return nil
---@return coderunner.pg.Error
function check.invalid(message, fields)
  local e = { kind = "invalid_input", message = message }
  for k, v in pairs(fields or {}) do e[k] = v end
  return nil, pg.error(e)
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

---@param value any
---@param what string  what the value is, for the message ("user id")
function check.uuid(value, what)
  if type(value) ~= "string" or not value:match(UUID) then
    return check.invalid(("%s must be a UUID, got %s"):format(what, check.show(value)))
  end
  return value:lower()
end

--- A short printable form of a caller's value for an error message.
function check.show(value)
  if type(value) == "string" then
    if #value > 60 then value = value:sub(1, 57) .. "..." end
    return ("%q"):format(value)
  end
  return tostring(value)
end

--- A non-empty string of at most max bytes.
function check.text(value, what, max)
  if type(value) ~= "string" or value:match("^%s*$") then
    return check.invalid(("%s must be a non-empty string"):format(what))
  end
  if max and #value > max then
    return check.invalid(("%s must be at most %d characters"):format(what, max))
  end
  return value
end

--- nil, pg.null or a string: for nullable text columns.
function check.optional_text(value, what, max)
  if value == nil or value == pg.null then return pg.null end
  if type(value) ~= "string" then
    return check.invalid(("%s must be a string or pg.null, got %s"):format(what, type(value)))
  end
  if max and #value > max then
    return check.invalid(("%s must be at most %d characters"):format(what, max))
  end
  return value
end

--- One of a list of names.
function check.one_of(value, list, what)
  for _, v in ipairs(list) do
    if value == v then return value end
  end
  return check.invalid(("%s must be one of %s, got %s"):format(what, table.concat(list, ", "), check.show(value)))
end

--- limit (1..MAX_LIMIT, default DEFAULT_LIMIT) and offset (>= 0, default 0).
---@return integer|nil limit
---@return integer|coderunner.pg.Error offset_or_err
function check.page(limit, offset)
  limit = limit == nil and check.DEFAULT_LIMIT or limit
  offset = offset == nil and 0 or offset
  if type(limit) ~= "number" or limit % 1 ~= 0 or limit < 1 or limit > check.MAX_LIMIT then
    return check.invalid(("limit must be a whole number from 1 to %d, got %s"):format(check.MAX_LIMIT,
      check.show(limit)))
  end
  if type(offset) ~= "number" or offset % 1 ~= 0 or offset < 0 or offset >= 2 ^ 53 then
    return check.invalid(("offset must be a whole number >= 0, got %s"):format(check.show(offset)))
  end
  return math.floor(limit), math.floor(offset)
end

--- Validates the keys of an updates table against the known columns; returns
--- the column names present, in the order of `columns`.
function check.updates(updates, columns, what)
  if type(updates) ~= "table" then
    return check.invalid(("%s must be a table, got %s"):format(what, type(updates)))
  end
  local known = {}
  for _, c in ipairs(columns) do known[c] = true end
  for k in pairs(updates) do
    if not known[k] then
      return check.invalid(("%s: unknown field %s (known: %s)"):format(what, check.show(k),
        table.concat(columns, ", ")))
    end
  end
  local present = {}
  for _, c in ipairs(columns) do
    if updates[c] ~= nil then present[#present + 1] = c end
  end
  return present
end

--- Turns a server's refusal of a value (check constraint, bad text for a type,
--- foreign key) into invalid_input, keeping sqlstate and constraint; other
--- errors pass through unchanged.
function check.server_error(err, message)
  local state = type(err) == "table" and err.sqlstate
  if state == "23514" or state == "22P02" or state == "23503" or state == "23502" or state == "22001" then
    return nil, pg.error { kind = "invalid_input", message = message or err.message, sqlstate = state,
      constraint = err.constraint, detail = err.detail, table = err.table, column = err.column }
  end
  return nil, err
end

-- email: what the schema's check constraint accepts, at most 254 characters.
local function check_email(email)
  local ok = type(email) == "string" and #email <= 254
  local domain = ok and email:match("^[%w._%%+-]+@([%w.-]+)$")
  if domain then
    local labels = {}
    for label in (domain .. "."):gmatch("([^.]*)%.") do labels[#labels + 1] = label end
    ok = #labels >= 2 and labels[#labels]:match("^%a%a+$") ~= nil
    for _, label in ipairs(labels) do ok = ok and label:match("^[%w-]+$") ~= nil end
  end
  if not (ok and domain) then
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

local function first(res, err)
  if not res then return nil, err end
  return res[1]
end

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
  plan_type, err = check.one_of(plan_type == nil and "free" or plan_type, users.PLANS, "plan_type")
  if not plan_type then return nil, err end
  local res
  res, err = exec:query("INSERT INTO users (email, password_hash, plan_type) VALUES ($1, $2, $3) RETURNING "
    .. COLUMNS, email, password_hash, plan_type)
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
  return first(exec:query("SELECT " .. COLUMNS .. " FROM users WHERE id = $1", id))
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
  return first(exec:query("SELECT " .. COLUMNS .. " FROM users WHERE email = $1", email))
end

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
  local err, fields
  id, err = check.uuid(id, "user id")
  if not id then return nil, err end
  fields, err = check.updates(updates, { "email", "password_hash", "plan_type" }, "user updates")
  if not fields then return nil, err end
  local validate = {
    email = check_email,
    password_hash = check_hash,
    plan_type = function(v) return check.one_of(v, users.PLANS, "plan_type") end,
  }
  local sets, params = {}, { id }
  for _, f in ipairs(fields) do
    local v, verr = validate[f](updates[f])
    if v == nil then return nil, verr end
    params[#params + 1] = v
    sets[#sets + 1] = ("%s = $%d"):format(f, #params)
  end
  if #sets == 0 then return users.get_by_id(exec, id) end
  local res
  res, err = exec:query(("UPDATE users SET %s WHERE id = $1 RETURNING %s"):format(table.concat(sets, ", "), COLUMNS),
    unpack(params, 1, #params))
  if not res then return email_conflict(err, updates.email) end
  return res[1]
end

--- Deletes the user (their projects and deployments go with it).
---@param exec coderunner.pg.Executor
---@param id string
---@return boolean|nil deleted  false when there was no such user
---@return coderunner.pg.Error|nil err
function users.delete(exec, id)
  local err, res
  id, err = check.uuid(id, "user id")
  if not id then return nil, err end
  res, err = exec:query("DELETE FROM users WHERE id = $1", id)
  if not res then return nil, err end
  return res.affected_rows > 0
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
  res, err = exec:query("SELECT " .. COLUMNS .. " FROM users ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
    limit, offset)
  if not res then return nil, err end
  return res
end

return users
