-- Migration runner: applies NNN_name.sql files in version order over any pool
-- or connection of the core, and records them in a history table.
--
--   local migrate = require "coderunner.migrate"
--   local runner = assert(migrate.new(pool, { dir = "migrations" }))
--   local report = assert(runner:up())
--
-- A file holds both directions, each after its marker:
--
--   -- migrate:up
--   CREATE TABLE t (...);
--   -- migrate:down
--   DROP TABLE t;
--
-- Each direction runs in its own transaction, unless its marker says
-- `transaction:false` (needed by CREATE INDEX CONCURRENTLY). Safety properties:
--   * one runner at a time: an advisory lock (coderunner.migrate.lock);
--   * an applied file that changed, an applied version whose file is gone, or a
--     pending version older than the newest applied one stops `up` before it
--     runs anything (coderunner.migrate.planner);
--   * a failing migration is rolled back and not recorded, later ones do not run,
--     and the error names the file and line of the failing statement; a failing
--     migration outside a transaction leaves no invalid index behind
--     (coderunner.migrate.applier).
-- The parts: files (the directory), history (the table's SQL), lock, planner
-- (pure), applier, and the commands below. None forks a process.
local pg = require "coderunner.pg"
local files = require "coderunner.migrate.files"
local history = require "coderunner.migrate.history"
local lock = require "coderunner.migrate.lock"
local planner = require "coderunner.migrate.planner"
local applier = require "coderunner.migrate.applier"

local unpack = table.unpack or unpack ---@diagnostic disable-line: deprecated

local function pack(...) return { n = select("#", ...), ... } end

local migrate = {}

local function fail(kind, fmt, ...)
  return nil, pg.error { kind = kind, message = fmt:format(...) }
end

-- A whole number from a number or a string of digits; nil otherwise.
local function whole(v)
  if type(v) == "string" and v:match("^%s*%d+%s*$") then v = tonumber(v) end
  if type(v) == "number" and v >= 0 and v % 1 == 0 then return math.floor(v) end
  return nil
end

--- Where the migrations directory is looked for when no dir is given, in order:
--- $CODERUNNER_MIGRATIONS; `migrations` next to the installed modules
--- (`<luadir>/coderunner/migrations`, where `make install` and LuaRocks put
--- them); the `migrations` folder of the checkout the modules are loaded from.
---@param getenv? fun(name: string): string|nil
---@param path? string  the Lua search path (default package.path)
---@return string[] candidates
function migrate.search_dirs(getenv, path)
  local env = (getenv or os.getenv)("CODERUNNER_MIGRATIONS")
  if env and env ~= "" then return { env } end
  return files.beside_modules("migrations", path)
end

--- The default migrations directory: the first of migrate.search_dirs() that
--- exists ($CODERUNNER_MIGRATIONS is taken as it is).
---@return string|nil dir
---@return coderunner.pg.Error|nil err  kind "invalid_input", naming the places looked in
function migrate.default_dir()
  local candidates = migrate.search_dirs()
  local env = os.getenv("CODERUNNER_MIGRATIONS")
  if env and env ~= "" then return candidates[1] end
  for _, dir in ipairs(candidates) do
    if files.is_dir(dir) then return dir end
  end
  return fail("invalid_input", "no migrations directory found (looked in %s); pass dir (--dir) or set "
    .. "CODERUNNER_MIGRATIONS", #candidates > 0 and table.concat(candidates, ", ")
    or "no place: coderunner.db is not on package.path")
end

--- Defaults of migrate.new's options. `dir` is migrate.default_dir() as found
--- when the module was loaded (nil when none was found).
migrate.defaults = {
  dir = (migrate.default_dir()),
  table = "schema_migrations",
  lock_timeout = 30,      -- seconds to wait for another runner to finish
  poll_interval = 0.2,    -- seconds between two pg_try_advisory_lock attempts
  allow_out_of_order = false,
}

--- The two int4 keys of the advisory lock that serializes the runners of a
--- history table (for tools that must wait for, or keep out, a runner).
---@param table_name? string  default "schema_migrations"
---@return integer namespace
---@return integer key
function migrate.lock_keys(table_name)
  return lock.NAMESPACE, lock.key(table_name or migrate.defaults.table)
end

local Runner = {}
Runner.__index = Runner

---@class coderunner.migrate.Options
---@field dir? string                 directory of NNN_name.sql files (default: migrate.default_dir())
---@field table? string               history table, optionally schema-qualified (default "schema_migrations")
---@field lock_timeout? number        seconds to wait for another runner (default 30)
---@field poll_interval? number       seconds between lock attempts (default 0.2)
---@field allow_out_of_order? boolean apply a pending version older than the newest applied one
---@field logger? fun(level: string, message: string, info: table)  progress: info.event is "applying",
---                                   "applied", "reverting", "reverted", "would_apply", "would_revert", "waiting", ...
---@field sleep? fun(seconds: number) how to wait between lock attempts (e.g. ngx.sleep); default pg.sleep

---@class coderunner.migrate.Runner
---@field db coderunner.pg.Pool|coderunner.pg.Conn
---@field dir string
---@field table string
---@field lock_timeout number
---@field allow_out_of_order boolean

--- Creates a runner over a pool or a connection.
---@param db coderunner.pg.Pool|coderunner.pg.Conn
---@param opts? coderunner.migrate.Options
---@return coderunner.migrate.Runner|nil runner
---@return coderunner.pg.Error|nil err  kind "invalid_input" for a bad option value
function migrate.new(db, opts)
  if type(db) ~= "userdata" and type(db) ~= "table" then
    error("migrate.new: expected a pool or a connection, got " .. type(db), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("migrate.new: opts must be a table", 2) end
  local d = migrate.defaults
  local self = setmetatable({
    db = db,
    dir = opts.dir or d.dir,
    table = opts.table or d.table,
    lock_timeout = opts.lock_timeout or d.lock_timeout,
    poll_interval = opts.poll_interval or d.poll_interval,
    allow_out_of_order = opts.allow_out_of_order or false,
    logger = opts.logger,
    sleep = opts.sleep,
  }, Runner)
  local ok, acquire = pcall(function() return db.acquire end)
  self.is_pool = ok and type(acquire) == "function"
  if self.dir == nil then return migrate.default_dir() end
  if type(self.dir) ~= "string" or self.dir == "" then
    return fail("invalid_input", "migrate: dir must be a non-empty string")
  end
  self.dir = self.dir:gsub("(.)/+$", "%1")
  if not history.valid_name(self.table) then
    return fail("invalid_input", "migrate: table must be a name like schema_migrations or "
      .. "schema.schema_migrations, got %s", tostring(self.table))
  end
  for _, k in ipairs { "lock_timeout", "poll_interval" } do
    if type(self[k]) ~= "number" or self[k] < 0 or self[k] ~= self[k] then
      return fail("invalid_input", "migrate: %s must be a number of seconds >= 0, got %s", k, tostring(self[k]))
    end
  end
  for _, k in ipairs { "logger", "sleep" } do
    if self[k] ~= nil and type(self[k]) ~= "function" then
      error("migrate.new: " .. k .. " must be a function", 2)
    end
  end
  self.store = history.new(self.table)
  self.quoted_table = self.store.quoted
  self.lock_key = lock.key(self.table)
  self.log = function(level, message, info)
    if self.logger then self.logger(level, message, info or {}) end
  end
  return self
end

-- Runs fn(conn) on the runner's one dedicated connection (borrowed from the
-- pool for the duration when the runner was given a pool).
function Runner:_with_conn(fn)
  if not self.is_pool then return fn(self.db) end
  local conn, err = self.db:acquire()
  if not conn then return nil, err end
  local res = pack(pcall(fn, conn))
  self.db:release(conn)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

-- Runs fn(conn) holding the migration lock (dry runs change nothing and take none).
function Runner:_locked(take_lock, fn)
  return self:_with_conn(function(conn)
    if not take_lock then return fn(conn) end
    local locked, err = lock.acquire(conn, { key = self.lock_key, table = self.table, timeout = self.lock_timeout,
      poll_interval = self.poll_interval, sleep = self.sleep, on_wait = function()
        self.log("info", "waiting for another migration runner to finish", { event = "waiting" })
      end })
    if not locked then return nil, err end
    local res = pack(pcall(fn, conn))
    lock.release(conn, self.lock_key)
    if not res[1] then error(res[2], 0) end
    return unpack(res, 2, res.n)
  end)
end

-- The plan: files (read, checksummed in one round trip) merged with the history.
function Runner:_plan(conn)
  local found, err = files.scan(self.dir)
  if not found then return nil, err end
  local applied
  applied, err = self.store:applied(conn)
  if not applied then return nil, err end
  local texts = {}
  for i, f in ipairs(found) do
    local text, msg = files.read(f.path)
    if not text then return fail("invalid_input", "%s: %s", f.path, tostring(msg)) end
    texts[i] = text
    f.text = text:gsub("\r\n", "\n")
  end
  local sums
  sums, err = history.checksums(conn, texts)
  if not sums then return nil, err end
  for i, f in ipairs(found) do f.checksum = sums[i] end
  return planner.plan(found, applied, self.dir)
end

local function summary(e, extra)
  local out = { version = e.version, name = e.name, file = e.path, state = e.state }
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

local function format_ms(ms)
  if not ms then return "?" end
  return ("%.1f ms"):format(ms)
end

-- What differs between the two directions of a run; the run itself is one shape.
local DIRECTIONS = {
  up = { list = "applied", state = "applied", start = "applying", done = "applied", would = "would_apply",
         nothing = "nothing to apply", nothing_event = "up_to_date", ensure_history = true,
         finish = function(store, exec, e, started) return store:record(exec, e, started) end,
         item = function(row) return { applied_at = row.applied_at } end },
  down = { list = "reverted", state = "pending", start = "reverting", done = "reverted", would = "would_revert",
           nothing = "nothing to revert", nothing_event = "nothing_to_revert", dry_moves_current = true,
           finish = function(store, exec, e, started) return store:forget(exec, e, started) end,
           item = function() return {} end },
}

-- Runs the steps of one direction; the report lists them under d.list.
function Runner:_move(direction, opts, dry_run)
  local d = DIRECTIONS[direction]
  local log = self.log
  return self:_locked(not dry_run, function(conn)
    if d.ensure_history and not dry_run then
      local ok, err = self.store:ensure(conn)
      if not ok then return nil, err end
    end
    local plan, err = self:_plan(conn)
    if not plan then return nil, err end
    local steps
    steps, err = planner.steps(plan, direction, opts)
    if not steps then return nil, err end
    local report = { [d.list] = {}, dry_run = dry_run, current = plan.current }
    if #steps == 0 then
      log("info", d.nothing, { event = d.nothing_event, current = plan.current })
      return report
    end
    local list = report[d.list]
    for _, step in ipairs(steps) do
      local e, section = step.entry, step.section
      local info = { version = e.version, name = e.name, file = e.path, transaction = section.transaction }
      if dry_run then
        list[#list + 1] = summary(e, { transaction = section.transaction, sql = section.text,
          statements = #step.statements })
        info.event, info.sql = d.would, section.text
        log("info", ("%s %s"):format(d.would:gsub("_", " "), e.filename), info)
        if d.dry_moves_current then report.current = step.after end
      else
        info.event = d.start
        log("info", ("%s %s"):format(d.start, e.filename), info)
        local row
        row, err = applier.run(conn, step, function(exec, entry, started)
          return d.finish(self.store, exec, entry, started)
        end, self.table, log)
        if not row then return nil, err end
        local item = summary(e, d.item(row))
        item.state, item.transaction, item.duration_ms = d.state, section.transaction, row.duration_ms
        list[#list + 1] = item
        report.current = step.after
        log("info", ("%s %s (%s)"):format(d.done, e.filename, format_ms(row.duration_ms)), {
          event = d.done, version = e.version, name = e.name, file = e.path, duration_ms = row.duration_ms })
      end
    end
    return report
  end)
end

---@class coderunner.migrate.Item
---@field version integer
---@field name string
---@field file string
---@field duration_ms? number
---@field transaction? boolean
---@field sql? string   dry runs: the SQL that would run

---@class coderunner.migrate.RunReport
---@field applied? coderunner.migrate.Item[]   up
---@field reverted? coderunner.migrate.Item[]  down
---@field dry_run boolean
---@field current? integer  newest applied version afterwards (nil: none)

--- Applies the pending migrations in version order, up to `to` when given.
---@param opts? {to?: integer|string, dry_run?: boolean}
---@return coderunner.migrate.RunReport|nil report
---@return coderunner.pg.Error|nil err
function Runner:up(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("runner:up: opts must be a table", 2) end
  local to = opts.to
  if to ~= nil then
    to = whole(to)
    if not to then return fail("invalid_input", "up: 'to' must be a version number, got %s", tostring(opts.to)) end
  end
  return self:_move("up", { to = to, allow_out_of_order = self.allow_out_of_order }, opts.dry_run and true or false)
end

--- Reverts the newest `steps` applied migrations (default 1), newest first.
---@param opts? {steps?: integer|string, dry_run?: boolean}
---@return coderunner.migrate.RunReport|nil report
---@return coderunner.pg.Error|nil err
function Runner:down(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("runner:down: opts must be a table", 2) end
  local steps = 1
  if opts.steps ~= nil then
    steps = whole(opts.steps)
    if not steps or steps < 1 then
      return fail("invalid_input", "down: 'steps' must be a whole number >= 1, got %s", tostring(opts.steps))
    end
  end
  return self:_move("down", { steps = steps }, opts.dry_run and true or false)
end

---@class coderunner.migrate.StatusEntry
---@field version integer
---@field name string
---@field file string
---@field state "applied"|"pending"|"changed"|"missing"
---@field out_of_order? boolean  pending, but older than the newest applied version
---@field applied_at? string
---@field duration_ms? number
---@field applied_by? string
---@field checksum? string          of the file now
---@field applied_checksum? string  recorded when it was applied

---@class coderunner.migrate.StatusReport
---@field migrations coderunner.migrate.StatusEntry[]
---@field current? integer  newest applied version
---@field applied integer
---@field pending integer
---@field changed integer
---@field missing integer
---@field out_of_order integer

--- The state of every migration (reads only; takes no lock).
---@return coderunner.migrate.StatusReport|nil report
---@return coderunner.pg.Error|nil err
function Runner:status()
  return self:_with_conn(function(conn)
    local plan, err = self:_plan(conn)
    if not plan then return nil, err end
    local report = { migrations = {}, current = plan.current, applied = 0, pending = 0, changed = 0,
                     missing = 0, out_of_order = 0 }
    for i, e in ipairs(plan.entries) do
      report[e.state] = report[e.state] + 1
      if e.out_of_order then report.out_of_order = report.out_of_order + 1 end
      report.migrations[i] = summary(e, { out_of_order = e.out_of_order, applied_at = e.applied_at,
        duration_ms = e.duration_ms, applied_by = e.applied_by, checksum = e.checksum,
        applied_checksum = e.applied_checksum })
    end
    return report
  end)
end

--- Checks every migration: applied files unchanged and present, no pending
--- version older than the newest applied one (unless allowed), every file
--- well-formed. Returns a report when all is well; otherwise nil, an error
--- listing every problem, and the report.
---@return {ok: boolean, checked: integer, problems: coderunner.migrate.Problem[]}|nil report
---@return coderunner.pg.Error|nil err
---@return {ok: boolean, checked: integer, problems: coderunner.migrate.Problem[]}|nil report_on_failure
function Runner:validate()
  return self:_with_conn(function(conn)
    local plan, err = self:_plan(conn)
    if not plan then return nil, err end
    local problems, checked = planner.problems(plan, self.allow_out_of_order)
    local report = { ok = #problems == 0, checked = checked, problems = problems }
    if report.ok then return report end
    local lines = {}
    for i, p in ipairs(problems) do lines[i] = p.message end
    return nil, pg.error { kind = "invalid_input", message = ("%d problem%s in %s: %s"):format(#problems,
      #problems > 1 and "s" or "", self.dir, table.concat(lines, "; ")) }, report
  end)
end

--- Creates the next migration file in dir, with up and down sections.
---@param dir? string  default migrate.default_dir(); created when missing
---@param name string  words of the name; anything but letters and digits becomes '_'
---@return {version: integer, name: string, file: string}|nil report
---@return coderunner.pg.Error|nil err
function migrate.create(dir, name)
  if dir == nil then
    local err
    dir, err = migrate.default_dir()
    if not dir then return nil, err end
  end
  if type(dir) ~= "string" or dir == "" then error("migrate.create: dir must be a string", 2) end
  if type(name) ~= "string" then
    return fail("invalid_input", "create: a migration name is required")
  end
  local slug = name:lower():gsub("[^%w]+", "_"):gsub("^_+", ""):gsub("_+$", "")
  if slug == "" then
    return fail("invalid_input", "create: the name %q has no letters or digits", name)
  end
  return files.create((dir:gsub("(.)/+$", "%1")), slug)
end

--- Shortcut: migrate.new(db, opts):up(opts).
---@param db coderunner.pg.Pool|coderunner.pg.Conn
---@param opts? coderunner.migrate.Options|{to?: integer, dry_run?: boolean}
---@return coderunner.migrate.RunReport|nil report
---@return coderunner.pg.Error|nil err
function migrate.up(db, opts)
  local runner, err = migrate.new(db, opts)
  if not runner then return nil, err end
  return runner:up(opts)
end

return migrate
