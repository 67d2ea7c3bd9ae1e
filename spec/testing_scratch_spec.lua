-- docs/testing.md's setup and example, run as another project would run them: a
-- scratch project in a temporary directory outside the repository, its one spec
-- file made of the doc's code blocks (so the doc and this spec cannot drift),
-- busted run there against this checkout's modules. Once on the server in the
-- environment (a fresh database there), once with no server named at all (the
-- module starts and removes a throwaway cluster).
local LUA = os.getenv("CODERUNNER_LUA") or "lua5.4"
local ROOT = assert(io.popen("pwd")):read("*l")

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function read(path)
  local f = assert(io.open(path))
  local text = f:read("*a")
  f:close()
  return text
end

--- The doc's lua blocks marked <!-- setup: ... --> and <!-- example: ... -->.
local function doc_blocks()
  local doc = read(ROOT .. "/docs/testing.md")
  local setup = doc:match("<!%-%- setup:[^\n]*%-%->\n```lua\n(.-)```")
  local example = doc:match("<!%-%- example:[^\n]*%-%->\n```lua\n(.-)```")
  return setup, example
end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"::exit $?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("::exit (%d+)%s*$"))
  return code, out
end

--- Runs busted in a scratch project holding the doc's spec; env is prepended.
local function run_scratch(env)
  local dir = assert(io.popen("mktemp -d -t scratch-project.XXXXXX")):read("*l")
  assert(not dir:find(ROOT, 1, true), "the scratch project must be outside the repository")
  local setup, example = doc_blocks()
  assert(os.execute("mkdir -p " .. quote(dir .. "/spec")))
  local f = assert(io.open(dir .. "/spec/signup_spec.lua", "w"))
  f:write(setup, "\n", example)
  f:close()
  local code, out = sh(("cd %s && %s LUA_PATH=%s LUA_CPATH=%s %s /usr/bin/busted -o TAP"):format(quote(dir), env,
    quote(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"), quote(ROOT .. "/build/" .. LUA .. "/?.so;;"), LUA))
  os.execute("rm -rf " .. quote(dir))
  return code, out
end

describe("docs/testing.md in a scratch project", function()
  it("has a three-line setup", function()
    local setup = doc_blocks()
    assert.is_string(setup)
    local lines = 0
    for _ in setup:gmatch("[^\n]+") do lines = lines + 1 end
    assert.equal(3, lines)
    assert.matches('require "coderunner.testing"', setup, 1, true)
  end)

  it("passes on the server in the environment, and leaves no database behind", function()
    local pg = require "coderunner.pg"
    local conn = assert(pg.connect(""))
    local function test_dbs()
      return conn:query("SELECT count(*) AS n FROM pg_database WHERE datname LIKE 'coderunner\\_test\\_%'")[1].n
    end
    local before = test_dbs()
    local code, out = run_scratch("")
    assert.equal(0, code, out)
    assert.matches("ok 3 ", out, 1, true)
    assert.not_matches("not ok", out, 1, true)
    assert.equal(before, test_dbs())
    conn:close()
  end)

  it("passes with no server named, on a throwaway cluster it removes afterwards", function()
    local tmp = os.getenv("TMPDIR") or "/tmp"
    local function clusters()
      local _, out = sh("ls -d " .. quote(tmp) .. "/coderunner-testing.* 2>/dev/null | wc -l")
      return tonumber(out:match("%d+"))
    end
    local before = clusters()
    local code, out = run_scratch("env -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE -u PGUSER -u PGSERVICE "
      .. "-u PGPASSWORD -u DATABASE_URL")
    assert.equal(0, code, out)
    assert.matches("ok 3 ", out, 1, true)
    assert.equal(before, clusters())
  end)
end)
