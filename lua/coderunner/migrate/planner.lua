-- The planner of the migration runner: pure functions over the files (with
-- their text and checksum) and the history rows. No server, no I/O: specs call
-- them with plain tables.
--
--   local plan = planner.plan(files, applied, dir)
--   local steps, err = planner.steps(plan, "up", { to = 3 })
local pg = require "coderunner.pg"
local files = require "coderunner.migrate.files"

local planner = {}

local function fail(fmt, ...)
  return nil, pg.error { kind = "invalid_input", message = fmt:format(...) }
end

-- Names the entries as "002_x.sql, 003_y.sql".
local function file_list(entries)
  local names = {}
  for i, e in ipairs(entries) do names[i] = e.filename end
  return table.concat(names, ", ")
end

local function plural(n, one, many) return n > 1 and many or one end

---@class coderunner.migrate.Entry: coderunner.migrate.File
---@field state "applied"|"pending"|"changed"|"missing"
---@field text? string             the file's text, CRLF made LF (nil when missing)
---@field checksum? string         of the file now
---@field applied_checksum? string recorded when it was applied
---@field out_of_order? boolean    pending, but older than the newest applied version
---@field applied_at? string
---@field duration_ms? number
---@field applied_by? string

---@class coderunner.migrate.Plan
---@field entries coderunner.migrate.Entry[]  by version
---@field by_version table<integer, coderunner.migrate.Entry>
---@field current? integer  newest applied version
---@field dir string

