-- types/coderunner/pg.lua (the LuaCATS stub of the C module) against the module
-- as it runs: the functions and fields of `pg`, the methods of connections,
-- transactions and pools (their metatables), the option names the C code reads
-- (a table that records every key asked of it), and the keys of pool:stats().
-- Both ways: nothing declared that does not exist, nothing existing undeclared.
local pg = require "coderunner.pg"

local function read(path)
  local f = assert(io.open(path))
  local text = f:read("*a")
  f:close()
  return text
end

--- { classes = { [name] = { parent =, fields = set, methods = set } }, functions = set }
local function parse_stub()
  local stub = { classes = {}, functions = {} }
  local by_local, pending = {}, nil
  local current
  for line in (read("types/coderunner/pg.lua") .. "\n"):gmatch("([^\n]*)\n") do
    local cname, parent = line:match("^%-%-%-@class%s+([%w%._]+)%s*:?%s*([%w%._]*)")
    if cname then
      current = { parent = parent ~= "" and parent or nil, fields = {}, methods = {} }
      stub.classes[cname] = current
      pending = cname
    else
      local field = line:match("^%-%-%-@field%s+([%w_]+)")
      if field and current then current.fields[field] = true end
      local var = line:match("^local%s+([%w_]+)%s*=%s*{}")
      if var and pending then by_local[var] = pending end
      if not line:match("^%-%-%-") then current = nil end
      if var then pending = nil end
      local owner, name = line:match("^function%s+([%w_]+)[%.:]([%w_]+)")
      if owner == "pg" then
        stub.functions[name] = true
      elseif owner then
        local class = assert(by_local[owner], "stub: no ---@class for local " .. owner)
        stub.classes[class].methods[name] = true
      end
    end
  end
  return stub
end

local function methods_of(stub, class)
  local set = {}
  while class do
    local c = assert(stub.classes[class], "stub: no class " .. class)
    for m in pairs(c.methods) do set[m] = true end
    class = c.parent
  end
  return set
end

local function runtime_methods(obj)
  local set = {}
  local index = getmetatable(obj).__index
  for k, v in pairs(index) do
    if type(v) == "function" then set[k] = true end
  end
  return set
end

local function sorted(set)
  local t = {}
  for k in pairs(set) do t[#t + 1] = k end
  table.sort(t)
  return t
end

--- Asserts that the two sets hold the same names, naming what differs.
local function same(what, declared, actual)
  local missing, undeclared = {}, {}
  for k in pairs(declared) do if not actual[k] then missing[#missing + 1] = k end end
  for k in pairs(actual) do if not declared[k] then undeclared[#undeclared + 1] = k end end
  table.sort(missing)
  table.sort(undeclared)
  assert.are.same({}, missing, what .. ": declared in types/coderunner/pg.lua but absent at run time: "
    .. table.concat(missing, ", "))
  assert.are.same({}, undeclared, what .. ": present at run time but not declared in types/coderunner/pg.lua: "
    .. table.concat(undeclared, ", "))
end

--- A table that records every key read from it (the C code reads options with
--- lua_getfield, which consults __index for absent keys).
local function recorder()
  local seen = {}
  return setmetatable({}, { __index = function(_, k) seen[k] = true end }), seen
end

describe("types/coderunner/pg.lua", function()
  local stub = parse_stub()

  it("declares every function of the module, and no other", function()
    local actual = {}
    for k, v in pairs(pg) do
      if type(v) == "function" then actual[k] = true end
    end
    same("pg functions", stub.functions, actual)
  end)

  it("declares every other field of the module", function()
    local actual = {}
    for k, v in pairs(pg) do
      if type(v) ~= "function" then actual[k] = true end
    end
    same("pg fields", stub.classes["coderunner.pg"].fields, actual)
  end)

  it("declares the methods of connections, transactions and pools", function()
    local conn = assert(pg.connect(""))
    same("Conn methods", methods_of(stub, "coderunner.pg.Conn"), runtime_methods(conn))
    local pool = assert(pg.pool { max = 1 })
    same("Pool methods", methods_of(stub, "coderunner.pg.Pool"), runtime_methods(pool))
    local tx = assert(pool:begin())
    same("Tx methods", methods_of(stub, "coderunner.pg.Tx"), runtime_methods(tx))
    assert(tx:rollback())
    pool:close()
    -- last_error appears once a connection failed; name on a named pool
    local down = assert(pg.pool { conninfo = "host=127.0.0.1 port=1 connect_timeout=1", max = 1,
      name = "types_stub_down" })
    assert.is_nil(down:query("SELECT 1"))
    local keys = {}
    for k in pairs(down:stats()) do keys[k] = true end
    down:close()
    same("PoolStats fields", stub.classes["coderunner.pg.PoolStats"].fields, keys)
    conn:close()
  end)

  it("declares the options pg.connect, pg.pool and transactions read", function()
    local opts, seen = recorder()
    local conn = assert(pg.connect("", opts))
    conn:close()
    same("ConnectOptions", stub.classes["coderunner.pg.ConnectOptions"].fields, seen)

    opts, seen = recorder()
    local pool = assert(pg.pool(opts))
    same("PoolOptions", stub.classes["coderunner.pg.PoolOptions"].fields, seen)

    local tx_seen = {}
    for _, call in ipairs { "begin", "transaction" } do
      local o, s = recorder()
      if call == "begin" then
        assert(assert(pool:begin(o)):rollback())
      else
        assert(pool:transaction(function() end, o))
      end
      for k in pairs(s) do tx_seen[k] = true end
    end
    same("TxOptions", stub.classes["coderunner.pg.TxOptions"].fields, tx_seen)
    pool:close()
  end)

  it("lists what it compares (a sanity check of the parser)", function()
    assert.is_true(#sorted(stub.functions) >= 10)
    assert.is_true(stub.classes["coderunner.pg.Pool"].methods.stats)
    assert.is_true(methods_of(stub, "coderunner.pg.Conn").query)
  end)
end)
