-- Migration runner: applies migrations/NNN_name.sql files in version order over
-- any pool or connection of the core, and records them in a history table.
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
--   * one runner at a time: a session advisory lock, taken by polling
--     pg_try_advisory_lock between client-side sleeps, so a waiting runner holds
--     no snapshot (it cannot stall a CREATE INDEX CONCURRENTLY of the runner it
--     waits for); the lock lives on the runner's one dedicated connection, which
--     also runs the migrations, so the lock cannot outlive the work or vice versa;
--   * an applied file that changed, an applied version whose file is gone, or a
--     pending version older than the newest applied one stops `up` before it
--     runs anything;
--   * a failing migration is rolled back and not recorded, later ones do not run,
--     and the error names the file and line of the failing statement; a failing
--     migration outside a transaction leaves no invalid index behind.
local pg = require "coderunner.pg"

local unpack = table.unpack or unpack ---@diagnostic disable-line: deprecated

local function pack(...) return { n = select("#", ...), ... } end

local migrate = {}

--- Defaults of migrate.new's options.
migrate.defaults = {
  dir = os.getenv("CODERUNNER_MIGRATIONS") or "migrations",  -- relative to the working directory
  table = "schema_migrations",
  lock_timeout = 30,      -- seconds to wait for another runner to finish
  poll_interval = 0.2,    -- seconds between two pg_try_advisory_lock attempts
  allow_out_of_order = false,
}

-- First key of the advisory lock ("CRDB"); the second one is a hash of the
-- history table's name, so runners of different tables do not block each other.
local LOCK_NAMESPACE = 0x43524442

local Runner = {}
Runner.__index = Runner

---------------------------------------------------------------------------
-- Small helpers
---------------------------------------------------------------------------

local function fail(kind, fmt, ...)
  return nil, pg.error { kind = kind, message = fmt:format(...) }
end

-- Integer as decimal text, for $n::bigint parameters (exact on every VM).
local function int_text(n)
  return ("%d"):format(n)
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- A whole number from a number or a string of digits; nil otherwise.
local function whole(v)
  if type(v) == "string" and v:match("^%s*%d+%s*$") then v = tonumber(v) end
  if type(v) == "number" and v >= 0 and v % 1 == 0 then return math.floor(v) end
  return nil
end

-- Small, stable string hash into [0, 2^31), the same on every Lua VM.
local function hash31(s)
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 2147483648 end
  return h
end

local function log(self, level, message, info)
  if self.logger then self.logger(level, message, info or {}) end
end

local function format_ms(ms)
  if not ms then return "?" end
  return ("%.1f ms"):format(ms)
end

-- Names the entries as "002_x.sql, 003_y.sql".
local function file_list(entries)
  local names = {}
  for i, e in ipairs(entries) do names[i] = e.filename end
  return table.concat(names, ", ")
end

---------------------------------------------------------------------------
-- Files
---------------------------------------------------------------------------

