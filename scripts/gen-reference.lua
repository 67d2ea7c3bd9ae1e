-- Generates docs/reference/*.md from the LuaCATS annotations of the code:
-- `---` description lines, `---@param`, `---@return`, `---@class`, `---@field`
-- and `---@alias` over each public function (`function M.f`, `function C:m`, at
-- the start of a line, name not starting with "_").
--
--   lua5.4 scripts/gen-reference.lua OUTDIR FILE...          writes OUTDIR/<module>.md
--   lua5.4 scripts/gen-reference.lua --check OUTDIR FILE...  fails when a page is
--       missing or out of date, or a public function has no annotation at all
--
-- A file's module name: its `---@meta name` (the stub of the C module), else its
-- path under lua/ (lua/coderunner/migrate/init.lua is coderunner.migrate).
local check = arg[1] == "--check"
local first = check and 2 or 1
local outdir = assert(arg[first], "usage: gen-reference.lua [--check] OUTDIR FILE...")
local files = {}
for i = first + 1, #arg do files[#files + 1] = arg[i] end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function module_name(path, text)
  local meta = text:match("^%-%-%-@meta%s+([%w%._]+)") or text:match("\n%-%-%-@meta%s+([%w%._]+)")
  if meta then return meta end
  local rel = path:match("lua/(.-)%.lua$") or path:match("([^/]+)%.lua$")
  return (rel:gsub("/init$", ""):gsub("/", "."))
end

local function lines_of(text)
  local t = {}
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do t[#t + 1] = line end
  return t
end

--- Splits "T rest" where T is a LuaCATS type that may hold spaces inside
--- {...}, (...), <...> and a function's ": R" result: returns T, rest.
local function read_type(s)
  local depth, i, n = 0, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c == "{" or c == "(" or c == "<" then
      depth = depth + 1
    elseif c == "}" or c == ")" or c == ">" then
      depth = depth - 1
      if depth == 0 and c == ")" then
        local colon = s:match("^%s*:%s*", i + 1)
        if colon then i = i + #colon end
      end
    elseif c:match("%s") and depth == 0 then
      break
    end
    i = i + 1
  end
  return s:sub(1, i - 1), (s:sub(i):gsub("^%s+", ""))
end

local function md_escape(s)
  return (s:gsub("|", "\\|"))
end

-- The file's leading comment (its header), without the comment markers.
local function header(lines)
  local out = {}
  for _, line in ipairs(lines) do
    if not line:match("^%-%-") then break end
    if not line:match("^%-%-%-@meta") then -- the stub's marker line is not prose
      out[#out + 1] = (line:gsub("^%-%-%-?%s?", ""))
    end
  end
  return table.concat(out, "\n"):gsub("^%s+", ""):gsub("%s+$", "")
end

--- Parses the annotations of one file into { classes, aliases, functions, undocumented }.
local function parse(lines)
  local doc = { classes = {}, aliases = {}, functions = {}, undocumented = {} }
  local block = {} -- the `---` lines seen since the last non-comment line
  local class -- the class whose fields are being read
  local alias
  for lineno, line in ipairs(lines) do
    local ann = line:match("^%s*%-%-%-(.*)$")
    if ann then
      local tag, rest = ann:match("^@(%w+)%s*(.*)$")
      if tag == "class" then
        local name, parent = rest:match("^([%w%._]+)%s*:?%s*([%w%._%[%]]*)")
        local desc = rest:match("^[%w%._]+%s*:?%s*[%w%._%[%]]*%s+(.+)$")
        class = { name = name, parent = parent ~= "" and parent or nil, fields = {},
          desc = table.concat(block, " "), note = desc }
        doc.classes[#doc.classes + 1] = class
        block, alias = {}, nil
      elseif tag == "field" and class then
        local name, after = rest:match("^([%w_%[%]\"]+%??)%s+(.*)$")
        local ty, desc = read_type(after or "")
        class.fields[#class.fields + 1] = { name = name or rest, type = ty, desc = desc }
      elseif tag == "alias" then
        local name, ty = rest:match("^([%w%._]+)%s*(.*)$")
        alias = { name = name, type = ty, values = {}, desc = table.concat(block, " ") }
        doc.aliases[#doc.aliases + 1] = alias
        block, class = {}, nil
      elseif tag == nil and ann:match("^|") and alias then
        local value, desc = ann:match("^|%s*(%S+)%s*#?%s*(.*)$")
        alias.values[#alias.values + 1] = { value = value, desc = desc }
      elseif tag then
        block[#block + 1] = "@" .. tag .. " " .. rest
      else
        block[#block + 1] = (ann:gsub("^%s", ""))
        class, alias = nil, nil
      end
    else
      local owner, sep, name, params = line:match("^function%s+([%w_%.]+)([%.:])([%w_]+)%s*(%b())")
      if owner and not name:match("^_") then
        local f = { owner = owner, sep = sep, name = name, params = params, line = lineno,
          desc = {}, param = {}, ret = {} }
        for _, b in ipairs(block) do
          local tag, rest = b:match("^@(%w+)%s*(.*)$")
          if tag == "param" then
            local pname, after = rest:match("^([%w_%.]+%??)%s+(.*)$")
            local ty, desc = read_type(after or "")
            f.param[#f.param + 1] = { name = pname or rest, type = ty, desc = desc }
          elseif tag == "return" then
            local ty, after = read_type(rest)
            local rname, desc = after:match("^([%w_]*)%s*(.*)$")
            f.ret[#f.ret + 1] = { type = ty, name = rname or "", desc = desc or "" }
          elseif tag == nil then
            f.desc[#f.desc + 1] = b
          end
        end
        if #block == 0 then doc.undocumented[#doc.undocumented + 1] = f end
        doc.functions[#doc.functions + 1] = f
      end
      if not line:match("^%s*$") or #block > 0 then block = {} end
      class, alias = nil, nil
    end
  end
  return doc
end

local function render(name, path, lines, doc)
  local out = {}
  local function w(s) out[#out + 1] = s end
  w(("# `%s`"):format(name))
  w("")
  w(("<!-- generated by scripts/gen-reference.lua from %s: run `make docs`, do not edit -->"):format(path))
  w("")
  -- a table of { name, type, desc } rows under a header naming the first column
  local function rows(column, items)
    if #items == 0 then return end
    w(("| %s | type | |"):format(column))
    w("|---|---|---|")
    for _, it in ipairs(items) do
      w(("| `%s` | `%s` | %s |"):format(md_escape(it.name), md_escape(it.type), md_escape(it.desc)))
    end
    w("")
  end
  local h = header(lines)
  if h ~= "" then
    w(h)
    w("")
  end
  if #doc.functions > 0 then
    w("## Functions")
    w("")
    for _, f in ipairs(doc.functions) do
      w(("### `%s%s%s%s`"):format(f.owner, f.sep, f.name, f.params))
      w("")
      if #f.desc > 0 then
        w(table.concat(f.desc, "\n"))
        w("")
      end
      rows("parameter", f.param)
      if #f.ret > 0 then
        w("Returns:")
        w("")
        for _, r in ipairs(f.ret) do
          local rest = (r.name ~= "" and " " .. r.name or "") .. (r.desc ~= "" and " — " .. r.desc or "")
          w(("- `%s`%s"):format(r.type, rest))
        end
        w("")
      end
    end
  end
  if #doc.classes > 0 then
    w("## Types")
    w("")
    for _, c in ipairs(doc.classes) do
      w(("### `%s`%s"):format(c.name, c.parent and (" (extends `" .. c.parent .. "`)") or ""))
      w("")
      if c.desc ~= "" then w(c.desc); w("") end
      if c.note then w(c.note); w("") end
      rows("field", c.fields)
    end
  end
  if #doc.aliases > 0 then
    w("## Aliases")
    w("")
    for _, a in ipairs(doc.aliases) do
      w(("### `%s`%s"):format(a.name, a.type ~= "" and (" = `" .. md_escape(a.type) .. "`") or ""))
      w("")
      if a.desc ~= "" then w(a.desc); w("") end
      for _, v in ipairs(a.values) do
        w(("- `%s`%s"):format(v.value, v.desc ~= "" and (" — " .. v.desc) or ""))
      end
      if #a.values > 0 then w("") end
    end
  end
  return table.concat(out, "\n"):gsub("\n+$", "") .. "\n"
end

local pages, problems = {}, {}
for _, path in ipairs(files) do
  local text = read(path)
  local lines = lines_of(text)
  local name = module_name(path, text)
  local doc = parse(lines)
  for _, f in ipairs(doc.undocumented) do
    problems[#problems + 1] = ("%s:%d: public function %s%s%s has no annotation"):format(path, f.line, f.owner,
      f.sep, f.name)
  end
  pages[#pages + 1] = { file = name .. ".md", text = render(name, path, lines, doc), name = name, path = path }
end
table.sort(pages, function(a, b) return a.name < b.name end)
local index = { "# API reference", "",
  "<!-- generated by scripts/gen-reference.lua: run `make docs`, do not edit -->", "",
  "Generated from the LuaCATS annotations (`---@param`, `---@return`, `---@class`) of the code and of",
  "the stub of the C module (`types/coderunner/pg.lua`). The guides are one level up (`docs/`).", "" }
for _, p in ipairs(pages) do index[#index + 1] = ("- [`%s`](%s) — `%s`"):format(p.name, p.file, p.path) end
pages[#pages + 1] = { file = "README.md", text = table.concat(index, "\n") .. "\n" }

local status = 0
if not check then os.execute("mkdir -p '" .. outdir .. "' && rm -f '" .. outdir .. "'/*.md") end
for _, p in ipairs(pages) do
  local target = outdir .. "/" .. p.file
  if check then
    local f = io.open(target, "rb")
    local have = f and f:read("a")
    if f then f:close() end
    if have ~= p.text then
      problems[#problems + 1] = target .. " is out of date: run `make docs`"
    end
  else
    local f = assert(io.open(target, "wb"))
    f:write(p.text)
    f:close()
  end
end
if check then
  -- pages for modules that no longer exist
  local ls = io.popen("ls '" .. outdir .. "' 2>/dev/null")
  local known = {}
  for _, p in ipairs(pages) do known[p.file] = true end
  for file in ls:lines() do
    if file:match("%.md$") and not known[file] then
      problems[#problems + 1] = outdir .. "/" .. file .. " documents no module any more: run `make docs`"
    end
  end
  ls:close()
end
for _, p in ipairs(problems) do io.stderr:write(p, "\n") end
if #problems > 0 then status = 1 end
if not check and status == 0 then print(("gen-reference: %d pages in %s"):format(#pages, outdir)) end
os.exit(status)
