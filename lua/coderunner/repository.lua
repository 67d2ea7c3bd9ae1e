-- Helpers shared by the users, projects and deployments repositories: the
-- validators (`repository.check`) and the update and delete of one row by id.
-- Nothing here knows a table's meaning; it only builds parameterised SQL from
-- names the repositories pass in.
local pg = require "coderunner.pg"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local repository = {}

-- Validators shared by the repositories. Each returns nil, err (kind
-- invalid_input) when the value is refused, the value (normalised) otherwise.
local check = {}
repository.check = check

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
  if type(state) == "string" and pg.sqlstate_info(state).rejects_value then
    return nil, pg.error { kind = "invalid_input", message = message or err.message, sqlstate = state,
      constraint = err.constraint, detail = err.detail, table = err.table, column = err.column }
  end
  return nil, err
end

--- The first row of a query's result, or nil, err: for lookups by a unique key.
---@param res coderunner.pg.Result|nil
---@param err? coderunner.pg.Error
---@return table|nil row
---@return coderunner.pg.Error|nil err
function repository.first(res, err)
  if not res then return nil, err end
  return res[1]
end

--- Memoizes build(key) per key: SQL text is built once per shape, not per call.
---@param build fun(key: string): string
---@return table<string, string>
function repository.sql_cache(build)
  return setmetatable({}, { __index = function(cache, key)
    local sql = build(key)
    cache[key] = sql
    return sql
  end })
end

--- Moves a joined row's `prefix..column` fields into a sub-table.
---@param row table
---@param prefix string  e.g. "user__"
---@param columns string[]
---@return table
function repository.nest(row, prefix, columns)
  local sub = {}
  for _, c in ipairs(columns) do
    sub[c] = row[prefix .. c]
    row[prefix .. c] = nil
  end
  return sub
end

--- Columns of a user that joined results carry (never password_hash).
repository.PUBLIC_USER_COLUMNS = { "id", "email", "plan_type", "created_at", "updated_at" }

---@class coderunner.RowSpec
---@field table string                  table name
---@field returning string               column list for RETURNING
---@field what string                   "user": names the id and the updates in messages
---@field fields string[]               columns an update may set, in order
---@field validate table<string, fun(v: any): any, coderunner.pg.Error?>
---@field cast? table<string, string>   e.g. { status = "::deployment_status" }

-- UPDATE statements per row spec, then per set of fields: each built once.
local update_sql = setmetatable({}, { __mode = "k" })

--- Updates the given fields of the row with this id, each validated first;
--- returns the updated row, nil when there is no such row, or nil, err. With
--- no field to set it returns get(exec, id) and writes nothing.
---@param exec coderunner.pg.Executor
---@param spec coderunner.RowSpec
---@param id string
---@param updates table
---@param get fun(exec: coderunner.pg.Executor, id: string): table|nil, coderunner.pg.Error|nil
function repository.update(exec, spec, id, updates, get)
  local err, fields, res
  id, err = check.uuid(id, spec.what .. " id")
  if not id then return nil, err end
  fields, err = check.updates(updates, spec.fields, spec.what .. " updates")
  if not fields then return nil, err end
  local params = { id }
  for _, f in ipairs(fields) do
    local v, verr = spec.validate[f](updates[f])
    if v == nil then return nil, verr end
    params[#params + 1] = v
  end
  if #fields == 0 then return get(exec, id) end
  local cache = update_sql[spec]
  if not cache then
    cache = repository.sql_cache(function(key)
      local sets = {}
      for f in key:gmatch("[^,]+") do
        sets[#sets + 1] = ("%s = $%d%s"):format(f, #sets + 2, spec.cast and spec.cast[f] or "")
      end
      return ("UPDATE %s SET %s WHERE id = $1 RETURNING %s"):format(spec.table, table.concat(sets, ", "),
        spec.returning)
    end)
    update_sql[spec] = cache
  end
  res, err = exec:query(cache[table.concat(fields, ",")], unpack(params, 1, #params))
  if not res then return nil, err end
  return res[1]
end

-- DELETE statements per table, built once.
local delete_sql = repository.sql_cache(function(table_name)
  return ("DELETE FROM %s WHERE id = $1"):format(table_name)
end)

--- Deletes the row with this id: true, false when there was none, or nil, err.
---@param exec coderunner.pg.Executor
---@param table_name string
---@param what string  "user", for the message about a bad id
---@param id string
---@return boolean|nil deleted
---@return coderunner.pg.Error|nil err
function repository.delete(exec, table_name, what, id)
  local err, res
  id, err = check.uuid(id, what .. " id")
  if not id then return nil, err end
  res, err = exec:query(delete_sql[table_name], id)
  if not res then return nil, err end
  return res.affected_rows > 0
end

return repository
