-- The applier of the migration runner: runs one step (one direction of one
-- migration) on a connection and records it through the history store, in the
-- same transaction when the step runs in one. A failing step is rolled back
-- and not recorded; one outside a transaction leaves no invalid index behind.
-- Its error names the file and the line of the failing statement.
local pg = require "coderunner.pg"
local history = require "coderunner.migrate.history"

local applier = {}

local INVALID_INDEXES_SQL = [[
  select i.indexrelid::regclass::text as name from pg_index i
  where not i.indisvalid
    and not exists (select 1 from pg_stat_progress_create_index p where p.index_relid = i.indexrelid)]]

local ERROR_FIELDS = { "sqlstate", "severity", "detail", "hint", "schema", "table", "column", "datatype",
                       "constraint", "where" }

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
  for _, k in ipairs(ERROR_FIELDS) do fields[k] = e[k] end
  fields.position = e.position
  fields.file, fields.line = path, line
  return pg.error(fields)
end

local function invalid_indexes(conn)
  local rows, err = conn:query(INVALID_INDEXES_SQL)
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

---@alias coderunner.migrate.Finish
---| fun(exec: coderunner.pg.Executor, entry: table, started: string): table|nil, coderunner.pg.Error|nil

-- A step outside a transaction failed at its i-th statement: drops the invalid
-- indexes it left and says what stays applied.
local function cleanup_note(conn, before, i, log)
  local notes = {}
  if i > 1 then
    notes[#notes + 1] = ("this migration runs outside a transaction: its first %d statement%s stay%s applied"):format(
      i - 1, i > 2 and "s" or "", i > 2 and "" or "s")
  end
  for name in pairs(invalid_indexes(conn) or {}) do
    if not before[name] then
      local dropped = conn:exec("drop index concurrently if exists " .. name)
      notes[#notes + 1] = (dropped and "dropped the invalid index %s it left" or
        "could not drop the invalid index %s it left"):format(name)
      log("warn", notes[#notes], { event = "dropped_index", index = name })
    end
  end
  local note = " (not recorded"
  if #notes > 0 then note = note .. "; " .. table.concat(notes, "; ") end
  return note .. ")"
end

--- Runs one step on conn; `finish(exec, entry, started)` records it (in the
--- step's transaction, or right after it without one).
---@param conn coderunner.pg.Conn
---@param step coderunner.migrate.Step
---@param finish coderunner.migrate.Finish
---@param store_name string  the history table, for the message when recording fails
---@param log fun(level: string, message: string, info: table)
---@return table|nil row  what finish returned
---@return coderunner.pg.Error|nil err
function applier.run(conn, step, finish, store_name, log)
  local e, stmts = step.entry, step.statements
  local started, err = history.clock(conn)
  if not started then return nil, err end
  if step.section.transaction then
    local failed_st
    local res
    res, err = conn:transaction(function(tx)
      local ok, e2, st = run_statements(tx, stmts)
      if not ok then failed_st = st; return nil, e2 end
      return finish(tx, e, started)
    end)
    if res == nil and failed_st then
      return nil, statement_error(err, e.path, failed_st, " (rolled back, nothing recorded)")
    end
    return res, err
  end

  local before
  before, err = invalid_indexes(conn)
  if not before then return nil, err end
  local ok, e2, st, i = run_statements(conn, stmts)
  if not ok then return nil, statement_error(e2, e.path, st, cleanup_note(conn, before, i, log)) end
  local res
  res, err = finish(conn, e, started)
  if not res then
    return nil, pg.error { kind = err.kind or "server", message = ("%s ran outside a transaction and succeeded, but "
      .. "recording it in %s failed: %s"):format(e.path, store_name, tostring(err.message or err)) }
  end
  return res
end

return applier
