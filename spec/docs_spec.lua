-- Keeps README.md and docs/ true: every ```lua block runs as a script,
-- in a fresh process of the same Lua VM, with DATABASE_URL naming a fresh,
-- migrated database; and the API reference and the mapping name every method.
local server = require "support.server"
local pg = require "coderunner.pg"
local db = require "coderunner.db"
local migrate = require "coderunner.migrate"

local DOCS = { "README.md", "docs/core.md", "docs/api.md", "docs/configuration.md", "docs/troubleshooting.md",
  "docs/mapping.md" }

local function read(path)
  local f = assert(io.open(path, "r"), "missing " .. path)
  local text = f:read("*a")
  f:close()
  return text
end

-- The ```lua blocks of a Markdown text: { code = ..., line = first line }.
local function lua_blocks(text)
  local blocks, current, n = {}, nil, 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if current then
      if line:match("^```%s*$") then
        blocks[#blocks + 1] = current
        current = nil
      else
        current.code[#current.code + 1] = line
      end
    elseif line:match("^```lua%s*$") then
      current = { code = {}, line = n + 1 }
    end
  end
  assert(current == nil, "unterminated ```lua block")
  return blocks
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs code in a child process; returns its exit status and output.
local function run(code, url)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code, "\n")
  f:close()
  local vm = os.getenv("CODERUNNER_LUA") or "lua5.4"
  local p = assert(io.popen(("DATABASE_URL=%s %s %s 2>&1; echo \"::exit $?\""):format(shell_quote(url), vm,
    path)))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  local status = tonumber(out:match("::exit (%d+)%s*$"))
  return status, out:gsub("::exit %d+%s*$", "")
end

local conninfo

setup(function()
  conninfo = server.fresh_database("coderunner_docs_spec")
  local pool = assert(pg.pool({ conninfo = conninfo, min = 0, max = 1 }))
  assert(migrate.up(pool, { dir = "migrations" }))
  pool:close()
end)

describe("docs examples", function()
  local total = 0
  for _, path in ipairs(DOCS) do
    local blocks = lua_blocks(read(path))
    total = total + #blocks
    for i, block in ipairs(blocks) do
      it(("%s block %d (line %d) runs"):format(path, i, block.line), function()
        local status, out = run(table.concat(block.code, "\n"), conninfo)
        assert.equal(0, status, ("%s:%d failed:\n%s"):format(path, block.line, out))
      end)
    end
  end

  it("there are examples to run", function()
    assert.is_true(total >= 12, "only " .. total .. " blocks found")
    assert.is_true(#lua_blocks(read("docs/api.md")) >= 8)
  end)

  it("a failing example is noticed (the runner is not vacuous)", function()
    local status, out = run('assert(false, "this example is wrong")', conninfo)
    assert.not_equal(0, status)
    assert.matches("this example is wrong", out, 1, true)
  end)
end)

describe("docs coverage", function()
  local svc
  setup(function()
    svc = assert(db.new({ url = conninfo, pool = { min = 0, max = 1 } }))
  end)
  teardown(function() svc:close() end)

  local METHODS = { "create_user", "get_user_by_id", "get_user_by_email", "update_user", "delete_user", "get_users",
    "create_project", "get_project_by_id", "get_projects_by_user_id", "update_project", "delete_project",
    "get_project_with_user", "create_deployment", "get_deployment_by_id", "get_deployments_by_project_id",
    "update_deployment_status", "update_deployment", "delete_deployment", "get_deployment_with_details",
    "get_deployments_by_status", "get_running_deployment_count_by_user", "execute_in_transaction",
    "begin_transaction", "commit_transaction", "rollback_transaction", "transaction", "health",
    "get_system_stats", "close" }

  it("api.md documents every method of the service", function()
    local api = read("docs/api.md")
    for _, m in ipairs(METHODS) do
      assert.is_function(svc[m], m)
      assert.matches("`" .. m .. "(", api, 1, true)
    end
    assert.matches("`db.new(config)`", api, 1, true)
    assert.matches("`db.instance()`", api, 1, true)
  end)

  it("mapping.md maps each TypeScript method to a method that exists", function()
    local mapping = read("docs/mapping.md")
    local mapped = {}
    for ts, lua in mapping:gmatch("\n| `([%a%.]+)%(.-| `([%w_%.:]+)%(") do
      mapped[#mapped + 1] = ts
      if not lua:find("[%.:]") then assert.is_function(svc[lua], ts .. " -> " .. lua) end
    end
    assert.is_true(#mapped >= 30, "mapping rows: " .. #mapped)
    for _, m in ipairs(METHODS) do
      assert.matches("| `" .. m .. "(", mapping, 1, true)
    end
  end)
end)

-- The layer picture in README.md and docs/core.md's "Source layout" name every
-- file of the core and of the Lua layers, so a new file cannot go unmentioned.
describe("docs layer pictures", function()
  local lfs = require "lfs"

  local function files(dir, suffix, prefix, out)
    out = out or {}
    for name in lfs.dir(dir) do
      local path = dir .. "/" .. name
      if name ~= "." and name ~= ".." then
        if lfs.attributes(path, "mode") == "directory" then
          files(path, suffix, (prefix or "") .. name .. "/", out)
        elseif name:sub(-#suffix) == suffix then
          out[#out + 1] = (prefix or "") .. name
        end
      end
    end
    table.sort(out)
    return out
  end

  -- The fenced blocks of a Markdown text, joined.
  local function fenced(text)
    local parts = {}
    for block in text:gmatch("\n```[^\n]*\n(.-)\n```") do parts[#parts + 1] = block end
    return table.concat(parts, "\n")
  end

  it("README.md names every C file and every Lua module", function()
    local picture = fenced(read("README.md"))
    for _, c in ipairs(files("csrc", ".c")) do
      assert.is_truthy(picture:find("%f[%w_]" .. c:gsub("%.", "%%.")), "README.md's layer picture lacks csrc/" .. c)
    end
    for _, l in ipairs(files("lua/coderunner", ".lua")) do
      local dir, base = l:match("^(.-)([^/]+)%.lua$")
      local found = picture:find(l, 1, true) or picture:find("%f[%w_]" .. base .. "[,}]")
        or (dir ~= "" and picture:find("lua/coderunner/" .. dir, 1, true))
      assert.is_truthy(found, "README.md's layer picture lacks lua/coderunner/" .. l)
    end
  end)

  it("docs/core.md's source layout names every C file, in the Makefile's order", function()
    local layout = read("docs/core.md"):match("## Source layout(.-)\n## ") or read("docs/core.md"):match("## Source layout(.*)$")
    layout = fenced(layout)
    local make = read("Makefile")
    local order = {}
    for _, var in ipairs { "PURE_SRC", "PG_SRC", "LUA_SRC" } do
      local list = make:match("\n" .. var .. "%s*:=%s*(.-)\n[%u_]+%s*:=")
      assert.is_truthy(list, var)
      for f in list:gmatch("csrc/([%w_]+)%.c") do order[#order + 1] = f end
    end
    assert.equal(#files("csrc", ".c"), #order, "every csrc/*.c is built")
    local last = 0
    for i, f in ipairs(order) do
      -- each file after the one the Makefile builds before it
      local at = layout:find("%f[%w_]" .. f .. "%f[^%w_]", last + 1)
      assert.is_truthy(at, "docs/core.md's source layout lacks " .. f .. ", or names it before "
        .. (order[i - 1] or "the start"))
      last = at
    end
  end)
end)
