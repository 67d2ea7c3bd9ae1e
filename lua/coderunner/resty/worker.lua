-- The worker-thread side of coderunner.resty. nginx runs these functions in a
-- Lua VM of its own inside a thread of a `thread_pool`, where blocking on libpq
-- is fine:
--
--   ngx.run_worker_thread(thread_pool, "coderunner.resty.worker", "call", settings, method, ...)
--
-- Each worker-thread VM loads this module afresh and keeps one DatabaseService
-- per pool name. Their pools are the one process-wide pool of that name
-- (`pg.pool{ name = ... }`), so every VM of an nginx worker shares one
-- connection budget. Only plain values cross back to the caller's VM: tables,
-- strings, numbers, booleans, nil and pg.null (a light userdata); error
-- objects become plain tables.
local worker = {}

-- nginx requires this module in its event loop (then calls a function in the
-- thread): the heavy modules load on the first call, in the thread, so a new
-- worker-thread VM costs the event loop next to nothing.
local pg, db

local function load()
  if db then return end
  pg = require "coderunner.pg"
  db = require "coderunner.db"
end

-- The services of this VM, by pool name.
local services = {}

-- Fields of an error object that cross as they are.
local ERROR_FIELDS = { "kind", "message", "sqlstate", "severity", "detail", "hint", "constraint", "table",
  "column", "position" }

--- An error object as a plain table (no metatable: it must cross VMs).
---@param err any
---@return table
function worker.plain_error(err)
  local out = {}
  if type(err) == "table" then
    for _, k in ipairs(ERROR_FIELDS) do
      local v = err[k]
      if type(v) == "string" or type(v) == "number" then out[k] = v end
    end
  end
  out.kind = out.kind or "server"
  out.message = out.message or tostring(err)
  return out
end

-- The DatabaseService bound to the process-wide pool `settings.pool_name`,
-- made on first use in this VM (and again if that pool was closed).
local function service(settings)
  local name = settings.pool_name
  local svc = services[name]
  if svc and not svc:is_closed() then return svc end
  local pool_opts = {}
  for k, v in pairs(settings.pool or {}) do pool_opts[k] = v end
  pool_opts.name = name
  local err
  svc, err = db.new { url = settings.url, pool = pool_opts }
  if not svc then return nil, err end
  services[name] = svc
  return svc
end

-- Values returned from a call, made safe to cross: error objects become plain
-- tables; anything else crosses as it is (nginx copies tables recursively,
-- dropping metatables; pg.null is the light userdata NULL, which crosses).
local function crossing(...)
  local n, out = select("#", ...), { ... }
  for i = 1, n do
    if pg.is_error(out[i]) then out[i] = worker.plain_error(out[i]) end
  end
  return (table.unpack or unpack)(out, 1, n) -- luacheck: ignore 113
end

local function check_settings(settings)
  load()
  if type(settings) ~= "table" or type(settings.pool_name) ~= "string" then
    error("coderunner.resty.worker: settings must be a table with pool_name", 3)
  end
end

--- Runs one DatabaseService method (or `query`, the core's statement on the
--- pool) and returns its results as plain values.
---@param settings {pool_name: string, url?: string, pool?: table}
---@param method string
---@param ... any  the method's arguments
---@return any ...
function worker.call(settings, method, ...)
  check_settings(settings)
  if type(method) ~= "string" or method:sub(1, 1) == "_" then
    error("coderunner.resty: method must be the name of a DatabaseService method", 2)
  end
  local svc, err = service(settings)
  if not svc then return nil, worker.plain_error(err) end
  local fn = svc[method]
  if type(fn) ~= "function" then
    error(("coderunner.resty: no DatabaseService method %q"):format(method), 2)
  end
  return crossing(fn(svc, ...))
end

--- Runs `require(module)[fn](svc, ...)` with the service of the pool: for work
--- that does not fit one method call (a transaction over several operations).
---@param settings {pool_name: string, url?: string, pool?: table}
---@param module string
---@param fn string
---@param ... any
---@return any ...
function worker.run(settings, module, fn, ...)
  check_settings(settings)
  local f = require(module)[fn]
  if type(f) ~= "function" then error(("coderunner.resty: %s.%s is not a function"):format(module, fn), 2) end
  local svc, err = service(settings)
  if not svc then return nil, worker.plain_error(err) end
  return crossing(f(svc, ...))
end

--- Loads the modules and opens the service in this VM (coderunner.resty.warm_up).
---@param settings {pool_name: string, url?: string, pool?: table}
---@return true|nil ok
---@return table|nil err
function worker.warm(settings)
  check_settings(settings)
  local svc, err = service(settings)
  if not svc then return nil, worker.plain_error(err) end
  return true
end

return worker
