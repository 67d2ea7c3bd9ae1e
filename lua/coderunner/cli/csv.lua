-- Readers for the two file formats `coderunner-db load` takes, in pure Lua and
-- streaming: each reader pulls one line at a time from a `read` function (a
-- line with its newline, nil at the end, as file:read("L")) and returns one
-- record per call, so a file is never held whole in memory.
--
--   csv:  PostgreSQL's CSV format (FORMAT csv): fields separated by commas,
--         a field may be quoted with "..." (commas, newlines and doubled ""
--         inside), an empty unquoted field is NULL, a quoted empty one ("")
--         the empty string; lines end with \n or \r\n.
--   text: PostgreSQL's text format, what COPY ... TO STDOUT writes (the `tsv`
--         of the command line): fields separated by tabs, \N is NULL,
--         backslash escapes (\t \n \r \b \f \v \\, octal \NNN, hex \xHH);
--         a line `\.` ends the data.
--
-- A reader is a function: next() -> fields, line (the array of values, NULL as
-- opts.null, and the line its record starts on) | nil at the end | nil, message.
local csv = {}

--- The value for NULL when opts.null is not given.
csv.NULL = setmetatable({}, { __tostring = function() return "NULL" end })

--- The default limit on one record's size in bytes (a quote that is never
--- closed would otherwise take the rest of the file).
csv.MAX_RECORD = 64 * 1024 * 1024

---@alias coderunner.cli.csv.Reader fun(): (any[]|nil), (integer|string|nil)

--- A reader of PostgreSQL's CSV format.
---@param read fun(): string|nil  the next line with its newline, nil at the end
---@param opts? {null?: any, delimiter?: string, max_record?: integer}
---@return coderunner.cli.csv.Reader
function csv.reader(read, opts)
  opts = opts or {}
  local null = opts.null == nil and csv.NULL or opts.null
  local delim = opts.delimiter or ","
  local max = opts.max_record or csv.MAX_RECORD
  assert(#delim == 1 and not delim:find('["\r\n]'),
    "csv.reader: the delimiter is one character, not a quote or newline")
  local special = "[" .. delim:gsub("%W", "%%%0") .. '"\r\n]'
  local line_no = 0

  return function()
    local line = read()
    if line == nil then return nil end
    line_no = line_no + 1
    local first = line_no
    local fields, parts, size = {}, {}, 0
    local quoted, in_quotes, pos = false, false, 1

    local function add(s)
      if s ~= "" then
        parts[#parts + 1] = s
        size = size + #s
      end
    end
    local function finish_field()
      local value = table.concat(parts)
      if value == "" and not quoted then value = null end
      fields[#fields + 1] = value
      parts, quoted = {}, false
    end

    while true do
      if size > max then
        return nil, ("line %d: a record longer than %d bytes (a quote that is never closed?)"):format(first, max)
      end
      if in_quotes then
        local i = line:find('"', pos, true)
        if not i then
          add(line:sub(pos))
          line = read()
          if line == nil then
            return nil, ("line %d: a quoted field that is never closed"):format(first)
          end
          line_no, pos = line_no + 1, 1
        elseif line:sub(i + 1, i + 1) == '"' then
          add(line:sub(pos, i))  -- "" inside quotes: one quote
          pos = i + 2
        else
          add(line:sub(pos, i - 1))
          in_quotes, pos = false, i + 1
        end
      else
        local i = line:find(special, pos)
        if not i then  -- the last line, without a newline
          add(line:sub(pos))
          finish_field()
          return fields, first
        end
        local c = line:sub(i, i)
        add(line:sub(pos, i - 1))
        if c == '"' then
          in_quotes, quoted, pos = true, true, i + 1
        elseif c == delim then
          finish_field()
          pos = i + 1
        elseif c == "\n" or line:sub(i + 1) == "\n" or i == #line then
          finish_field()
          return fields, first
        else
          return nil, ("line %d: a carriage return outside quotes (quote the field)"):format(line_no)
        end
      end
    end
  end
end

local ESCAPES = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", v = "\v" }

-- One field of the text format with its escapes undone.
local function unescape(s)
  if not s:find("\\", 1, true) then return s end
  local out, pos = {}, 1
  while true do
    local i = s:find("\\", pos, true)
    if not i then
      out[#out + 1] = s:sub(pos)
      return table.concat(out)
    end
    out[#out + 1] = s:sub(pos, i - 1)
    local c = s:sub(i + 1, i + 1)
    local oct = s:match("^[0-7][0-7]?[0-7]?", i + 1)
    local hex = c == "x" and s:match("^%x%x?", i + 2)
    if c == "" then
      return nil, "a backslash at the end of a field"
    elseif oct then
      out[#out + 1] = string.char(tonumber(oct, 8) % 256)
      pos = i + 1 + #oct
    elseif hex then
      out[#out + 1] = string.char(tonumber(hex, 16))
      pos = i + 2 + #hex
    else
      out[#out + 1] = ESCAPES[c] or c
      pos = i + 2
    end
  end
end

--- A reader of PostgreSQL's text format (tab-separated, \N for NULL).
---@param read fun(): string|nil  the next line with its newline, nil at the end
---@param opts? {null?: any}
---@return coderunner.cli.csv.Reader
function csv.text_reader(read, opts)
  opts = opts or {}
  local null = opts.null == nil and csv.NULL or opts.null
  local line_no = 0
  local ended = false
  return function()
    if ended then return nil end
    local line = read()
    if line == nil then return nil end
    line_no = line_no + 1
    line = line:gsub("\r?\n$", "")
    if line == "\\." then
      ended = true
      return nil
    end
    local fields = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do
      if field == "\\N" then
        fields[#fields + 1] = null
      else
        local value, err = unescape(field)
        if not value then return nil, ("line %d, field %d: %s"):format(line_no, #fields + 1, err) end
        fields[#fields + 1] = value
      end
    end
    return fields, line_no
  end
end

--- A `read` function over a string (for tests and small inputs).
---@param text string
---@return fun(): string|nil
function csv.lines_of(text)
  local pos = 1
  return function()
    if pos > #text then return nil end
    local i = text:find("\n", pos, true) or #text
    local line = text:sub(pos, i)
    pos = i + 1
    return line
  end
end

return csv
