-- The DatabaseService: the CodeRunner operations over one connection pool.
--
--   local db = require "coderunner.db"
--   local svc = assert(db.instance())          -- process-wide, from the environment
--   local user = assert(svc:create_user("ada@example.com", hash, "pro"))
--
-- A thin layer: configuration (coderunner.config), the pool (coderunner.pg), and
-- the repositories (coderunner.users, .projects, .deployments, .stats), whose
-- functions take an executor first and hold all the SQL. The service binds them
-- to its pool; a transaction object binds the same functions to a transaction.
-- Callers that hold their own executor require the repositories directly.
local pg = require "coderunner.pg"
local config = require "coderunner.config"
local users = require "coderunner.users"
local projects = require "coderunner.projects"
local deployments = require "coderunner.deployments"
local stats = require "coderunner.stats"

local db = {}

--- The domain operations, shared by the service (bound to the pool) and by
--- transaction objects (bound to a transaction): `self.executor` runs the SQL.
---@class coderunner.Operations
---@field executor coderunner.pg.Executor
local Operations = {}
Operations.__index = Operations

--- Runs one SQL statement on this object's executor ($1..$n parameters).
---@param sql string
---@param ... coderunner.pg.Param
---@return coderunner.pg.Result|nil res
---@return coderunner.pg.Error|nil err
function Operations:query(sql, ...) return self.executor:query(sql, ...) end

-- users ------------------------------------------------------------------------

--- Creates a user; plan_type defaults to "free".
---@param email string
---@param password_hash string
---@param plan_type? coderunner.PlanType
---@return coderunner.User|nil user
---@return coderunner.pg.Error|nil err  invalid_input, conflict (email taken), connect, ...
function Operations:create_user(email, password_hash, plan_type)
  return users.create(self.executor, email, password_hash, plan_type)
end

---@param id string
---@return coderunner.User|nil user  nil when there is no such user
---@return coderunner.pg.Error|nil err
function Operations:get_user_by_id(id) return users.get_by_id(self.executor, id) end

---@param email string
---@return coderunner.User|nil user  nil when there is no such user
---@return coderunner.pg.Error|nil err
function Operations:get_user_by_email(email) return users.get_by_email(self.executor, email) end

--- Updates email, password_hash and/or plan_type.
---@param id string
---@param updates coderunner.UserUpdates
---@return coderunner.User|nil user  nil when there is no such user
---@return coderunner.pg.Error|nil err  invalid_input, conflict
function Operations:update_user(id, updates) return users.update(self.executor, id, updates) end

--- Deletes the user with their projects and deployments.
---@param id string
---@return boolean|nil deleted  false when there was no such user
---@return coderunner.pg.Error|nil err
function Operations:delete_user(id) return users.delete(self.executor, id) end

--- A page of users, newest first.
---@param limit? integer   1..1000, default 50
---@param offset? integer  >= 0, default 0
---@return coderunner.User[]|nil users
---@return coderunner.pg.Error|nil err
function Operations:get_users(limit, offset) return users.list(self.executor, limit, offset) end

-- projects ---------------------------------------------------------------------

---@param user_id string
---@param name string
---@param description? string
---@return coderunner.Project|nil project
---@return coderunner.pg.Error|nil err  invalid_input (also: no such user), connect, ...
function Operations:create_project(user_id, name, description)
  return projects.create(self.executor, user_id, name, description)
end

---@param id string
---@return coderunner.Project|nil project  nil when there is no such project
---@return coderunner.pg.Error|nil err
function Operations:get_project_by_id(id) return projects.get_by_id(self.executor, id) end

--- A page of the user's projects, newest first.
---@param user_id string
---@param limit? integer
---@param offset? integer
---@return coderunner.Project[]|nil projects
---@return coderunner.pg.Error|nil err
function Operations:get_projects_by_user_id(user_id, limit, offset)
  return projects.list_by_user(self.executor, user_id, limit, offset)
end

--- Updates name and/or description (pg.null clears the description).
---@param id string
---@param updates coderunner.ProjectUpdates
---@return coderunner.Project|nil project  nil when there is no such project
---@return coderunner.pg.Error|nil err
function Operations:update_project(id, updates) return projects.update(self.executor, id, updates) end

--- Deletes the project with its deployments.
---@param id string
---@return boolean|nil deleted  false when there was no such project
---@return coderunner.pg.Error|nil err
function Operations:delete_project(id) return projects.delete(self.executor, id) end

--- The project with its owner as `user` (no password_hash).
---@param id string
---@return coderunner.ProjectWithUser|nil project
---@return coderunner.pg.Error|nil err
function Operations:get_project_with_user(id) return projects.get_with_user(self.executor, id) end

-- deployments ------------------------------------------------------------------

---@param project_id string
---@param data coderunner.DeploymentData
---@return coderunner.Deployment|nil deployment
---@return coderunner.pg.Error|nil err  invalid_input (also: no such project), connect, ...
function Operations:create_deployment(project_id, data)
  return deployments.create(self.executor, project_id, data)
