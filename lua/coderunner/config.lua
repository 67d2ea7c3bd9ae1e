-- Configuration of the DatabaseService: where the database is and how the pool
-- behaves, from explicit overrides, else the environment, else the defaults.
--
--   local cfg, err = config.resolve({ url = "postgres://..." })
--
-- Order for the connection: overrides.url, DATABASE_URL, the DB_* variables
-- (DB_HOST DB_PORT DB_NAME DB_USER DB_PASSWORD DB_SSL DB_SSL_CA), else "" (libpq's own
-- PG* environment). Each pool option falls back on its own: overrides.pool.x,
-- then its DB_* variable, then the default.
local pg = require "coderunner.pg"

local config = {}

--- Defaults of the pool, as the original service had them.
config.defaults = {
  min = 2,
  max = 10,
  idle_timeout = 30,      -- seconds
  connect_timeout = 2,    -- seconds
  slow_query_ms = 1000,
}

-- Pool option -> environment variable, and whether it must be an integer.
local POOL_VARS = {
  { key = "min", var = "DB_POOL_MIN", integer = true },
  { key = "max", var = "DB_POOL_MAX", integer = true },
  { key = "idle_timeout", var = "DB_IDLE_TIMEOUT" },
  { key = "connect_timeout", var = "DB_CONNECT_TIMEOUT" },
  { key = "slow_query_ms", var = "DB_SLOW_QUERY_MS" },
}

-- Pool options passed through to the core unchanged when given as overrides.
local PASS_THROUGH = { "acquire_timeout", "max_lifetime", "statement_cache", "on_slow_query", "logger", "name",
  "query_timeout", "reset", "leak_traceback" }

-- The URL schemes libpq accepts.
local POSTGRES_SCHEMES = { postgres = true, postgresql = true }

local SSL_MODES = {
  disable = true, allow = true, prefer = true, require = true,
  ["verify-ca"] = true, ["verify-full"] = true,
}

local function invalid(message)
  return nil, pg.error { kind = "invalid_input", message = "configuration: " .. message }
end

local function nonempty(s)
  if s ~= nil and s ~= "" then return s end
  return nil
end

-- Quotes a value for a libpq keyword/value conninfo: 'value' with \ and ' escaped.
local function quote(value)
  return "'" .. value:gsub("\\", "\\\\"):gsub("'", "\\'") .. "'"
end

-- Parses a number from a string or number; nil when it is not one.
local function to_number(v)
  if type(v) == "number" then return v end
  if type(v) == "string" and v:match("^%s*[%d%.eE+-]+%s*$") then return tonumber(v) end
  return nil
end

-- DB_SSL: a libpq sslmode name, or a boolean alias: true/1/yes/on -> require
-- (encrypted, the server not verified), false/0/no/off -> disable.
local function ssl_mode(value)
  local v = value:lower()
  if v == "true" or v == "1" or v == "yes" or v == "on" then return "require" end
  if v == "false" or v == "0" or v == "no" or v == "off" then return "disable" end
  if SSL_MODES[v] then return v end
  return nil
end

