-- The file source of the migration runner: lists a directory's NNN_name.sql
-- files (lua-filesystem, no process forked), reads them, splits a file into its
-- up and down sections and a section into statements, and creates new files.
-- Knows nothing of the database.
local lfs = require "lfs"
local pg = require "coderunner.pg"

local files = {}

local function fail(fmt, ...)
  return nil, pg.error { kind = "invalid_input", message = fmt:format(...) }
end

--- True when path is a directory.
---@param path string
---@return boolean
function files.is_dir(path)
  return lfs.attributes(path, "mode") == "directory"
end

--- Creates dir and its missing parents (as `mkdir -p` would).
---@param dir string
---@return true|nil ok
---@return coderunner.pg.Error|nil err
function files.make_dir(dir)
  if files.is_dir(dir) then return true end
  local prefix = dir:sub(1, 1) == "/" and "/" or ""
  local path = ""
  for part in dir:gmatch("[^/]+") do
    path = path == "" and prefix .. part or path .. "/" .. part
    if not files.is_dir(path) then
      local ok, msg = lfs.mkdir(path)
      if not ok and not files.is_dir(path) then return fail("cannot create %s: %s", path, tostring(msg)) end
    end
  end
  return true
end

-- path made absolute (against the working directory) with "." and ".." folded.
local function normalize(path)
  if path:sub(1, 1) ~= "/" then path = (lfs.currentdir() or ".") .. "/" .. path end
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return "/" .. table.concat(parts, "/")
end

--- Where a folder shipped with the modules may be, in order: installed,
--- `<luadir>/coderunner/<name>`; in a checkout, `<root>/<name>` (the modules
--- being in `<root>/lua/coderunner/`). Found from where `coderunner.db` loads.
---@param name string   e.g. "migrations"
---@param path? string  the Lua search path (default package.path)
---@return string[] candidates  absolute paths (empty when coderunner.db is not on the path)
function files.beside_modules(name, path)
  local found = package.searchpath and package.searchpath("coderunner.db", path or package.path)
  local here = found and found:match("^(.*)/[^/]*$")
  if not here then return {} end
  return { normalize(here .. "/" .. name), normalize(here .. "/../../" .. name) }
end

--- The names of the entries of dir; nil when dir is not a directory.
---@param dir string
---@return string[]|nil
function files.list(dir)
  if not files.is_dir(dir) then return nil end
  local names = {}
  for name in lfs.dir(dir) do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  return names
end

--- The bytes of a file, or nil, message.
---@param path string
---@return string|nil text
---@return string|nil message
function files.read(path)
  local f, msg = io.open(path, "rb")
  if not f then return nil, msg end
  local text = f:read("*a")
  f:close()
  if not text then return nil, path .. ": could not be read" end
  return text
end

---@class coderunner.migrate.File
---@field version integer
---@field name string
---@field filename string
---@field path string
---@field digits integer  width of the version in the file name

--- The migration files of dir, sorted by version.
---@param dir string
---@return coderunner.migrate.File[]|nil files
---@return coderunner.pg.Error|nil err
function files.scan(dir)
  local names = files.list(dir)
  if not names then return fail("migrations directory %s not found", dir) end
  table.sort(names)
  local found, seen = {}, {}
  for _, filename in ipairs(names) do
    local digits, name = filename:match("^(%d+)_([%w_%-]+)%.sql$")
    if digits then
      local version = tonumber(digits)
      if seen[version] then
        return fail("two migrations have version %d: %s and %s", version, seen[version].filename, filename)
      end
      local f = { version = version, name = name, filename = filename, path = dir .. "/" .. filename,
                  digits = #digits }
      seen[version] = f
      found[#found + 1] = f
    elseif filename:match("%.sql$") then
      return fail("%s/%s: a migration file is named NNN_name.sql (digits, '_', then "
        .. "letters, digits, '_' or '-')", dir, filename)
    end
  end
  table.sort(found, function(a, b) return a.version < b.version end)
  return found
end

---@class coderunner.migrate.Section
---@field sql string          the section's SQL
---@field text string         the same without its surrounding blank lines (what a dry run shows)
---@field line integer        the marker's line in the file
---@field transaction boolean false after `transaction:false`

--- Splits a migration's text into its sections: { up = Section, down? = Section }.
---@param text string
---@param path string  for the messages
---@return {up: coderunner.migrate.Section, down?: coderunner.migrate.Section}|nil sections
---@return coderunner.pg.Error|nil err
function files.parse(text, path)
  local sections, current = {}, nil
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local marker, rest = line:match("^%-%-%s*migrate:(%S*)(.*)$")
    if marker then
      if marker ~= "up" and marker ~= "down" then
        return fail("%s:%d: unknown marker 'migrate:%s' (use -- migrate:up or -- migrate:down)", path, n, marker)
      end
      if sections[marker] then
        return fail("%s:%d: a second '-- migrate:%s' marker", path, n, marker)
      end
      current = { line = n, transaction = true, lines = {} }
      for option in rest:gmatch("%S+") do
        if option == "transaction:false" then
          current.transaction = false
        elseif option ~= "transaction:true" then
          return fail("%s:%d: unknown option '%s' after migrate:%s (known: transaction:false)", path, n, option,
            marker)
        end
      end
      sections[marker] = current
    elseif current then
      current.lines[#current.lines + 1] = line
    elseif not (line:match("^%s*$") or line:match("^%s*%-%-")) then
      return fail("%s:%d: SQL before the '-- migrate:up' marker", path, n)
    end
  end
  if not sections.up then return fail("%s: no '-- migrate:up' marker", path) end
  for _, s in pairs(sections) do
    s.sql = table.concat(s.lines, "\n")
    s.lines = nil
    s.text = s.sql:gsub("^%s*\n", ""):gsub("%s+$", "")
  end
  return sections
end

--- Splits a section into statements, each with `file_line`, its line in the file.
---@param section coderunner.migrate.Section
---@param path string
---@return table[]|nil statements  { sql, line, file_line }
---@return coderunner.pg.Error|nil err
function files.statements(section, path)
  local stmts, err = pg.split_sql(section.sql)
  if not stmts then
    return fail("%s:%d: %s", path, section.line, tostring(err and err.message or err))
  end
  for _, st in ipairs(stmts) do st.file_line = section.line + st.line end
  return stmts
end

local TEMPLATE = [[
-- %s
-- Applied in a transaction. For a statement that cannot run in one (CREATE
-- INDEX CONCURRENTLY), write `-- migrate:up transaction:false` and keep that
-- migration to that one statement.

-- migrate:up


-- migrate:down

]]

--- Writes the next migration file of dir (created when missing), named after slug.
---@param dir string
---@param slug string  already reduced to letters, digits and '_'
---@return {version: integer, name: string, file: string}|nil report
---@return coderunner.pg.Error|nil err
function files.create(dir, slug)
  local ok, err = files.make_dir(dir)
  if not ok then return nil, err end
  local found
  found, err = files.scan(dir)
  if not found then return nil, err end
  local version, width = 1, 3
  for _, f in ipairs(found) do
    if f.version >= version then version = f.version + 1 end
    if f.digits > width then width = f.digits end
  end
  local path = ("%s/%0" .. width .. "d_%s.sql"):format(dir, version, slug)
  local f, msg = io.open(path, "wb")
  if not f then return fail("create: %s", tostring(msg)) end
  f:write(TEMPLATE:format((slug:gsub("_", " "))))
  f:close()
  return { version = version, name = slug, file = path }
end

return files
