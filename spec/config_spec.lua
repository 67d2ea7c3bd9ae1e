-- config.resolve: where the connection and the pool options come from, and the
-- errors for bad values (naming the variable, never the password).
local config = require "coderunner.config"

-- A getenv over a fixed table, so the specs do not depend on the real environment.
local function env(t)
  return function(name) return t[name] end
end

local function fails(overrides, vars, pattern)
  local cfg, err = config.resolve(overrides, env(vars))
  assert.is_nil(cfg)
  assert.equal("invalid_input", err.kind)
  assert.matches(pattern, tostring(err))
  return err
end

describe("config.resolve", function()
  it("uses the defaults and libpq's PG* environment when nothing is set", function()
    local cfg = assert(config.resolve(nil, env {}))
    assert.equal("", cfg.conninfo)
    assert.equal("PG*", cfg.source)
    assert.same({ min = 2, max = 10, idle_timeout = 30, connect_timeout = 2, slow_query_ms = 1000 }, cfg.pool)
    assert.equal(1000, cfg.slow_query_ms)
  end)

  it("prefers overrides.url over DATABASE_URL over DB_*", function()
    local vars = { DATABASE_URL = "postgres://u@h/envdb", DB_HOST = "dbhost" }
    assert.equal("host=x", config.resolve({ url = "host=x" }, env(vars)).conninfo)
    assert.equal("url", config.resolve({ url = "host=x" }, env(vars)).source)
    assert.equal("postgres://u@h/envdb", config.resolve({}, env(vars)).conninfo)
    assert.equal("DATABASE_URL", config.resolve({ url = "" }, env(vars)).source)
    vars.DATABASE_URL = nil
    assert.equal("host='dbhost'", config.resolve({}, env(vars)).conninfo)
    assert.equal("DB_*", config.resolve({}, env(vars)).source)
  end)

  it("builds a quoted keyword conninfo from DB_*", function()
    local cfg = assert(config.resolve({}, env {
      DB_HOST = "db.internal", DB_PORT = "6543", DB_NAME = "my db", DB_USER = "o'brien",
      DB_PASSWORD = [[p\a's s]], DB_SSL = "true",
    }))
    assert.equal([[host='db.internal' port='6543' dbname='my db' user='o\'brien' password='p\\a\'s s' ]]
      .. [[sslmode='require']], cfg.conninfo)
    assert.not_matches("p\\a", cfg.conninfo_redacted, 1, true)
    assert.matches("***", cfg.conninfo_redacted, 1, true)
  end)

  it("reads DB_SSL as a boolean or a libpq sslmode", function()
    assert.equal("host='h' sslmode='disable'", config.resolve({}, env { DB_HOST = "h", DB_SSL = "false" }).conninfo)
    assert.equal("host='h' sslmode='prefer'", config.resolve({}, env { DB_HOST = "h", DB_SSL = "prefer" }).conninfo)
    assert.equal("host='h' sslmode='require'", config.resolve({}, env { DB_HOST = "h", DB_SSL = "1" }).conninfo)
    fails({}, { DB_HOST = "h", DB_SSL = "maybe" }, "DB_SSL")
  end)

  it("needs DB_SSL_CA for verify-ca and verify-full, and never falls back", function()
    fails({}, { DB_HOST = "h", DB_SSL = "verify-full" }, "DB_SSL_CA")
    fails({}, { DB_HOST = "h", DB_SSL = "verify-ca" }, "DB_SSL_CA")
    fails({}, { DB_HOST = "h", DB_SSL = "verify-full", DB_SSL_CA = "/nonexistent/ca.crt" }, "DB_SSL_CA")
    local ca = os.tmpname()
    assert.equal("host='h' sslmode='verify-full' sslrootcert='" .. ca .. "'",
      config.resolve({}, env { DB_HOST = "h", DB_SSL = "verify-full", DB_SSL_CA = ca }).conninfo)
    -- a CA alone means verify-full
    assert.equal("host='h' sslmode='verify-full' sslrootcert='" .. ca .. "'",
      config.resolve({}, env { DB_HOST = "h", DB_SSL_CA = ca }).conninfo)
    os.remove(ca)
  end)

  it("redacts the password of a URL", function()
    local cfg = assert(config.resolve({ url = "postgres://app:s3cret@db:5432/prod" }, env {}))
    assert.equal("postgres://app:s3cret@db:5432/prod", cfg.conninfo)
    assert.not_matches("s3cret", cfg.conninfo_redacted, 1, true)
  end)

  it("takes pool options from overrides, then DB_* variables, then defaults, one by one", function()
    local cfg = assert(config.resolve({ pool = { max = 20 }, slow_query_ms = 50 }, env {
      DB_POOL_MIN = "3", DB_POOL_MAX = "4", DB_IDLE_TIMEOUT = "60", DB_SLOW_QUERY_MS = "250",
    }))
    assert.same({ min = 3, max = 20, idle_timeout = 60, connect_timeout = 2, slow_query_ms = 50 }, cfg.pool)
    assert.equal(50, cfg.slow_query_ms)
    cfg = assert(config.resolve({}, env { DB_CONNECT_TIMEOUT = "0.5", DB_SLOW_QUERY_MS = "250" }))
    assert.equal(0.5, cfg.pool.connect_timeout)
    assert.equal(250, cfg.slow_query_ms)
    assert.is_true(math.type == nil or math.type(cfg.pool.min) == "integer")
  end)

  it("passes the core's other pool options and the logger through", function()
    local logger = function() end
    local cfg = assert(config.resolve({ pool = { acquire_timeout = 1, max_lifetime = 60 }, logger = logger }, env {}))
    assert.equal(1, cfg.pool.acquire_timeout)
    assert.equal(60, cfg.pool.max_lifetime)
    assert.equal(logger, cfg.logger)
    assert.equal(logger, cfg.pool.logger)
  end)

  it("refuses a non-numeric or out-of-range DB_PORT, naming it", function()
    fails({}, { DB_HOST = "h", DB_PORT = "fivefourthreetwo" }, "DB_PORT")
    fails({}, { DB_PORT = "70000" }, "DB_PORT must be a port number")
    fails({}, { DB_PORT = "0" }, "DB_PORT")
    fails({}, { DB_PORT = "54.5" }, "DB_PORT")
  end)

  it("refuses a URL of another database by its scheme, never repeating the URL", function()
    local err = fails({ url = "mysql://root:hunter2@db.example.com/app" }, {},
      "url is not a PostgreSQL URL %(it starts with mysql://%)")
    assert.is_nil(tostring(err):find("hunter2", 1, true))
    err = fails({}, { DATABASE_URL = "redis://:hunter2@cache:6379" }, "DATABASE_URL is not a PostgreSQL URL")
    assert.is_nil(tostring(err):find("hunter2", 1, true))
    for _, url in ipairs { "postgres://u@h/db", "postgresql://u@h/db", "POSTGRES://u@h/db", "host=h dbname=db" } do
      assert.equal(url, assert(config.resolve({ url = url }, env({}))).conninfo)
    end
  end)

  it("refuses DB_POOL_MIN greater than DB_POOL_MAX, naming both", function()
    local err = fails({}, { DB_POOL_MIN = "8", DB_POOL_MAX = "4" },
      "DB_POOL_MIN %(8%) is greater than DB_POOL_MAX %(4%)")
    assert.equal("invalid_input", err.kind)
    fails({}, { DB_POOL_MIN = "12" }, "DB_POOL_MIN %(12%) is greater than the default pool max %(10%)")
    fails({ pool = { min = 5, max = 2 } }, {}, "pool.min %(5%) is greater than pool.max %(2%)")
  end)

  it("refuses negative, non-numeric and fractional counts, naming the variable", function()
    fails({}, { DB_POOL_MIN = "-1" }, "DB_POOL_MIN must not be negative")
    fails({}, { DB_POOL_MAX = "lots" }, "DB_POOL_MAX must be a number")
    fails({}, { DB_POOL_MAX = "2.5" }, "DB_POOL_MAX must be a whole number")
    fails({}, { DB_POOL_MAX = "0" }, "DB_POOL_MAX must be at least 1")
    fails({}, { DB_IDLE_TIMEOUT = "-5" }, "DB_IDLE_TIMEOUT must not be negative")
    fails({}, { DB_CONNECT_TIMEOUT = "soon" }, "DB_CONNECT_TIMEOUT must be a number")
    fails({}, { DB_SLOW_QUERY_MS = "-1" }, "DB_SLOW_QUERY_MS must not be negative")
    fails({ pool = { idle_timeout = -1 } }, {}, "pool.idle_timeout must not be negative")
    fails({ slow_query_ms = "x" }, {}, "slow_query_ms must be a number")
  end)

  it("never puts the password in an error", function()
    local vars = { DB_HOST = "h", DB_PASSWORD = "hunter2-secret", DB_PORT = "x", DB_POOL_MIN = "9", DB_POOL_MAX = "1" }
    local _, err = config.resolve({}, env(vars))
    assert.not_matches("hunter2", tostring(err), 1, true)
    for _, v in pairs(err) do assert.not_matches("hunter2", tostring(v), 1, true) end
    vars.DB_PORT = nil
    _, err = config.resolve({}, env(vars))
    assert.not_matches("hunter2", tostring(err), 1, true)
  end)

  it("raises for arguments of the wrong type (programmer errors)", function()
    assert.has_error(function() config.resolve({ url = 42 }, env {}) end)
    assert.has_error(function() config.resolve({ pool = "big" }, env {}) end)
  end)

  it("reads the real environment by default", function()
    local cfg = assert(config.resolve({ url = "dbname=x" }))
    assert.equal("dbname=x", cfg.conninfo)
  end)
end)

describe("the service's modules", function()
  it("define no globals when required", function()
    local vm = os.getenv("CODERUNNER_LUA") or "lua5.4"
    -- third-party modules first: Debian's lua-filesystem sets its own global `lfs`
    local script = [[require("lfs"); require("argparse"); ]]
      .. [[setmetatable(_G, { __newindex = function(_, k) error("global " .. tostring(k), 2) end });]]
      .. [[for _, m in ipairs({ "coderunner.config", "coderunner.users", "coderunner.projects", ]]
      .. [["coderunner.deployments", "coderunner.db", "coderunner.domain", "coderunner.stats", ]]
      .. [["coderunner.migrate", "coderunner.cli", "coderunner.cli.migrate", "coderunner.cli.service" }) ]]
      .. [[do require(m) end; print("clean")]]
    local p = assert(io.popen(vm .. " -e '" .. script .. "' 2>&1"))
    local out = p:read("*a")
    p:close()
    assert.equal("clean\n", out)
  end)
end)