-- The sslmode and sslrootcert parts from DB_SSL and DB_SSL_CA (the root
-- certificate file that signed the server's): verify-ca and verify-full need
-- the CA and never fall back to less; a CA alone means verify-full.
local function ssl_parts(parts, ssl, ca)
  local mode = ssl and ssl_mode(ssl)
  if ssl and not mode then
    return invalid(("DB_SSL must be true, false or a libpq sslmode, got %q"):format(ssl))
  end
  if ca and not ssl then mode = "verify-full" end
  if (mode == "verify-ca" or mode == "verify-full") and not ca then
    return invalid(("DB_SSL=%s needs DB_SSL_CA, the root certificate file that signed the server's certificate")
      :format(mode))
  end
  if ca then
    local f = io.open(ca, "r")
    if not f then return invalid(("DB_SSL_CA: cannot read the file %q"):format(ca)) end
    f:close()
  end
  if mode then parts[#parts + 1] = "sslmode=" .. quote(mode) end
  if ca then parts[#parts + 1] = "sslrootcert=" .. quote(ca) end
  return true
end

-- Builds the conninfo from DB_HOST DB_PORT DB_NAME DB_USER DB_PASSWORD DB_SSL
-- DB_SSL_CA; nil when none of them is set.
local function conninfo_from_parts(getenv)
  local host, port, name = nonempty(getenv("DB_HOST")), nonempty(getenv("DB_PORT")), nonempty(getenv("DB_NAME"))
  local user, password, ssl = nonempty(getenv("DB_USER")), nonempty(getenv("DB_PASSWORD")), nonempty(getenv("DB_SSL"))
  local ca = nonempty(getenv("DB_SSL_CA"))
  if not (host or port or name or user or password or ssl or ca) then return nil end
  local parts = {}
  if host then parts[#parts + 1] = "host=" .. quote(host) end
  if port then
    local n = to_number(port)
    if not n or n % 1 ~= 0 or n < 1 or n > 65535 then
      return invalid(("DB_PORT must be a port number (1-65535), got %q"):format(port))
    end
    parts[#parts + 1] = "port=" .. quote(tostring(math.floor(n)))
  end
  if name then parts[#parts + 1] = "dbname=" .. quote(name) end
  if user then parts[#parts + 1] = "user=" .. quote(user) end
  if password then parts[#parts + 1] = "password=" .. quote(password) end
  if ssl or ca then
    local ok, err = ssl_parts(parts, ssl, ca)
    if not ok then return nil, err end
  end
  return table.concat(parts, " ")
end

--- Resolves the configuration.
---@param overrides? {url?: string, pool?: coderunner.pg.PoolOptions, slow_query_ms?: number, logger?: function}
---@param getenv? fun(name: string): string|nil   defaults to os.getenv
---@return coderunner.Config|nil cfg
---@return coderunner.pg.Error|nil err   kind "invalid_input", naming the variable
function config.resolve(overrides, getenv)
  overrides = overrides or {}
  getenv = getenv or os.getenv
  if type(overrides) ~= "table" then error("config.resolve: overrides must be a table", 2) end
  if overrides.url ~= nil and type(overrides.url) ~= "string" then
    error("config.resolve: url must be a string", 2)
  end
  local pool_over = overrides.pool or {}
  if type(pool_over) ~= "table" then error("config.resolve: pool must be a table", 2) end

  local conninfo, source, err
  if nonempty(overrides.url) then
    conninfo, source = overrides.url, "url"
  elseif nonempty(getenv("DATABASE_URL")) then
    conninfo, source = getenv("DATABASE_URL"), "DATABASE_URL"
  else
    conninfo, err = conninfo_from_parts(getenv)
    if err then return nil, err end
    if conninfo then source = "DB_*" else conninfo, source = "", "PG*" end
  end

  -- A URL of another database (mysql://...) is refused by its scheme alone:
  -- the message never repeats the URL, which may hold a password.
  local scheme = conninfo:match("^%s*(%a[%w+.-]*)://")
  if scheme and not POSTGRES_SCHEMES[scheme:lower()] then
    return invalid(("%s is not a PostgreSQL URL (it starts with %s://): use postgres://user@host:port/dbname "
      .. "or a libpq conninfo such as 'host=... dbname=...'"):format(source, scheme))
  end

  local pool = {}
  for _, o in ipairs(POOL_VARS) do
    local raw, name = pool_over[o.key], "pool." .. o.key
    if o.key == "slow_query_ms" and overrides.slow_query_ms ~= nil then
      raw, name = overrides.slow_query_ms, "slow_query_ms"
    end
    if raw == nil and nonempty(getenv(o.var)) then raw, name = getenv(o.var), o.var end
    if raw == nil then
      pool[o.key] = config.defaults[o.key]
    else
      local n = to_number(raw)
      if not n or n ~= n then
        return invalid(("%s must be a number, got %q"):format(name, tostring(raw)))
      end
      if n < 0 then return invalid(("%s must not be negative, got %s"):format(name, tostring(raw))) end
      if o.integer and n % 1 ~= 0 then
        return invalid(("%s must be a whole number, got %s"):format(name, tostring(raw)))
      end
      pool[o.key] = o.integer and math.floor(n) or n
      pool["_name_" .. o.key] = name
    end
  end
  if pool.max < 1 then return invalid(("%s must be at least 1"):format(pool._name_max or "pool.max")) end
  if not pool._name_min and pool.min > pool.max then pool.min = pool.max end -- the default min follows max
  if pool.min > pool.max then
    return invalid(("%s (%d) is greater than %s (%d)"):format(pool._name_min or "pool.min", pool.min,
      pool._name_max or "the default pool max", pool.max))
  end
  for _, o in ipairs(POOL_VARS) do pool["_name_" .. o.key] = nil end
  for _, k in ipairs(PASS_THROUGH) do
    if pool_over[k] ~= nil then pool[k] = pool_over[k] end
  end
  if overrides.logger ~= nil then pool.logger = overrides.logger end

  ---@class coderunner.Config
  ---@field conninfo string            for the core; may hold a password: never print it
  ---@field conninfo_redacted string   the same with passwords replaced by ***
  ---@field source string              "url", "DATABASE_URL", "DB_*" or "PG*"
  ---@field pool coderunner.pg.PoolOptions
  ---@field slow_query_ms number
  ---@field logger? function
  local cfg = {
    conninfo = conninfo,
    conninfo_redacted = pg.redact(conninfo),
    source = source,
    pool = pool,
    slow_query_ms = pool.slow_query_ms,
    logger = overrides.logger,
  }
  return cfg
end

return config
