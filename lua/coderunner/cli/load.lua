-- `coderunner-db load TABLE FILE`: a bulk load. Streams the rows of a CSV file
-- (or PostgreSQL's tab-separated text format) into `COPY table (columns) FROM
-- STDIN` through executor:copy_in with an iterator, one record read at a time,
-- showing progress through common.reporter. COPY is all-or-nothing: a bad row
-- or a server error writes nothing.
local pg = require "coderunner.pg"
local csv = require "coderunner.cli.csv"

local M = {}

-- A name PostgreSQL would take unquoted, in any case (letters, digits, _ and $;
-- bytes of non-ASCII letters), of at most 63 bytes (NAMEDATALEN - 1).
local IDENTIFIER = "^[%a_\128-\255][%w_$\128-\255]*$"

local function bad(message)
  return nil, { kind = "invalid_input", message = message }
end

local function check_identifier(name, what)
  if not name:match(IDENTIFIER) or #name > 63 then
    return bad(("%s '%s' is not a plain identifier (letters, digits, _ and $, at most 63 bytes)"):format(what,
      name))
  end
  return name
end

--- Checks the table name (`name` or `schema.name`) and the --columns list
--- (`a,b,c`); returns the table's parts and the columns (nil when absent).
---@param table_name string
---@param columns_text string|nil
---@return string[]|nil parts
---@return string[]|table|nil columns_or_err
function M.check_names(table_name, columns_text)
  local parts = {}
  for part in (table_name .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = part end
  if #parts > 2 then return bad(("table '%s': at most schema.table"):format(table_name)) end
  for _, part in ipairs(parts) do
    local ok, err = check_identifier(part, "table")
    if not ok then return nil, err end
  end
  if columns_text == nil then return parts, nil end
  local columns = {}
  for name in (columns_text .. ","):gmatch("([^,]*),") do
    name = name:match("^%s*(.-)%s*$")
    local ok, err = check_identifier(name, "column")
    if not ok then return nil, err end
    columns[#columns + 1] = name
  end
  return parts, columns
end

--- The COPY statement, every name quoted by the connection.
---@param conn coderunner.pg.Conn
---@param parts string[]     the table: { name } or { schema, name }
---@param columns string[]|nil
---@return string|nil sql
---@return coderunner.pg.Error|nil err
function M.copy_sql(conn, parts, columns)
  local function quote_all(names)
    local out = {}
    for i, name in ipairs(names) do
      local q, err = conn:escape_identifier(name)
      if not q then return nil, err end
      out[i] = q
    end
    return out
  end
  local target, err = quote_all(parts)
  if not target then return nil, err end
  local sql = "COPY " .. table.concat(target, ".")
  if columns then
    local quoted
    quoted, err = quote_all(columns)
    if not quoted then return nil, err end
    sql = sql .. " (" .. table.concat(quoted, ", ") .. ")"
  end
  return sql .. " FROM STDIN"
end

-- A raised marker: a bad record read by the iterator (COPY aborts, writes nothing).
local BAD_ROW = {}

-- Raises a bad record from inside copy_in's iterator (row: its number, when known).
local function raise(message, row)
  error({ [BAD_ROW] = true, kind = "invalid_input", message = message, row = row }, 0)
end

-- The error of a failed copy_in as the command prints it: the row in the
-- message and as `row` (`line N` in the server's context is COPY's Nth row).
local function row_error(err, common)
  local e = common.error_table(err)
  local has, where = pcall(function() return err.where end)
  where = has and type(where) == "string" and where or ""
  local row = where:match("^COPY [^\n]-, line (%d+)") or e.message:match("^copy_in row (%d+): ")
  if row then
    e.row = tonumber(row)
    e.message = ("row %s: %s"):format(row, (e.message:gsub("^copy_in row %d+: ", "")))
  end
  return e
end

--- Runs the load; returns the exit code.
---@param args table   table, file, columns?, format, header, url?, json?
---@param common coderunner.cli.Common
---@return integer
function M.load(args, common)
  local EXIT = common.EXIT
  local parts, columns = M.check_names(args.table, args.columns)
  if not parts then return common.fail(columns, EXIT.usage) end

  local f, oerr
  if args.file == "-" then
    f = io.stdin
  else
    f, oerr = io.open(args.file, "rb")
    if not f then return common.fail({ kind = "invalid_input", message = "cannot open " .. tostring(oerr) }) end
  end
  local function close_file()
    if f ~= io.stdin then f:close() end
  end

  local conn, cerr, exit_code = common.connect(args)
  if not conn then
    close_file()
    return common.fail(cerr, exit_code)
  end

  local ok, code = pcall(function()
    local sql, err = M.copy_sql(conn, parts, columns)
    if not sql then return common.fail(err, EXIT.usage) end
    local make = args.format == "tsv" and csv.text_reader or csv.reader
    local source = args.file == "-" and "stdin" or args.file
    local next_record = make(function()
      local line, rerr = f:read("L")
      if line == nil and rerr then  -- not the end: a read error (a directory, an I/O error)
        raise(("reading %s: %s"):format(source, rerr))
      end
      return line
    end, { null = pg.null })
    local target = table.concat(parts, ".")
    local expected = columns and #columns
    local rows, started = 0, pg.monotonic()
    local reporter = common.reporter()

    local skip_header = args.header
    reporter.start(("loading %s into %s"):format(source, target))
    local function next_row()
      if skip_header then
        skip_header = false
        local header, herr = next_record()
        if not header and herr then raise("header: " .. herr) end
      end
      local fields, line = next_record()
      if not fields then
        if line then raise(("row %d: %s"):format(rows + 1, line), rows + 1) end
        return nil
      end
      rows = rows + 1
      expected = expected or #fields
      if #fields ~= expected then
        raise(("row %d (line %d): %d field%s, expected %d"):format(rows, line, #fields, #fields == 1 and "" or "s",
          expected), rows)
      end
      -- counts at most once a second (the reporter's interval), the first after a second
      if rows % 100 == 0 and pg.monotonic() - started >= 1 then reporter.update("loaded", rows, nil, "rows") end
      return fields
    end

    local called, n, lerr = pcall(conn.copy_in, conn, sql, next_row)
    if not called then
      if type(n) == "table" and n[BAD_ROW] then
        n[BAD_ROW] = nil
        return common.fail(n)
      end
      error(n, 0)
    end
    if not n then return common.fail(row_error(lerr, common)) end
    local seconds = pg.monotonic() - started
    if common.json then
      common.emit({ table = target, file = source, format = args.format, columns = columns and common.array(columns),
        rows = n, duration_ms = seconds * 1000 })
    else
      reporter.finish(("loaded %d row%s into %s in %.2f s"):format(n, n == 1 and "" or "s", target, seconds))
    end
    return EXIT.ok
  end)
  conn:close()
  close_file()
  if not ok then error(code, 0) end
  return code
end

--- Adds the `load` command.
---@param parser table  the top-level argparse parser
---@param common coderunner.cli.Common
---@return table<string, fun(args: table): integer>
function M.register(parser, common)
  local cmd = parser:command("load", "Bulk-load a CSV or TSV file into a table (COPY ... FROM STDIN; "
    .. "all rows or none).")
  cmd:argument("table", "The table: name or schema.name (taken as written, quoted).")
  cmd:argument("file", "The file to read; - for stdin.")
  cmd:option("--columns", "The file's columns in order: a,b,c (default: every column of the table).")
  cmd:option("--format", "csv: PostgreSQL's CSV (quotes, empty unquoted field = NULL); tsv: PostgreSQL's "
    .. "text format (tabs, \\N = NULL, backslash escapes).", "csv"):choices({ "csv", "tsv" })
  cmd:flag("--header", "Skip the first row (column names).")
  return { load = function(args) return M.load(args, common) end }
end

return M