end

---@param id string
---@return coderunner.Deployment|nil deployment
---@return coderunner.pg.Error|nil err
function Operations:get_deployment_by_id(id) return deployments.get_by_id(self.executor, id) end

--- A page of the project's deployments, newest first.
---@param project_id string
---@param limit? integer
---@param offset? integer
---@return coderunner.Deployment[]|nil deployments
---@return coderunner.pg.Error|nil err
function Operations:get_deployments_by_project_id(project_id, limit, offset)
  return deployments.list_by_project(self.executor, project_id, limit, offset)
end

--- Moves the deployment to `status` when the status machine allows it (checked
--- atomically by the UPDATE); the status it already has succeeds unchanged.
---@param id string
---@param status coderunner.DeploymentStatus
---@return coderunner.Deployment|nil deployment  nil when there is no such deployment
---@return coderunner.pg.Error|nil err  invalid_input, invalid_transition
function Operations:update_deployment_status(id, status)
  return deployments.update_status(self.executor, id, status)
end

--- Updates the deployment's other fields (not status).
---@param id string
---@param updates coderunner.DeploymentUpdates
---@return coderunner.Deployment|nil deployment
---@return coderunner.pg.Error|nil err
function Operations:update_deployment(id, updates) return deployments.update(self.executor, id, updates) end

---@param id string
---@return boolean|nil deleted  false when there was no such deployment
---@return coderunner.pg.Error|nil err
function Operations:delete_deployment(id) return deployments.delete(self.executor, id) end

--- The deployment with `project` and `user` (no password_hash) nested.
---@param id string
---@return coderunner.DeploymentWithDetails|nil deployment
---@return coderunner.pg.Error|nil err
function Operations:get_deployment_with_details(id) return deployments.get_with_details(self.executor, id) end

--- A page of the deployments in one status, newest first.
---@param status coderunner.DeploymentStatus
---@param limit? integer
---@param offset? integer
---@return coderunner.Deployment[]|nil deployments
---@return coderunner.pg.Error|nil err
function Operations:get_deployments_by_status(status, limit, offset)
  return deployments.list_by_status(self.executor, status, limit, offset)
end

---@param user_id string
---@return integer|nil count
---@return coderunner.pg.Error|nil err
function Operations:get_running_deployment_count_by_user(user_id)
  return deployments.running_count_by_user(self.executor, user_id)
end

-- transactions -----------------------------------------------------------------

--- Every domain method bound to one transaction, plus query, commit, rollback.
---@class coderunner.Transaction: coderunner.Operations
---@field tx coderunner.pg.Tx
local Transaction = setmetatable({}, { __index = Operations })
Transaction.__index = Transaction

local function bind(tx)
  return setmetatable({ executor = tx, tx = tx }, Transaction)
end

---@return true|nil ok
---@return coderunner.pg.Error|nil err
function Transaction:commit() return self.tx:commit() end

---@return true|nil ok
---@return coderunner.pg.Error|nil err
function Transaction:rollback() return self.tx:rollback() end

--- "active", "committed" or "rolled_back".
---@return string
function Transaction:status() return self.tx:status() end

--- Runs fn(ops) inside a nested transaction (a SAVEPOINT).
---@param fn fun(ops: coderunner.Transaction): ...
---@return any ...
function Transaction:execute_in_transaction(fn)
  return self.tx:transaction(function(tx) return fn(bind(tx)) end)
end

function Transaction.__tostring(self)
  return "coderunner.db.Transaction (" .. tostring(self.tx:status()) .. ")"
end

-- the service ------------------------------------------------------------------

---@class coderunner.DatabaseService: coderunner.Operations
---@field pool coderunner.pg.Pool
---@field conninfo_redacted string
---@field settings coderunner.pg.PoolOptions  the pool options (without conninfo)
local Service = setmetatable({}, { __index = Operations })
Service.__index = Service

---@class coderunner.DbConfig
---@field url? string                       conninfo or postgres:// URL; else the environment
---@field pool? coderunner.pg.PoolOptions    min, max, idle_timeout, connect_timeout, ...
---@field slow_query_ms? number
---@field logger? fun(level: string, message: string, info: table)

local function default_logger(level, message)
  io.stderr:write(("[coderunner.db] %s: %s\n"):format(level, message))
end

--- Creates a service with its own pool. Starts even when the database is
--- down (operations then return nil, err with kind "connect" until it is back).
---@param cfg? coderunner.DbConfig
---@return coderunner.DatabaseService|nil service
---@return coderunner.pg.Error|nil err  invalid_input for a bad configuration
function db.new(cfg)
  local resolved, err = config.resolve(cfg)
  if not resolved then return nil, err end
  local logger = resolved.logger or default_logger
  local opts = {}
  for k, v in pairs(resolved.pool) do opts[k] = v end
  opts.conninfo = resolved.conninfo
  -- slow statements go to the logger as the core reports them (SQL only, never parameters)
  opts.logger = logger
  local pool
  pool, err = pg.pool(opts)
  if not pool then return nil, err end
  opts.conninfo = nil
  return setmetatable({ executor = pool, pool = pool, conninfo_redacted = resolved.conninfo_redacted,
    source = resolved.source, settings = opts, logger = logger, closed = false }, Service)
