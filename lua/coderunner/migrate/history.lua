-- The history store of the migration runner: the SQL of the history table
-- (one row per applied migration) and of the checksums. A store is made once
-- per runner, for one table name; its SQL is built then, not per call.
local pg = require "coderunner.pg"

local history = {}

local Store = {}
Store.__index = Store

-- Integer as decimal text, for $n::bigint parameters (exact on every VM).
local function int_text(n)
  return ("%d"):format(n)
end

-- How long since $n (a clock_timestamp text), in ms rounded to the microsecond.
local function elapsed_ms(n)
  return ("round((extract(epoch from clock_timestamp() - $%d::timestamptz) * 1000)::numeric, 3)::float8"):format(n)
end

local EXISTS_SQL = "select to_regclass($1) is not null as present"
local CLOCK_SQL = "select clock_timestamp()::text as t"

--- True when name is a table name the store accepts: `name` or `schema.name`,
--- letters, digits and '_' only.
---@param name any
---@return boolean
function history.valid_name(name)
  return type(name) == "string" and (name:match("^[%a_][%w_]*$") ~= nil
    or name:match("^[%a_][%w_]*%.[%a_][%w_]*$") ~= nil)
end

--- A store for the history table `name` (checked by history.valid_name first).
---@param name string
---@return table store
function history.new(name)
  -- "schema"."table": valid_name allows only letters, digits and '_'.
  local parts = {}
  for part in name:gmatch("[^.]+") do parts[#parts + 1] = '"' .. part .. '"' end
  local t = table.concat(parts, ".")
  return setmetatable({
    name = name,
    quoted = t,
    create_sql = ([[
      create table %s (
        version     bigint primary key,
        name        text not null,
        checksum    text not null,
        applied_at  timestamptz not null default now(),
        duration_ms double precision not null,
        applied_by  text not null default current_user
      )]]):format(t),
    select_sql = ("select version::text as version, name, checksum, applied_at::text as applied_at, "
      .. "duration_ms, applied_by from %s order by version"):format(t),
    insert_sql = ("insert into %s (version, name, checksum, duration_ms) values ($1::bigint, $2, $3, %s) "
      .. "returning applied_at::text as applied_at, duration_ms, applied_by"):format(t, elapsed_ms(4)),
    delete_sql = ("delete from %s where version = $1::bigint returning %s as duration_ms"):format(t, elapsed_ms(2)),
  }, Store)
end

--- True when the history table exists.
function Store:exists(exec)
  local rows, err = exec:query(EXISTS_SQL, self.quoted)
  if not rows then return nil, err end
  return rows[1].present
end

--- Creates the history table when it does not exist.
function Store:ensure(exec)
  local present, err = self:exists(exec)
  if present == nil then return nil, err end
  if present then return true end
  return exec:exec(self.create_sql)
end

--- The history rows by version (empty when the table does not exist yet).
---@return table<integer, table>|nil rows  {version, name, checksum, applied_at, duration_ms, applied_by}
---@return coderunner.pg.Error|nil err
function Store:applied(exec)
  local present, err = self:exists(exec)
  if present == nil then return nil, err end
  if not present then return {} end
  local rows
  rows, err = exec:query(self.select_sql)
  if not rows then return nil, err end
  local applied = {}
  for _, r in ipairs(rows) do
    r.version = tonumber(r.version)
    applied[r.version] = r
  end
  return applied
end

--- Records an applied migration; started is the clock text taken before it ran.
---@return table|nil row  { applied_at, duration_ms, applied_by }
---@return coderunner.pg.Error|nil err
function Store:record(exec, entry, started)
  local rows, err = exec:query(self.insert_sql, int_text(entry.version), entry.name, entry.checksum, started)
  if not rows then return nil, err end
  return rows[1]
end

--- Forgets a reverted migration.
---@return table|nil row  { duration_ms }
---@return coderunner.pg.Error|nil err
function Store:forget(exec, entry, started)
  local rows, err = exec:query(self.delete_sql, int_text(entry.version), started)
  if not rows then return nil, err end
  return rows[1] or { duration_ms = 0 }
end

--- The server's clock, as text, to time a migration with.
---@return string|nil
---@return coderunner.pg.Error|nil err
function history.clock(exec)
  local rows, err = exec:query(CLOCK_SQL)
  if not rows then return nil, err end
  return rows[1].t
end

-- The checksum SQL for n texts, built once per n.
local checksum_sql = setmetatable({}, { __index = function(cache, n)
  local items = {}
  for i = 1, n do items[i] = ("$%d::bytea"):format(i) end
  local sql = ("select ord::int as i, encode(sha256(b), 'hex') as sum from unnest(array[%s]) "
    .. "with ordinality as u(b, ord)"):format(table.concat(items, ", "))
  cache[n] = sql
  return sql
end })

--- SHA-256 (hex) of each text, CRLF line endings made LF, by the server in one
--- round trip.
---@param exec coderunner.pg.Executor
---@param texts string[]
---@return string[]|nil sums  in the order of texts
---@return coderunner.pg.Error|nil err
function history.checksums(exec, texts)
  local n = #texts
  if n == 0 then return {} end
  local params = {}
  for i, text in ipairs(texts) do params[i] = pg.bytea((text:gsub("\r\n", "\n"))) end
  local rows, err = exec:query(checksum_sql[n], (table.unpack or unpack)(params, 1, n)) -- luacheck: ignore 143
  if not rows then return nil, err end
  local sums = {}
  for _, r in ipairs(rows) do sums[r.i] = r.sum end
  return sums
end

return history
