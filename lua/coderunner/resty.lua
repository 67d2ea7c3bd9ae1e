-- coderunner.resty: the DatabaseService from OpenResty handlers, without
-- blocking nginx's event loop.
--
--   local resty = require "coderunner.resty"
--   local user, err = resty.call("create_user", email, hash, "pro")
--
-- libpq blocks, so each call runs in nginx's worker-thread pool
-- (`ngx.run_worker_thread`, which needs a `thread_pool` directive): the handler's
-- coroutine yields, the event loop keeps serving other requests, and the result
-- comes back as plain values. In the thread, coderunner.resty.worker runs the
-- method on a DatabaseService whose pool is the process-wide pool named
-- `pool_name`: every worker-thread VM of an nginx worker shares its connections.
--
-- Calls wait, they do not fail, when everything is busy: at most `max_inflight`
-- calls per nginx worker hold a worker-thread VM at once (the others wait on a
-- semaphore in the event loop, up to `wait_timeout`); in the thread, a call
-- waits up to the pool's acquire_timeout for a connection.
--
-- Outside nginx (a plain Lua script, a busted spec) and inside a worker-thread
-- VM, blocking is fine and calls run directly. In nginx's main VM, in a phase
-- that cannot wait for a thread (init, init_worker, set, header/body filter,
-- log, balancer), a call returns nil, err (kind "invalid_input") instead of
-- blocking the event loop.
local resty = {}

local WORKER = "coderunner.resty.worker"

-- Phases of the main VM where ngx.run_worker_thread may yield.
local THREAD_PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

