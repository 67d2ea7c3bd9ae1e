-- A PostgreSQL database for busted suites: a fresh database per spec file (or
-- describe block) with the migrations applied once, a transaction per test that
-- is rolled back afterwards, a savepoint around every statement so that a
-- failing one does not poison the rest of the test, and factories for users,
-- projects and deployments. Set up in a spec file with:
--
--   local testing = require "coderunner.testing"
--   local t = testing.use()
--
-- Where the server comes from: opts.url, else DATABASE_URL, else libpq's PG*
-- variables when any is set (PGHOST, PGPORT, ...), else a throwaway cluster that
-- this module creates (initdb + pg_ctl from the PostgreSQL installation, in a
-- temporary directory, reachable only through a Unix socket) on first use and
-- stops and removes when the Lua state closes (busted closes it on exit).
--
-- This module is for test suites only: it runs initdb and pg_ctl through
-- os.execute/io.popen, which nothing that OpenResty loads may do (inside nginx it
-- refuses to start a cluster and asks for DATABASE_URL). The rest of
-- coderunner never requires it.
local pg = require "coderunner.pg"
local db = require "coderunner.db"
local migrate = require "coderunner.migrate"
local users = require "coderunner.users"
local projects = require "coderunner.projects"
local deployments = require "coderunner.deployments"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local testing = {}

-- helpers ----------------------------------------------------------------------

local function pack(...) return { n = select("#", ...), ... } end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs a shell command; raises with its output when it fails.
local function run(cmd, what)
  local out = os.tmpname()
  local ok, _, code = os.execute(cmd .. " >" .. out .. " 2>&1")
  local f = io.open(out)
  local text = f and f:read("*a") or ""
  if f then f:close() end
  os.remove(out)
  -- Lua 5.1/LuaJIT's os.execute returns the status number; 5.4 returns true|nil, "exit", code
  if ok == true or ok == 0 then return text end
  error(("coderunner.testing: %s failed (%s):\n%s"):format(what, tostring(code or ok), text), 0)
end

--- A hex string of n random bytes (names that do not collide across processes).
local function random_hex(n)
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(n)
  if f then f:close() end
  if not bytes or #bytes < n then
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
    local t = {}
    for i = 1, n do t[i] = string.char(math.random(0, 255)) end
    bytes = table.concat(t)
  end
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local PG_VARS = { "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE" }

--- True when the environment names a server (DATABASE_URL or a PG* variable).
---@return boolean
function testing.server_in_environment()
  if (os.getenv("DATABASE_URL") or "") ~= "" then return true end
  for _, v in ipairs(PG_VARS) do
    if (os.getenv(v) or "") ~= "" then return true end
  end
  return false
end

-- the throwaway cluster ---------------------------------------------------------

-- Kept in the registry, not in this module: busted reloads modules for each spec
-- file, and one cluster serves the whole run.
local REGISTRY_KEY = "coderunner.testing.cluster"

local function pg_bindir()
  local p = io.popen("pg_config --bindir 2>/dev/null")
  local dir = p and p:read("*l")
  if p then p:close() end
  if dir and io.open(dir .. "/initdb") then return dir end
  p = io.popen("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1")
  dir = p and p:read("*l")
  if p then p:close() end
  if dir and io.open(dir .. "/initdb") then return dir end
  error("coderunner.testing: no server named (DATABASE_URL, PG*) and no initdb found to start one: "
    .. "install postgresql, or set DATABASE_URL", 0)
end

local function stop_cluster(c)
  if c.stopped then return end
  c.stopped = true
  os.execute(c.as .. shell_quote(c.bindir .. "/pg_ctl") .. " -D " .. shell_quote(c.dir .. "/data")
    .. " -m immediate -s stop >/dev/null 2>&1")
  os.execute("rm -rf " .. shell_quote(c.dir))
end

--- A finalizer that runs when the Lua state closes (or the value is collected).
local function on_close(fn)
  if newproxy then -- luacheck: ignore 113 (Lua 5.1/LuaJIT: tables have no __gc)
    local proxy = newproxy(true) -- luacheck: ignore 113
    getmetatable(proxy).__gc = fn
    return proxy
  end
  return setmetatable({}, { __gc = fn })
end