-- Lists the file names in dir; nil when dir is not a directory.
local function list_dir(dir)
  local q = shell_quote(dir)
  local p = io.popen("if [ -d " .. q .. " ]; then echo ok; ls -1A " .. q .. "; fi 2>/dev/null")
  if not p then return nil end
  local out = p:read("*a")
  p:close()
  if out:sub(1, 3) ~= "ok\n" then return nil end
  local names = {}
  for name in out:sub(4):gmatch("[^\n]+") do names[#names + 1] = name end
  return names
end

local function read_file(path)
  local f, msg = io.open(path, "rb")
  if not f then return nil, msg end
  local text = f:read("*a")
  f:close()
  if not text then return nil, path .. ": could not be read" end
  return text
end

-- Migration files of dir, sorted by version: { {version, name, filename, path}, ... }.
local function scan(dir)
  local names = list_dir(dir)
  if not names then
    return fail("invalid_input", "migrations directory %s not found", dir)
  end
  local files, seen = {}, {}
  for _, filename in ipairs(names) do
    local digits, name = filename:match("^(%d+)_([%w_%-]+)%.sql$")
    if digits then
      local version = tonumber(digits)
      if seen[version] then
        return fail("invalid_input", "two migrations have version %d: %s and %s", version,
          seen[version].filename, filename)
      end
      local f = { version = version, name = name, filename = filename, path = dir .. "/" .. filename,
                  digits = #digits }
      seen[version] = f
      files[#files + 1] = f
    elseif filename:match("%.sql$") then
      return fail("invalid_input", "%s/%s: a migration file is named NNN_name.sql (digits, '_', then "
        .. "letters, digits, '_' or '-')", dir, filename)
    end
  end
  table.sort(files, function(a, b) return a.version < b.version end)
  return files
end

-- Splits a migration's text into its up and down sections:
-- { up = {sql, line, transaction}, down = {...} }; line is the marker's line.
local function parse(text, path)
  local sections, current = {}, nil
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local marker, rest = line:match("^%-%-%s*migrate:(%S*)(.*)$")
    if marker then
      if marker ~= "up" and marker ~= "down" then
        return fail("invalid_input", "%s:%d: unknown marker 'migrate:%s' (use -- migrate:up or -- migrate:down)",
          path, n, marker)
      end
      if sections[marker] then
        return fail("invalid_input", "%s:%d: a second '-- migrate:%s' marker", path, n, marker)
      end
      current = { line = n, transaction = true, lines = {} }
      for option in rest:gmatch("%S+") do
        if option == "transaction:false" then
          current.transaction = false
        elseif option ~= "transaction:true" then
          return fail("invalid_input", "%s:%d: unknown option '%s' after migrate:%s (known: transaction:false)",
            path, n, option, marker)
        end
      end
      sections[marker] = current
    elseif current then
      current.lines[#current.lines + 1] = line
    elseif not (line:match("^%s*$") or line:match("^%s*%-%-")) then
      return fail("invalid_input", "%s:%d: SQL before the '-- migrate:up' marker", path, n)
    end
  end
  if not sections.up then
    return fail("invalid_input", "%s: no '-- migrate:up' marker", path)
  end
  for _, s in pairs(sections) do
    s.sql = table.concat(s.lines, "\n")
    s.lines = nil
  end
  -- What a dry run shows: the section without its surrounding blank lines.
  for _, s in pairs(sections) do s.text = s.sql:gsub("^%s*\n", ""):gsub("%s+$", "") end
  return sections
end

-- Splits a section into statements, each with its line in the file.
local function statements(section, path)
  local stmts, err = pg.split_sql(section.sql)
  if not stmts then
    return fail("invalid_input", "%s:%d: %s", path, section.line, tostring(err and err.message or err))
  end
  for _, st in ipairs(stmts) do st.file_line = section.line + st.line end
  return stmts
end

---------------------------------------------------------------------------
-- Runner
---------------------------------------------------------------------------

---@class coderunner.migrate.Options
---@field dir? string                 directory of NNN_name.sql files (default "migrations")
---@field table? string               history table, optionally schema-qualified (default "schema_migrations")
---@field lock_timeout? number        seconds to wait for another runner (default 30)
---@field poll_interval? number       seconds between lock attempts (default 0.2)
---@field allow_out_of_order? boolean apply a pending version older than the newest applied one
---@field logger? fun(level: string, message: string, info: table)  progress: info.event is
---                                   "applied", "reverted", "would_apply", "would_revert", "waiting", ...
---@field sleep? fun(seconds: number) how to wait between lock attempts (e.g. ngx.sleep); default: sleep(1)

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
  if type(self.dir) ~= "string" or self.dir == "" then
    return fail("invalid_input", "migrate: dir must be a non-empty string")
  end
  self.dir = self.dir:gsub("(.)/+$", "%1")
  if type(self.table) ~= "string" or not (self.table:match("^[%a_][%w_]*$")
      or self.table:match("^[%a_][%w_]*%.[%a_][%w_]*$")) then
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
  -- "schema"."table": the pattern above allows only letters, digits and '_'.
  local parts = {}
  for part in self.table:gmatch("[^.]+") do parts[#parts + 1] = '"' .. part .. '"' end
  self.quoted_table = table.concat(parts, ".")
  self.lock_key = hash31(self.table)
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

function Runner:_sleep(seconds)
  if self.sleep then return self.sleep(seconds) end
  -- Client-side: a server-side pg_sleep would hold a snapshot while it waits.
  os.execute(("sleep %.3f"):format(seconds))
end

-- Who holds our lock (for the timeout message), as "pid N (application_name)".
function Runner:_lock_holder(conn)
  local rows = conn:query([[
    select a.pid, coalesce(nullif(a.application_name, ''), 'no application_name') as app
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory' and l.granted and l.database = (select oid from pg_database
      where datname = current_database()) and l.classid = $1::oid and l.objid = $2::oid and l.objsubid = 2]],
    int_text(LOCK_NAMESPACE), int_text(self.lock_key))
  if rows and rows[1] then return ("pid %s (%s)"):format(tostring(rows[1].pid), rows[1].app) end
  return "another session"
end

-- Takes the advisory lock by polling; nil, err (kind "timeout") after lock_timeout.
--- The two int4 keys of the advisory lock that serializes the runners of a
--- history table (for tools that must wait for, or keep out, a runner).
---@param table_name? string  default "schema_migrations"
---@return integer namespace
---@return integer key
function migrate.lock_keys(table_name)
  return LOCK_NAMESPACE, hash31(table_name or migrate.defaults.table)
end

function Runner:_lock(conn)
  local deadline, announced = pg.monotonic() + self.lock_timeout, false
  while true do
    local rows, err = conn:query("select pg_try_advisory_lock($1::int4, $2::int4) as locked",
      int_text(LOCK_NAMESPACE), int_text(self.lock_key))
    if not rows then return nil, err end
    if rows[1].locked then return true end
    if pg.monotonic() >= deadline then
      return fail("timeout", "could not take the migration lock within %s s: %s is running migrations "
        .. "on this database (table %s); try again when it has finished, or raise the lock timeout",
        tostring(self.lock_timeout), self:_lock_holder(conn), self.table)
    end
    if not announced then
      announced = true
      log(self, "info", "waiting for another migration runner to finish", { event = "waiting" })
    end
    self:_sleep(self.poll_interval)
  end
end

function Runner:_unlock(conn)
  conn:query("select pg_advisory_unlock($1::int4, $2::int4)", int_text(LOCK_NAMESPACE), int_text(self.lock_key))
end

-- Runs fn(conn) holding the migration lock (dry runs change nothing and take none).
function Runner:_locked(take_lock, fn)
  return self:_with_conn(function(conn)
    if not take_lock then return fn(conn) end
    local locked, err = self:_lock(conn)
    if not locked then return nil, err end
    local res = pack(pcall(fn, conn))
    self:_unlock(conn)
    if not res[1] then error(res[2], 0) end
    return unpack(res, 2, res.n)
  end)
end

function Runner:_history_exists(conn)
  local rows, err = conn:query("select to_regclass($1) is not null as present", self.quoted_table)
  if not rows then return nil, err end
  return rows[1].present
end

function Runner:_ensure_history(conn)
  local present, err = self:_history_exists(conn)
  if present == nil then return nil, err end
  if present then return true end
  return conn:exec(([[
    create table %s (
      version     bigint primary key,
      name        text not null,
      checksum    text not null,
      applied_at  timestamptz not null default now(),
      duration_ms double precision not null,
      applied_by  text not null default current_user
    )]]):format(self.quoted_table))
end

-- The history rows by version (empty when the table does not exist yet).
function Runner:_applied(conn)
  local present, err = self:_history_exists(conn)
  if present == nil then return nil, err end
  if not present then return {} end
  local rows
  rows, err = conn:query(("select version::text as version, name, checksum, applied_at::text as applied_at, "
    .. "duration_ms, applied_by from %s order by version"):format(self.quoted_table))
  if not rows then return nil, err end
  local applied = {}
  for _, r in ipairs(rows) do
    r.version = tonumber(r.version)
    applied[r.version] = r
  end
  return applied
end

-- SHA-256 (hex) of the file with CRLF line endings made LF, by the server.
local function checksum(conn, text)
  local rows, err = conn:query("select encode(sha256($1), 'hex') as sum", pg.bytea((text:gsub("\r\n", "\n"))))
  if not rows then return nil, err end
  return rows[1].sum
end

--- The state of every migration, files and history merged, by version.
--- Entry states: "applied", "pending", "changed" (applied, file differs),
--- "missing" (applied, file gone); a pending entry older than the newest applied
--- one has out_of_order = true.
function Runner:_plan(conn)
  local files, err = scan(self.dir)
  if not files then return nil, err end
  local applied
  applied, err = self:_applied(conn)
  if not applied then return nil, err end

  local entries, by_version, current = {}, {}, nil
  for v in pairs(applied) do
    if not current or v > current then current = v end
  end
  for _, f in ipairs(files) do
    local text, msg = read_file(f.path)
    if not text then return fail("invalid_input", "%s: %s", f.path, tostring(msg)) end
    f.text = text:gsub("\r\n", "\n")
    f.checksum, err = checksum(conn, text)
    if not f.checksum then return nil, err end
    local row = applied[f.version]
    if row then
      f.applied_at, f.duration_ms, f.applied_by = row.applied_at, row.duration_ms, row.applied_by
      f.applied_checksum = row.checksum
      f.state = row.checksum == f.checksum and "applied" or "changed"
    else
      f.state = "pending"
      f.out_of_order = current ~= nil and f.version < current or nil
    end
    entries[#entries + 1] = f
    by_version[f.version] = f
  end
  for v, row in pairs(applied) do
    if not by_version[v] then
      local e = { version = v, name = row.name, filename = ("%03d_%s.sql"):format(v, row.name), state = "missing",
                  applied_at = row.applied_at, duration_ms = row.duration_ms, applied_by = row.applied_by,
                  applied_checksum = row.checksum }
      e.path = self.dir .. "/" .. e.filename
      entries[#entries + 1] = e
      by_version[v] = e
    end
  end
  table.sort(entries, function(a, b) return a.version < b.version end)
  return { entries = entries, by_version = by_version, current = current }
end

local function select_state(plan, state)
  local out = {}
  for _, e in ipairs(plan.entries) do
    if e.state == state then out[#out + 1] = e end
  end
  return out
end

local function changed_error(changed)
  local parts = {}
  for _, e in ipairs(changed) do
    parts[#parts + 1] = ("%s (checksum recorded %s, file now %s)"):format(e.path, e.applied_checksum, e.checksum)
  end
  return fail("invalid_input", "applied migration%s changed since %s applied: %s; restore the file%s "
    .. "(write a new migration for a new change)", #changed > 1 and "s" or "", #changed > 1 and "they were" or "it was",
    table.concat(parts, "; "), #changed > 1 and "s" or "")
end

local function missing_error(missing, dir)
  return fail("invalid_input", "applied migration%s missing from %s: %s; restore the file%s",
    #missing > 1 and "s" or "", dir, file_list(missing), #missing > 1 and "s" or "")
end

-- The problems that stop a run: changed files, missing files, and (unless
-- allowed) pending versions older than the newest applied one.
function Runner:_problems(plan)
  local problems = {}
  for _, e in ipairs(plan.entries) do
    if e.state == "changed" then
      problems[#problems + 1] = { version = e.version, file = e.path, problem = "changed",
        message = ("%s changed since it was applied (checksum recorded %s, file now %s)"):format(
          e.path, e.applied_checksum, e.checksum) }
    elseif e.state == "missing" then
      problems[#problems + 1] = { version = e.version, file = e.path, problem = "missing",
        message = ("version %d (%s) is applied but its file is missing from %s"):format(e.version, e.name, self.dir) }
    elseif e.out_of_order and not self.allow_out_of_order then
      problems[#problems + 1] = { version = e.version, file = e.path, problem = "out_of_order",
        message = ("%s is pending but older than the newest applied version %d"):format(e.path, plan.current) }
    end
  end
  return problems
end

-- Error of a failed statement, naming the file and the statement's line (the
-- line of the error's position when the server gave one).
local function statement_error(e, path, st, note)
  local line = st.file_line
  local position = tonumber(e.position)
  if position then
    local _, newlines = st.sql:sub(1, position - 1):gsub("\n", "")
    line = line + newlines
  end
  local fields = { kind = e.kind or "server",
    message = ("%s:%d: %s%s"):format(path, line, tostring(e.message or e), note) }
  for _, k in ipairs { "sqlstate", "severity", "detail", "hint", "schema", "table", "column",
                       "datatype", "constraint", "where" } do
    fields[k] = e[k]
  end
  fields.position = e.position
  fields.file, fields.line = path, line
  local err = pg.error(fields)
  return err, line
end

local function clock(conn)
  local rows, err = conn:query("select clock_timestamp()::text as t")
  if not rows then return nil, err end
  return rows[1].t
end

local function invalid_indexes(conn)
  local rows, err = conn:query([[
    select i.indexrelid::regclass::text as name from pg_index i
    where not i.indisvalid
      and not exists (select 1 from pg_stat_progress_create_index p where p.index_relid = i.indexrelid)]])
  if not rows then return nil, err end
  local set = {}
  for _, r in ipairs(rows) do set[r.name] = true end
  return set
end

local function run_statements(exec, stmts)
  for i, st in ipairs(stmts) do
    local res, err = exec:exec(st.sql)
    if res == nil then return nil, err, st, i end
  end
  return true
end

-- Runs one direction of one migration; `finish(exec, started)` records it in
-- the history table in the same transaction (or right after, without one).
function Runner:_run(conn, e, section, stmts, finish)
  local started, err = clock(conn)
  if not started then return nil, err end
  if section.transaction then
    local failed_st
    local res
    res, err = conn:transaction(function(tx)
      local ok, e2, st = run_statements(tx, stmts)
      if not ok then failed_st = st; return nil, e2 end
      return finish(tx, started)
    end)
    if res == nil then
      if failed_st then
        return nil, (statement_error(err, e.path, failed_st, " (rolled back, nothing recorded)"))
      end
      return nil, err
    end
    return res
  end

  local before
  before, err = invalid_indexes(conn)
  if not before then return nil, err end
  local ok, e2, st, i = run_statements(conn, stmts)
  if not ok then
    local notes = {}
    if i > 1 then
      notes[#notes + 1] = ("this migration runs outside a transaction: its first %d statement%s stay%s applied"):format(
        i - 1, i > 2 and "s" or "", i > 2 and "" or "s")
    end
    local after = invalid_indexes(conn) or {}
    for name in pairs(after) do
      if not before[name] then
        local dropped = conn:exec("drop index concurrently if exists " .. name)
        notes[#notes + 1] = (dropped and "dropped the invalid index %s it left" or
          "could not drop the invalid index %s it left"):format(name)
        log(self, "warn", notes[#notes], { event = "dropped_index", index = name })
      end
    end
    local note = " (not recorded"
    if #notes > 0 then note = note .. "; " .. table.concat(notes, "; ") end
    return nil, (statement_error(e2, e.path, st, note .. ")"))
  end
  local res
  res, err = finish(conn, started)
  if not res then
    return fail(err.kind or "server", "%s ran outside a transaction and succeeded, but recording it in %s failed: %s",
      e.path, self.table, tostring(err.message or err))
  end
  return res
end

local function summary(e, extra)
  local out = { version = e.version, name = e.name, file = e.path, state = e.state }
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
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
  local dry_run = opts.dry_run and true or false
  return self:_locked(not dry_run, function(conn)
    if not dry_run then
      local ok, err = self:_ensure_history(conn)
      if not ok then return nil, err end
    end
    local plan, err = self:_plan(conn)
    if not plan then return nil, err end
    local changed, missing = select_state(plan, "changed"), select_state(plan, "missing")
    if #changed > 0 then return changed_error(changed) end
    if #missing > 0 then return missing_error(missing, self.dir) end
    if to and not plan.by_version[to] then
      return fail("invalid_input", "up: there is no migration with version %d in %s", to, self.dir)
    end
    if to and plan.current and to < plan.current then
      return fail("invalid_input", "up: version %d is older than the current version %d (use down to go back)",
        to, plan.current)
    end
    local todo, late = {}, {}
    for _, e in ipairs(plan.entries) do
      if e.state == "pending" and (not to or e.version <= to) then
        todo[#todo + 1] = e
        if e.out_of_order then late[#late + 1] = e end
      end
    end
    if #late > 0 and not self.allow_out_of_order then
      return fail("invalid_input", "pending migration%s older than the newest applied version %d: %s; "
        .. "renumber %s after it, or allow out-of-order migrations explicitly", #late > 1 and "s" or "",
        plan.current, file_list(late), #late > 1 and "them" or "it")
    end
    -- Check every file before running any, so a malformed one stops nothing halfway.
    for _, e in ipairs(todo) do
      e.sections, err = parse(e.text, e.path)
      if not e.sections then return nil, err end
      e.stmts, err = statements(e.sections.up, e.path)
      if not e.stmts then return nil, err end
    end

    local report = { applied = {}, dry_run = dry_run, current = plan.current }
    if #todo == 0 then
      log(self, "info", "nothing to apply", { event = "up_to_date", current = plan.current })
      return report
    end
    for _, e in ipairs(todo) do
      local up = e.sections.up
      if dry_run then
        report.applied[#report.applied + 1] = summary(e, { transaction = up.transaction, sql = up.text,
          statements = #e.stmts })
        log(self, "info", ("would apply %s"):format(e.filename), { event = "would_apply", version = e.version,
          name = e.name, file = e.path, sql = up.text, transaction = up.transaction })
      else
        local row
        row, err = self:_run(conn, e, up, e.stmts, function(exec, started)
          local rows, e2 = exec:query(("insert into %s (version, name, checksum, duration_ms) "
            .. "values ($1::bigint, $2, $3, "
            .. "round((extract(epoch from clock_timestamp() - $4::timestamptz) * 1000)::numeric, 3)::float8) "
            .. "returning applied_at::text as applied_at, duration_ms, applied_by"):format(self.quoted_table),
            int_text(e.version), e.name, e.checksum, started)
          if not rows then return nil, e2 end
          return rows[1]
        end)
        if not row then return nil, err end
        local item = summary(e, { state = "applied", transaction = up.transaction, duration_ms = row.duration_ms,
          applied_at = row.applied_at })
        report.applied[#report.applied + 1] = item
        report.current = e.version
        log(self, "info", ("applied %s (%s)"):format(e.filename, format_ms(row.duration_ms)), {
          event = "applied", version = e.version, name = e.name, file = e.path, duration_ms = row.duration_ms })
      end
    end
    return report
  end)
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
  local dry_run = opts.dry_run and true or false
  return self:_locked(not dry_run, function(conn)
    local plan, err = self:_plan(conn)
    if not plan then return nil, err end
    local todo = {}
    for i = #plan.entries, 1, -1 do
      local e = plan.entries[i]
      if #todo < steps and e.state ~= "pending" then todo[#todo + 1] = e end
    end
    for _, e in ipairs(todo) do
      if e.state == "changed" then return changed_error({ e }) end
      if e.state == "missing" then
        return fail("invalid_input", "cannot revert version %d (%s): its file is missing from %s", e.version,
          e.name, self.dir)
      end
      e.sections, err = parse(e.text, e.path)
      if not e.sections then return nil, err end
      if not e.sections.down then
        return fail("invalid_input", "cannot revert %s: it has no '-- migrate:down' section", e.path)
      end
      e.stmts, err = statements(e.sections.down, e.path)
      if not e.stmts then return nil, err end
      if #e.stmts == 0 then
        return fail("invalid_input", "cannot revert %s: its '-- migrate:down' section is empty", e.path)
      end
    end

    local report = { reverted = {}, dry_run = dry_run, current = plan.current }
    if #todo == 0 then
      log(self, "info", "nothing to revert", { event = "nothing_to_revert" })
      return report
    end
    for n, e in ipairs(todo) do
      local down = e.sections.down
      local after -- the version that is current once e is reverted
      for _, other in ipairs(plan.entries) do
        if other.version < e.version and other.state ~= "pending" then after = other.version end
      end
      if dry_run then
        report.reverted[n] = summary(e, { transaction = down.transaction, sql = down.text, statements = #e.stmts })
        log(self, "info", ("would revert %s"):format(e.filename), { event = "would_revert", version = e.version,
          name = e.name, file = e.path, sql = down.text, transaction = down.transaction })
      else
        local row
        row, err = self:_run(conn, e, down, e.stmts, function(exec, started)
          local rows, e2 = exec:query(("delete from %s where version = $1::bigint returning "
            .. "round((extract(epoch from clock_timestamp() - $2::timestamptz) * 1000)::numeric, 3)::float8 "
            .. "as duration_ms"):format(self.quoted_table), int_text(e.version), started)
          if not rows then return nil, e2 end
          return rows[1] or { duration_ms = 0 }
        end)
        if not row then return nil, err end
        report.reverted[n] = summary(e, { state = "pending", transaction = down.transaction,
          duration_ms = row.duration_ms })
        log(self, "info", ("reverted %s (%s)"):format(e.filename, format_ms(row.duration_ms)), {
          event = "reverted", version = e.version, name = e.name, file = e.path, duration_ms = row.duration_ms })
      end
      report.current = after
    end
    return report
  end)
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

---@class coderunner.migrate.Problem
---@field version integer
---@field file string
---@field problem "changed"|"missing"|"out_of_order"|"invalid_file"
---@field message string

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
    local problems = self:_problems(plan)
    local checked = 0
    for _, e in ipairs(plan.entries) do
      if e.text then
        checked = checked + 1
        local sections, perr = parse(e.text, e.path)
        local stmts
        if sections then
          stmts, perr = statements(sections.up, e.path)
          if stmts and sections.down then stmts, perr = statements(sections.down, e.path) end
        end
        if not stmts then
          problems[#problems + 1] = { version = e.version, file = e.path, problem = "invalid_file",
            message = tostring(perr.message or perr) }
        end
      end
    end
    table.sort(problems, function(a, b) return a.version < b.version end)
    local report = { ok = #problems == 0, checked = checked, problems = problems }
    if report.ok then return report end
    local lines = {}
    for i, p in ipairs(problems) do lines[i] = p.message end
    return nil, pg.error { kind = "invalid_input", message = ("%d problem%s in %s: %s"):format(#problems,
      #problems > 1 and "s" or "", self.dir, table.concat(lines, "; ")) }, report
  end)
end

local TEMPLATE = [[
-- %s
-- Applied in a transaction. For a statement that cannot run in one (CREATE
-- INDEX CONCURRENTLY), write `-- migrate:up transaction:false` and keep that
-- migration to that one statement.

-- migrate:up


-- migrate:down

]]

--- Creates the next migration file in dir, with up and down sections.
---@param dir? string  default "migrations"; created when missing
---@param name string  words of the name; anything but letters and digits becomes '_'
---@return {version: integer, name: string, file: string}|nil report
---@return coderunner.pg.Error|nil err
function migrate.create(dir, name)
  dir = dir or migrate.defaults.dir
  if type(dir) ~= "string" or dir == "" then error("migrate.create: dir must be a string", 2) end
  if type(name) ~= "string" then
    return fail("invalid_input", "create: a migration name is required")
  end
  local slug = name:lower():gsub("[^%w]+", "_"):gsub("^_+", ""):gsub("_+$", "")
  if slug == "" then
    return fail("invalid_input", "create: the name %q has no letters or digits", name)
  end
  dir = dir:gsub("(.)/+$", "%1")
  if not list_dir(dir) then os.execute("mkdir -p " .. shell_quote(dir)) end
  local files, err = scan(dir)
  if not files then return nil, err end
  local version, width = 1, 3
  for _, f in ipairs(files) do
    if f.version >= version then version = f.version + 1 end
    if f.digits > width then width = f.digits end
  end
  local filename = ("%0" .. width .. "d_%s.sql"):format(version, slug)
  local path = dir .. "/" .. filename
  local f, msg = io.open(path, "wb")
  if not f then return fail("invalid_input", "create: %s", tostring(msg)) end
  f:write(TEMPLATE:format(slug:gsub("_", " ")))
  f:close()
  return { version = version, name = slug, file = path }
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