---@class coderunner.resty.Settings
---@field thread_pool string       nginx `thread_pool` to run calls in (default "coderunner")
---@field pool_name string         name of the process-wide pool (default "coderunner")
---@field url? string              conninfo or postgres:// URL; else the environment (DATABASE_URL, DB_*, PG*)
---@field pool? table              pool options: min, max, idle_timeout, acquire_timeout, ... (plain values)
---@field max_inflight integer     calls per nginx worker holding a worker-thread VM at once (default 32);
---                                keep it <= lua_worker_thread_vm_pool_size (nginx's default: 100)
---@field wait_timeout number      seconds a call waits for a free slot before failing (default 10)
local settings = {
  thread_pool = "coderunner",
  pool_name = "coderunner",
  max_inflight = 32,
  wait_timeout = 10,
}

-- What crosses to the worker thread with each call (plain values only).
local worker_settings

local semaphore -- per nginx worker, made on first call

--- The error objects of coderunner.resty: plain tables (they crossed from the
--- worker thread) with `kind`, `message`, and for server errors `sqlstate` and
--- the other fields of the core's error object.
---@class coderunner.resty.Error
---@field kind string
---@field message string
---@field sqlstate? string
local Error = {}
Error.__index = Error
Error.__tostring = function(e)
  return ("%s%s"):format(e.message or "?", e.kind and (" (" .. e.kind .. ")") or "")
end
resty.Error = Error

local function new_error(kind, message)
  return setmetatable({ kind = kind, message = message }, Error)
end

local function copy_plain(t)
  local out = {}
  for k, v in pairs(t) do
    if type(v) == "table" then v = copy_plain(v) end
    out[k] = v
  end
  return out
end

---@class coderunner.resty.Options
---@field thread_pool? string
---@field pool_name? string
---@field url? string
---@field pool? table
---@field max_inflight? integer
---@field wait_timeout? number

--- Sets where calls run and which pool they use; call it from init_by_lua (or
--- before the first call). Keys left out keep their current values.
---@param opts coderunner.resty.Options
---@return coderunner.resty.Settings
function resty.configure(opts)
  if type(opts) ~= "table" then error("coderunner.resty.configure: opts must be a table", 2) end
  for _, k in ipairs { "thread_pool", "pool_name", "url" } do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then
      error(("coderunner.resty.configure: %s must be a string"):format(k), 2)
    end
  end
  for _, k in ipairs { "max_inflight", "wait_timeout" } do
    if opts[k] ~= nil and not (type(opts[k]) == "number" and opts[k] > 0) then
      error(("coderunner.resty.configure: %s must be a positive number"):format(k), 2)
    end
  end
  if opts.pool ~= nil then
    if type(opts.pool) ~= "table" then error("coderunner.resty.configure: pool must be a table", 2) end
    for k, v in pairs(opts.pool) do
      local t = type(v)
      if t ~= "number" and t ~= "string" and t ~= "boolean" then
        error(("coderunner.resty.configure: pool.%s must be a plain value (functions do not cross to "
          .. "worker threads)"):format(tostring(k)), 2)
      end
    end
  end
  for k, v in pairs(opts) do
    if settings[k] == nil and k ~= "url" and k ~= "pool" then
      error(("coderunner.resty.configure: unknown option %q"):format(tostring(k)), 2)
    end
    settings[k] = type(v) == "table" and copy_plain(v) or v
  end
  worker_settings = nil
  semaphore = nil
  return settings
end

local function current_worker_settings()
  if not worker_settings then
    worker_settings = { pool_name = settings.pool_name, url = settings.url, pool = settings.pool }
  end
  return worker_settings
end

-- Where this call runs: "direct" (blocking is fine here), "thread" (nginx's
-- main VM, in a phase that can wait for a worker thread), or nil, why not.
local function placement()
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" then return "direct" end             -- plain Lua
  if ngx.run_worker_thread == nil then
    -- a worker-thread VM has ngx but neither sleep nor sockets; the main VM has both
    if ngx.sleep == nil and ngx.socket == nil then return "direct" end
    return nil, "this nginx has no ngx.run_worker_thread (the http lua module built with threads is needed); "
      .. "coderunner.resty will not block the event loop"
  end
  local phase = ngx.get_phase()
  if not THREAD_PHASES[phase] then
    return nil, ("coderunner.resty cannot run in the %s phase: a database call there would block "
      .. "nginx's event loop (call it from rewrite, access, content or a timer)"):format(tostring(phase))
  end
  return "thread"
end

--- Where calls made here would run: "direct", "thread", or nil and why they
--- would be refused.
---@return string|nil where
---@return string|nil why
function resty.placement() return placement() end

local unpack = table.unpack or unpack -- luacheck: ignore 113

local function pack(...) return select("#", ...), { ... } end

local function get_semaphore()
  if not semaphore then
    local ok, sem_mod = pcall(require, "ngx.semaphore")
    if not ok then return nil end
    semaphore = sem_mod.new(settings.max_inflight)
  end
  return semaphore
end

-- The results of a call as the caller gets them: nil, err gets its error
-- metatable back (it crossed as a plain table).
local function finish(n, out)
  if out[1] == nil and type(out[2]) == "table" and out[2].kind ~= nil and getmetatable(out[2]) == nil then
    setmetatable(out[2], Error)
  end
  return unpack(out, 1, n)
end

-- Runs worker[fn](settings, ...) in a worker thread; yields until it is done.
local function in_thread(fn, ...)
  local ngx = rawget(_G, "ngx")
  local sem = get_semaphore()
  local deadline = ngx.now() + settings.wait_timeout
  if sem then
    local ok, err = sem:wait(settings.wait_timeout)
    if not ok then
      if err == "timeout" then
        return nil, new_error("pool_timeout", ("no worker thread free within %g s (%d calls in flight)"):format(
          settings.wait_timeout, settings.max_inflight))
      end
      error("coderunner.resty: " .. tostring(err), 0)
    end
  end
  local delay = 0.001
  while true do
    local n, res = pack(pcall(ngx.run_worker_thread, settings.thread_pool, WORKER, fn,
      current_worker_settings(), ...))
    -- nginx refuses at once when every worker-thread VM is taken (more calls
    -- than lua_worker_thread_vm_pool_size): wait for one, as in the pool's queue
    local busy = res[1] and res[2] == false and res[3] == "no available Lua vm"
    if busy and ngx.now() < deadline then
      ngx.sleep(delay)
      delay = math.min(delay * 2, 0.05)
    else
      if sem then sem:post(1) end
      if not res[1] then error(res[2], 0) end -- run_worker_thread raised: misuse
      if busy then
        return nil, new_error("pool_timeout", ("no worker-thread Lua VM free within %g s"):format(
          settings.wait_timeout))
      end
      -- false, message: the worker function raised (a programmer error) or the
      -- thread pool is not configured: raise it here, as a direct call would
      if res[2] == false then error("coderunner.resty: " .. tostring(res[3]), 0) end
      return finish(pack(unpack(res, 3, n)))
    end
  end
end

local function dispatch(fn, ...)
  local where, why = placement()
  if not where then return nil, new_error("invalid_input", why) end
  if where == "direct" then
    local worker = require(WORKER)
    return finish(pack(worker[fn](current_worker_settings(), ...)))
  end
  return in_thread(fn, ...)
end

--- Runs a DatabaseService method (`create_user`, `get_projects_by_user_id`,
--- `update_deployment_status`, `health`, `query`, ...) in a worker thread and
--- returns its results as plain values: tables, strings, numbers, booleans,
--- nil, ngx.null; an error as a coderunner.resty.Error.
---@param method string
---@param ... any  plain values only (tables, strings, numbers, booleans, nil, ngx.null)
---@return any ...
function resty.call(method, ...)
  if type(method) ~= "string" then error("coderunner.resty.call: method must be a string", 2) end
  return dispatch("call", method, ...)
end

--- Runs `require(module)[fn](service, ...)` in a worker thread: for work that
--- needs more than one call (a transaction over several operations).
---@param module string  a module on lua_package_path
---@param fn string      a function of that module
---@param ... any        plain values only
---@return any ...
function resty.run(module, fn, ...)
  if type(module) ~= "string" or type(fn) ~= "string" then
    error("coderunner.resty.run: module and fn must be strings", 2)
  end
  return dispatch("run", module, fn, ...)
end

--- Starts `n` worker-thread VMs (default max_inflight) and loads the
--- DatabaseService in each, so that a burst of calls later finds them ready:
--- nginx makes a worker-thread VM in its event loop the first time one is
--- needed, which would otherwise happen under load. Call it from
--- init_worker_by_lua; it returns at once (the work runs in timers).
---@param n? integer
---@return boolean ok
---@return string|nil err
function resty.warm_up(n)
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or not ngx.timer or not ngx.run_worker_thread then
    return false, "coderunner.resty.warm_up: needs nginx with ngx.run_worker_thread"
  end
  n = n or settings.max_inflight
  local function warm(premature)
    if premature then return end
    local ok, err = in_thread("warm")
    if ok == nil and err then ngx.log(ngx.WARN, "coderunner.resty.warm_up: ", tostring(err)) end
  end
  for _ = 1, n do
    local ok, err = ngx.timer.at(0, warm)
    if not ok then return false, err end
  end
  return true
end

--- The current settings (a copy).
---@return coderunner.resty.Settings
function resty.settings() return copy_plain(settings) end

return resty