--- Starts (once per process) a cluster in a temporary directory and returns
--- a conninfo for its "postgres" database.
local function cluster_conninfo()
  local reg = debug.getregistry()
  local c = reg[REGISTRY_KEY]
  if c and not c.stopped then return c.conninfo end
  -- the one place this module forks (initdb, pg_ctl): never inside nginx
  if rawget(_G, "ngx") then
    error("coderunner.testing: a throwaway cluster needs initdb and pg_ctl, which an OpenResty "
      .. "worker must not fork: set DATABASE_URL", 0)
  end
  local bindir = pg_bindir()
  local dir = run("mktemp -d -t coderunner-testing.XXXXXX", "mktemp"):gsub("%s+$", "")
  c = { dir = dir, bindir = bindir, as = "" }
  local p = io.popen("id -u")
  local uid = p and p:read("*l")
  if p then p:close() end
  if uid == "0" then -- the server refuses to run as root: run it as postgres
    run("chown postgres " .. shell_quote(dir), "chown of " .. dir)
    c.as = "runuser -u postgres -- "
  end
  local port = 20000 + tonumber(random_hex(2), 16) % 40000
  reg[REGISTRY_KEY] = c
  c.guard = on_close(function() stop_cluster(c) end)
  run(c.as .. shell_quote(bindir .. "/initdb") .. " -D " .. shell_quote(dir .. "/data")
    .. " -U postgres -A trust -E UTF8 --locale=C --no-sync", "initdb")
  run(c.as .. shell_quote(bindir .. "/pg_ctl") .. " -D " .. shell_quote(dir .. "/data") .. " -w -s -l "
    .. shell_quote(dir .. "/server.log") .. " -o " .. shell_quote(("-c listen_addresses='' -p %d "
    .. "-c unix_socket_directories='%s' -c fsync=off -c full_page_writes=off"):format(port, dir))
    .. " start", "starting the throwaway cluster (log: " .. dir .. "/server.log)")
  c.conninfo = assert(pg.conninfo_with("", { host = dir, port = port, user = "postgres", dbname = "postgres" }))
  return c.conninfo
end

--- Stops and removes the throwaway cluster now, if this process started one
--- (it is otherwise stopped when the Lua state closes).
function testing.stop_cluster()
  local c = debug.getregistry()[REGISTRY_KEY]
  if c then stop_cluster(c) end
end

--- The conninfo of the throwaway cluster this process started, or nil.
---@return string|nil
function testing.cluster_conninfo()
  local c = debug.getregistry()[REGISTRY_KEY]
  return c and not c.stopped and c.conninfo or nil
end

-- the per-test executor ---------------------------------------------------------

--- What a test hands to code under test: a pool-like executor whose every
--- statement runs in a SAVEPOINT of the test's transaction, so a statement that
--- fails (a constraint violation the test expects) leaves the transaction usable.
---@class coderunner.testing.Executor
---@field suite coderunner.testing.Suite
local Executor = {}
Executor.__index = Executor