--- Merges the files and the history into the state of every migration.
--- States: "applied", "pending", "changed" (applied, file differs), "missing"
--- (applied, file gone); a pending entry older than the newest applied one has
--- out_of_order = true.
---@param found table[]  files.scan's entries with `text` and `checksum` set
---@param applied table<integer, table>  history rows by version
---@param dir string
---@return coderunner.migrate.Plan
function planner.plan(found, applied, dir)
  local entries, by_version, current = {}, {}, nil
  for v in pairs(applied) do
    if not current or v > current then current = v end
  end
  for _, f in ipairs(found) do
    local e = {}
    for k, v in pairs(f) do e[k] = v end
    local row = applied[e.version]
    if row then
      e.applied_at, e.duration_ms, e.applied_by = row.applied_at, row.duration_ms, row.applied_by
      e.applied_checksum = row.checksum
      e.state = row.checksum == e.checksum and "applied" or "changed"
    else
      e.state = "pending"
      e.out_of_order = current ~= nil and e.version < current or nil
    end
    entries[#entries + 1] = e
    by_version[e.version] = e
  end
  for v, row in pairs(applied) do
    if not by_version[v] then
      local e = { version = v, name = row.name, filename = ("%03d_%s.sql"):format(v, row.name), state = "missing",
                  applied_at = row.applied_at, duration_ms = row.duration_ms, applied_by = row.applied_by,
                  applied_checksum = row.checksum }
      e.path = dir .. "/" .. e.filename
      entries[#entries + 1] = e
      by_version[v] = e
    end
  end
  table.sort(entries, function(a, b) return a.version < b.version end)
  return { entries = entries, by_version = by_version, current = current, dir = dir }
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
  local n = #changed
  return fail("applied migration%s changed since %s applied: %s; restore the file%s "
    .. "(write a new migration for a new change)", plural(n, "", "s"), plural(n, "it was", "they were"),
    table.concat(parts, "; "), plural(n, "", "s"))
end

---@class coderunner.migrate.Problem
---@field version integer
---@field file string
---@field problem "changed"|"missing"|"out_of_order"|"invalid_file"
---@field message string

--- Every problem of the plan: changed files, missing files, pending versions
--- older than the newest applied one (unless allowed), malformed files.
---@param plan coderunner.migrate.Plan
---@param allow_out_of_order? boolean
---@return coderunner.migrate.Problem[] problems  by version
---@return integer checked  how many files were parsed
function planner.problems(plan, allow_out_of_order)
  local problems, checked = {}, 0
  local function add(e, problem, message)
    problems[#problems + 1] = { version = e.version, file = e.path, problem = problem, message = message }
  end
  for _, e in ipairs(plan.entries) do
    if e.state == "changed" then
      add(e, "changed", ("%s changed since it was applied (checksum recorded %s, file now %s)"):format(
        e.path, e.applied_checksum, e.checksum))
    elseif e.state == "missing" then
      add(e, "missing", ("version %d (%s) is applied but its file is missing from %s"):format(e.version, e.name,
        plan.dir))
    elseif e.out_of_order and not allow_out_of_order then
      add(e, "out_of_order", ("%s is pending but older than the newest applied version %d"):format(e.path,
        plan.current))
    end
  end
  for _, e in ipairs(plan.entries) do
    if e.text then
      checked = checked + 1
      local sections, err = files.parse(e.text, e.path)
      local stmts
      if sections then
        stmts, err = files.statements(sections.up, e.path)
        if stmts and sections.down then stmts, err = files.statements(sections.down, e.path) end
      end
      if not stmts then add(e, "invalid_file", tostring(err.message or err)) end
    end
  end
  table.sort(problems, function(a, b) return a.version < b.version end)
  return problems, checked
end

---@class coderunner.migrate.Step
---@field entry coderunner.migrate.Entry
---@field section coderunner.migrate.Section  the direction's section
---@field statements table[]
---@field after? integer  the current version once this step is done

-- Pending entries up to `to`, in version order.
local function up_steps(plan, opts)
  local to = opts.to
  local changed, missing = select_state(plan, "changed"), select_state(plan, "missing")
  if #changed > 0 then return changed_error(changed) end
  if #missing > 0 then
    return fail("applied migration%s missing from %s: %s; restore the file%s", plural(#missing, "", "s"), plan.dir,
      file_list(missing), plural(#missing, "", "s"))
  end
  if to and not plan.by_version[to] then
    return fail("up: there is no migration with version %d in %s", to, plan.dir)
  end
  if to and plan.current and to < plan.current then
    return fail("up: version %d is older than the current version %d (use down to go back)", to, plan.current)
  end
  local todo, late = {}, {}
  for _, e in ipairs(plan.entries) do
    if e.state == "pending" and (not to or e.version <= to) then
      todo[#todo + 1] = { entry = e, after = e.version }
      if e.out_of_order then late[#late + 1] = e end
    end
  end
  if #late > 0 and not opts.allow_out_of_order then
    return fail("pending migration%s older than the newest applied version %d: %s; renumber %s after it, or allow "
      .. "out-of-order migrations explicitly", plural(#late, "", "s"), plan.current, file_list(late),
      plural(#late, "it", "them"))
  end
  return todo
end

-- The newest `steps` applied entries, newest first.
local function down_steps(plan, opts)
  local todo = {}
  for i = #plan.entries, 1, -1 do
    local e = plan.entries[i]
    if #todo < opts.steps and e.state ~= "pending" then todo[#todo + 1] = { entry = e } end
  end
  for _, step in ipairs(todo) do
    local e = step.entry
    for _, other in ipairs(plan.entries) do
      if other.version < e.version and other.state ~= "pending" then step.after = other.version end
    end
  end
  return todo
end

--- The steps of a run in one direction, each file parsed and split, so a
--- malformed one stops the run before anything runs.
---@param plan coderunner.migrate.Plan
---@param direction "up"|"down"
---@param opts {to?: integer, steps?: integer, allow_out_of_order?: boolean}
---@return coderunner.migrate.Step[]|nil steps  in the order to run them
---@return coderunner.pg.Error|nil err
function planner.steps(plan, direction, opts)
  local todo, err
  if direction == "up" then
    todo, err = up_steps(plan, opts)
  elseif direction == "down" then
    todo, err = down_steps(plan, opts)
  else
    error("planner.steps: direction must be \"up\" or \"down\"", 2)
  end
  if not todo then return nil, err end
  for _, step in ipairs(todo) do
    local e = step.entry
    if e.state == "changed" then return changed_error({ e }) end
    if e.state == "missing" then
      return fail("cannot revert version %d (%s): its file is missing from %s", e.version, e.name, plan.dir)
    end
    local sections
    sections, err = files.parse(e.text, e.path)
    if not sections then return nil, err end
    step.section = sections[direction]
    if not step.section then
      return fail("cannot revert %s: it has no '-- migrate:down' section", e.path)
    end
    step.statements, err = files.statements(step.section, e.path)
    if not step.statements then return nil, err end
    if direction == "down" and #step.statements == 0 then
      return fail("cannot revert %s: its '-- migrate:down' section is empty", e.path)
    end
  end
  return todo
end

return planner