end

local instance

--- The process-wide service, created from the environment on first use (and
--- again after it was closed).
---@return coderunner.DatabaseService|nil service
---@return coderunner.pg.Error|nil err  invalid_input for a bad environment
function db.instance()
  if instance == nil or instance.closed then
    local svc, err = db.new()
    if not svc then return nil, err end
    instance = svc
  end
  return instance
end

--- Runs fn(ops) in a transaction, ops having every domain method bound to it.
--- Rolls back when fn raises (re-raised) or returns nil, err (returned);
--- commits otherwise and returns what fn returned (true when nothing).
---@param fn fun(ops: coderunner.Transaction): ...
---@param opts? coderunner.pg.TxOptions
---@return any ...
function Service:execute_in_transaction(fn, opts)
  return self.pool:transaction(function(tx) return fn(bind(tx)) end, opts)
end

--- Legacy alias of execute_in_transaction.
---@param fn fun(ops: coderunner.Transaction): ...
---@param opts? coderunner.pg.TxOptions
---@return any ...
function Service:transaction(fn, opts) return self:execute_in_transaction(fn, opts) end

--- Starts a manual transaction; finish it with commit_transaction or
--- rollback_transaction (or its own commit/rollback).
---@param opts? coderunner.pg.TxOptions
---@return coderunner.Transaction|nil tx
---@return coderunner.pg.Error|nil err
function Service:begin_transaction(opts)
  local tx, err = self.pool:begin(opts)
  if not tx then return nil, err end
  return bind(tx)
end

---@param tx coderunner.Transaction|coderunner.pg.Tx
---@return true|nil ok
---@return coderunner.pg.Error|nil err
function Service:commit_transaction(tx) return (tx.tx or tx):commit() end -- luacheck: ignore 212

---@param tx coderunner.Transaction|coderunner.pg.Tx
---@return true|nil ok
---@return coderunner.pg.Error|nil err
function Service:rollback_transaction(tx) return (tx.tx or tx):rollback() end -- luacheck: ignore 212

-- health and statistics --------------------------------------------------------

---@class coderunner.Health
---@field status "healthy"|"unhealthy"
---@field latency_ms? number     one round trip (including taking a pool connection), in ms
---@field server_version? string
---@field database? string
---@field pool coderunner.pg.PoolStats
---@field error? string          why it is unhealthy (no secrets)
---@field error_kind? string

--- Checks the database with one round trip, timed on the client's monotonic clock.
---@return coderunner.Health
function Service:health()
  local started = pg.monotonic()
  local server, err = stats.server(self.pool)
  local elapsed_ms = (pg.monotonic() - started) * 1000
  if not server then
    return { status = "unhealthy", error = tostring(err), error_kind = err and err.kind, pool = self.pool:stats() }
  end
  return { status = "healthy", latency_ms = math.floor(elapsed_ms * 1000 + 0.5) / 1000,
    server_version = server.server_version, database = server.database, pool = self.pool:stats() }
end

---@class coderunner.SystemStats: coderunner.Counts
---@field pool coderunner.pg.PoolStats
---@field slow_queries integer

--- Counts users by plan, projects, deployments by status, the database size and
--- the pool's figures, from one consistent snapshot.
---@return coderunner.SystemStats|nil stats
---@return coderunner.pg.Error|nil err
function Service:get_system_stats()
  local counts, err = self.pool:transaction(stats.counts, { isolation = "repeatable read", read_only = true })
  if not counts then return nil, err end
  counts.pool = self.pool:stats()
  counts.slow_queries = counts.pool.slow_queries
  return counts
end

-- shutdown ---------------------------------------------------------------------

--- Closes the pool: idle connections at once, busy ones when released, waiting
--- up to `timeout` seconds (default 5). Idempotent. Returns true when every
--- connection is closed.
---@param timeout? number
---@return boolean
function Service:close(timeout)
  self.closed = true
  if instance == self then instance = nil end
  return self.pool:close(timeout or 5)
end

---@return boolean
function Service:is_closed() return self.closed or self.pool:is_closed() end

function Service.__tostring(self)
  return ("coderunner.db.Service (%s%s)"):format(self.conninfo_redacted ~= "" and self.conninfo_redacted
    or "PG* environment", self.closed and ", closed" or "")
end

--- coderunner.db's domain methods bound to any executor (a pool, a connection,
--- a transaction, or coderunner.testing's per-test executor).
---@param executor coderunner.pg.Executor
---@return coderunner.Transaction
function db.bind(executor) return bind(executor) end

return db