local function current(suite)
  local tx = suite.stack[#suite.stack]
  if not tx then error("coderunner.testing: no test is running (use the executor inside it())", 3) end
  return tx
end

local function in_savepoint(suite, method, ...)
  local args = pack(...)
  return current(suite):transaction(function(sp)
    return sp[method](sp, unpack(args, 1, args.n))
  end)
end

--- Runs one statement in a savepoint of the test's transaction.
---@param sql string
---@return coderunner.pg.Result|nil res
---@return coderunner.pg.Error|nil err
function Executor:query(sql, ...) return in_savepoint(self.suite, "query", sql, ...) end

--- Runs a script (several statements, no parameters) in a savepoint.
---@param sql string
---@return coderunner.pg.Result|nil res
---@return coderunner.pg.Error|nil err
function Executor:exec(sql) return in_savepoint(self.suite, "exec", sql) end

--- Runs fn(tx) in a nested transaction (a savepoint) of the test's transaction.
---@param fn fun(tx: coderunner.pg.Tx): ...
---@param opts? table
---@return any ...
function Executor:transaction(fn, opts) return current(self.suite):transaction(fn, opts) end

--- Starts a nested transaction (a savepoint) of the test's transaction.
---@return coderunner.pg.Tx|nil tx
---@return coderunner.pg.Error|nil err
function Executor:begin(opts) return current(self.suite):begin(opts) end

--- "active" while the test runs.
---@return string
function Executor:status() return current(self.suite):status() end

--- Raises: the test's transaction is coderunner.testing's to end (rollback
--- raises the same way).
function Executor.commit() error("coderunner.testing: the test's transaction is rolled back after the test; "
  .. "use transaction(fn) for a nested one", 2) end
Executor.rollback = Executor.commit

function Executor.__tostring() return "coderunner.testing.Executor" end

-- the suite -------------------------------------------------------------------

---@class coderunner.testing.Options
---@field url? string            server to create the database on (default: DATABASE_URL, PG*, else a throwaway cluster)
---@field migrations? string|false  directory of NNN_name.sql files (default: coderunner-db's own, where
---                                 coderunner.migrate finds them); false: none
---@field transaction? boolean   wrap each test in a transaction rolled back afterwards (default true)
---@field pool? coderunner.pg.PoolOptions  options of `suite.pool` (default max = 4)
---@field name_prefix? string    database name prefix (default "coderunner_test")

---@class coderunner.testing.Suite
---@field conninfo string        keyword conninfo of the suite's database (set in setup)
---@field database string        its name
---@field pool coderunner.pg.Pool  a pool on it (set in setup)
---@field tx? coderunner.pg.Tx    the running test's transaction (nil outside a test, or with transaction = false)
---@field exec coderunner.testing.Executor|coderunner.pg.Pool  for code under test: savepointed (the pool when
---                                                           transaction = false)
---@field db coderunner.Transaction  coderunner.db's domain methods (create_user, ...) bound to `exec`
---@field factory coderunner.testing.Factory
local Suite = {}
Suite.__index = Suite

local function busted_api()
  local ok, busted = pcall(require, "busted")
  if not ok or type(busted) ~= "table" or not busted.before_each then
    error("coderunner.testing.use must be called from a busted spec file", 3)
  end
  return busted
end

local function admin_connect(base)
  local conn, err = pg.connect(base)
  if not conn then
    error("coderunner.testing: cannot connect to the test server (" .. pg.redact(base) .. "): "
      .. tostring(err), 0)
  end
  return conn
end

local function provision(self)
  local opts = self.opts
  local base = opts.url or os.getenv("DATABASE_URL")
  if not base or base == "" then
    base = testing.server_in_environment() and "" or cluster_conninfo()
  end
  self.base = base
  self.database = (opts.name_prefix or "coderunner_test") .. "_" .. random_hex(6)
  local conn = admin_connect(base)
  local ok, err = conn:query("CREATE DATABASE " .. conn:escape_identifier(self.database))
  conn:close()
  if not ok then error("coderunner.testing: CREATE DATABASE failed: " .. tostring(err), 0) end
  self.created = true
  self.conninfo = assert(pg.conninfo_with(base, { dbname = self.database }))

  if opts.migrations ~= false then
    local mconn = admin_connect(self.conninfo)
    local report
    report, err = migrate.up(mconn, { dir = opts.migrations, logger = function() end })
    mconn:close()
    if not report then error("coderunner.testing: migrations failed: " .. tostring(err), 0) end
  end

  local popts = { max = 4 }
  for k, v in pairs(opts.pool or {}) do popts[k] = v end
  popts.conninfo = self.conninfo
  self.pool, err = pg.pool(popts)
  if not self.pool then error("coderunner.testing: " .. tostring(err), 0) end
  if opts.transaction == false then
    self.exec = self.pool
    self.db = db.bind(self.pool)
  end
end

--- Creates the database, applies the migrations, opens the pool. Called by the
--- busted setup hook that `use` registers; callable by hand without busted.
--- Raises when any step fails, after dropping what it made.
---@return coderunner.testing.Suite
function Suite:start()
  local ok, err = pcall(provision, self)
  if not ok then
    pcall(self.finish, self)
    error(err, 0)
  end
  return self
end

--- Begins the test's transaction (the before_each hook).
function Suite:begin_test()
  if self.opts.transaction == false then return end
  local tx, err = self.pool:begin()
  if not tx then error("coderunner.testing: BEGIN failed: " .. tostring(err), 0) end
  self.tx = tx
  self.stack = { tx }
end

--- Rolls the test's transaction back (the after_each hook).
function Suite:end_test()
  local tx = self.tx
  self.tx, self.stack = nil, {}
  if tx and tx:status() == "active" then
    local ok, err = tx:rollback()
    if not ok then error("coderunner.testing: ROLLBACK failed: " .. tostring(err), 0) end
  end
end

--- Closes the pool and drops the database (the teardown hook).
function Suite:finish()
  if self.pool then self.pool:close(5) end
  self.pool = nil
  if self.created then
    self.created = false
    local conn = admin_connect(self.base)
    local ok, err = conn:query("DROP DATABASE IF EXISTS " .. conn:escape_identifier(self.database) .. " WITH (FORCE)")
    conn:close()
    if not ok then error("coderunner.testing: DROP DATABASE failed: " .. tostring(err), 0) end
  end
end

--- Runs one statement through `exec` (a savepoint inside the test's transaction).
---@param sql string
---@return coderunner.pg.Result|nil res
---@return coderunner.pg.Error|nil err
function Suite:query(sql, ...) return self.exec:query(sql, ...) end

--- Runs fn() in a savepoint and expects it to fail: fn raises, or returns nil,
--- err. Returns the error (an error object, or what fn raised); raises when fn
--- succeeded. Whatever fn wrote is rolled back; the test's transaction goes on.
---@param fn fun(): ...
---@return coderunner.pg.Error|any err
function Suite:expect_error(fn)
  local outer = current(self)
  local ok, err = outer:transaction(function(sp)
    self.stack[#self.stack + 1] = sp
    local results = pack(pcall(fn))
    table.remove(self.stack)
    if not results[1] then error(results[2], 0) end
    return unpack(results, 2, results.n)
  end)
  if ok == nil and err ~= nil then return err end
  error("coderunner.testing: expected an error, but the function succeeded", 2)
end

-- factories --------------------------------------------------------------------

---@class coderunner.testing.Factory
---@field suite coderunner.testing.Suite
local Factory = {}
Factory.__index = Factory

local function made(what, row, err)
  if not row then error(("coderunner.testing: factory %s failed: %s"):format(what, tostring(err)), 3) end
  return row
end

--- Creates a user with a unique email (override any column: email, password_hash, plan_type).
---@param attrs? {email?: string, password_hash?: string, plan_type?: coderunner.PlanType}
---@return coderunner.User
function Factory:user(attrs)
  attrs = attrs or {}
  local s = self.suite
  s.seq = s.seq + 1
  return made("user", users.create(s.exec, attrs.email or ("user%d-%s@example.com"):format(s.seq, random_hex(4)),
    attrs.password_hash or "$2b$12$coderunner.testing.factory.hash", attrs.plan_type))
end

--- Creates a project (and its user unless attrs.user_id is given).
---@param attrs? {user_id?: string, name?: string, description?: string}
---@return coderunner.Project
function Factory:project(attrs)
  attrs = attrs or {}
  local s = self.suite
  s.seq = s.seq + 1
  return made("project", projects.create(s.exec, attrs.user_id or self:user().id,
    attrs.name or ("project %d"):format(s.seq), attrs.description))
end

--- Creates a deployment (and its project and user unless attrs.project_id is
--- given). Other attrs are deployment data (runtime_type defaults to "node").
---@param attrs? table
---@return coderunner.Deployment
function Factory:deployment(attrs)
  local data = {}
  for k, v in pairs(attrs or {}) do data[k] = v end
  local project_id = data.project_id or self:project().id
  data.project_id = nil
  data.runtime_type = data.runtime_type or "node"
  return made("deployment", deployments.create(self.suite.exec, project_id, data))
end

--- A suite handle; `use` also registers the busted hooks that drive it.
---@param opts? coderunner.testing.Options
---@return coderunner.testing.Suite
function testing.new(opts)
  local s = setmetatable({ opts = opts or {}, stack = {}, seq = 0 }, Suite)
  s.factory = setmetatable({ suite = s }, Factory)
  if s.opts.transaction ~= false then
    s.exec = setmetatable({ suite = s }, Executor)
    s.db = db.bind(s.exec)
  end
  return s
end

--- Gives the enclosing busted block (the spec file, or a describe) a fresh
--- database: created and migrated in setup, dropped in teardown; with a
--- transaction per test rolled back in after_each.
---@param opts? coderunner.testing.Options
---@return coderunner.testing.Suite
function testing.use(opts)
  local busted = busted_api()
  local s = testing.new(opts)
  busted.setup(function() s:start() end)
  busted.teardown(function() s:finish() end)
  busted.before_each(function() s:begin_test() end)
  busted.after_each(function() s:end_test() end)
  return s
end

return testing
