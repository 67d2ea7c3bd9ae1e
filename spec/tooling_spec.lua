-- The build's tooling as users meet it: `make env` exports paths for the VM it
-- names only; `.busted` lets a bare `busted` in the checkout find the module of
-- the VM that runs it; for the 5.1 ABI the Makefile takes LuaJIT's headers
-- (even when LuaRocks hands it plain Lua 5.1's), and compat.h refuses headers
-- that lack what the core needs. (scripts/test-rocks.sh runs `luarocks make`.)
local ROOT = assert(io.popen("pwd")):read("*l")

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"::exit $?\""))
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("::exit (%d+)%s*$")), (out:gsub("::exit %d+%s*$", ""))
end

-- Runs `code` with lua5.4 and luajit in a clean environment after evaluating the
-- exports of `make env` for each VM in `order`, from another directory.
local function after_env(order, code)
  local evals = {}
  for _, vm in ipairs(order) do
    evals[#evals + 1] = ('eval "$(make -s -C %s env LUA=%s)"'):format(quote(ROOT), vm)
  end
  local script = ("cd /tmp && %s && for vm in lua5.4 luajit; do $vm -e %s; done"):format(
    table.concat(evals, " && "), quote(code))
  return sh("env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 sh -c " .. quote(script))
end

local PROBE = [[
local ok, pg = pcall(require, "coderunner.pg")
local vm = rawget(_G, "jit") and "luajit" or "lua5.4"
print(vm .. " " .. (ok and ("loads " .. package.searchpath("coderunner.pg", package.cpath)) or ("fails: " .. tostring(pg))))
]]

describe("make env", function()
  it("LUA=luajit leaves lua5.4 off the LuaJIT build", function()
    local code, out = after_env({ "luajit" }, PROBE)
    assert.equal(0, code, out)
    assert.matches("luajit loads " .. ROOT .. "/build/luajit/coderunner/pg.so", out, 1, true)
    assert.not_matches("lua5.4 loads " .. ROOT .. "/build/luajit", out, 1, true)
    assert.not_matches("undefined symbol", out, 1, true)
  end)

  it("both, in either order, give each VM its own build", function()
    for _, order in ipairs { { "luajit", "lua5.4" }, { "lua5.4", "luajit" } } do
      local code, out = after_env(order, PROBE)
      assert.equal(0, code, out)
      assert.matches("lua5.4 loads " .. ROOT .. "/build/lua5.4/coderunner/pg.so", out, 1, true)
      assert.matches("luajit loads " .. ROOT .. "/build/luajit/coderunner/pg.so", out, 1, true)
    end
  end)
end)

describe(".busted", function()
  it("lets busted in the checkout load the module of the VM that runs it", function()
    for _, vm in ipairs { "lua5.4", "luajit" } do
      local code, out = sh(("cd %s && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
        .. "%s /usr/bin/busted -o TAP spec/pg_helpers_spec.lua"):format(quote(ROOT), vm))
      assert.equal(0, code, out)
      assert.matches("ok 1 ", out, 1, true)
      assert.not_matches("not ok", out, 1, true)
    end
  end)
end)

describe("the 5.1 ABI", function()
  it("compiles against LuaJIT's headers when LuaRocks passes plain Lua 5.1's, in build/luajit", function()
    local code, out = sh(("make -s -n -B -C %s build LUA=/usr/bin/lua5.1 LUA_INCDIR=/usr/include/lua5.1"):format(
      quote(ROOT)))
    assert.equal(0, code, out)
    local luajit_inc = assert(io.popen("pkg-config --cflags-only-I luajit")):read("*l"):gsub("%s+$", "")
    assert.matches(luajit_inc .. " ", out, 1, true)
    assert.not_matches("-I/usr/include/lua5.1 ", out, 1, true)
    assert.matches(" build/luajit/obj/module.o ", out, 1, true)
    assert.not_matches("build/lua5.4", out, 1, true)
  end)

  it("refuses plain Lua 5.1 headers with a clear #error", function()
    local code, out = sh(("printf '#include \"compat.h\"\\n' | cc -std=c99 -fsyntax-only -I%s/csrc "
      .. "-I/usr/include/lua5.1 -x c -"):format(quote(ROOT)))
    assert.are_not.equal(0, code)
    assert.matches("needs LuaJIT 2.1's headers for the Lua 5.1 ABI", out, 1, true)
  end)

  it("installs each VM's module from its own build directory", function()
    local _, out = sh(("make -s -n -C %s install LUA=/usr/bin/lua5.1 LUA_INCDIR=/usr/include/lua5.1 "
      .. "INST_PREFIX=/nowhere"):format(quote(ROOT)))
    assert.matches("build/luajit/coderunner/pg.so /nowhere/lib/lua/5.1/coderunner/pg.so", out, 1, true)
    assert.matches("/nowhere/share/lua/5.1/coderunner/migrations/", out, 1, true)
    _, out = sh(("make -s -n -C %s install LUA=/usr/bin/lua5.4 LUA_INCDIR=/usr/include/lua5.4 "
      .. "INST_PREFIX=/nowhere"):format(quote(ROOT)))
    assert.matches("build/lua5.4/coderunner/pg.so /nowhere/lib/lua/5.4/coderunner/pg.so", out, 1, true)
  end)
end)
