-- TLS against the throwaway cluster with a self-signed CA: verify-full over TCP
-- encrypts (pg_stat_ssl says so), a wrong CA and a wrong host name are refused,
-- and DB_SSL / DB_SSL_CA reach libpq through the configuration.
local pg = require "coderunner.pg"
local config = require "coderunner.config"
local tls = require "support.tls"

describe("TLS", function()
  local dir
  local port = os.getenv("PGPORT") or "5432"

  setup(function()
    dir = tls.enable()
  end)

  teardown(function()
    tls.disable(dir)
  end)

  local function ssl_row(conn)
    return assert(conn:query([[select ssl, version from pg_stat_ssl where pid = pg_backend_pid()]]))[1]
  end

  it("verify-full to localhost with the right CA is encrypted", function()
    local conn = assert(pg.connect(("host=localhost port=%s sslmode=verify-full sslrootcert=%s/ca.crt")
      :format(port, dir)))
    local row = ssl_row(conn)
    assert.is_true(row.ssl)
    assert.matches("^TLS", row.version)
    assert.are.equal("verify-full", conn:option("sslmode"))
    conn:close()
  end)

  it("refuses a server certificate from another CA, in one line", function()
    local conn, err = pg.connect(("host=localhost port=%s sslmode=verify-full sslrootcert=%s/other-ca.crt")
      :format(port, dir))
    assert.is_nil(conn)
    assert.are.equal("connect", err.kind)
    assert.matches("certificate verify failed", err.message, 1, true)
    assert.is_nil(err.message:find("\n", 1, true))
  end)

  it("refuses a host name the certificate does not name", function()
    local conn, err = pg.connect(("host=127.0.0.1 port=%s sslmode=verify-full sslrootcert=%s/ca.crt")
      :format(port, dir))
    assert.is_nil(conn)
    assert.are.equal("connect", err.kind)
    assert.matches("does not match host name", err.message, 1, true)
  end)

  it("DB_SSL=verify-full with DB_SSL_CA connects verified through the configuration", function()
    local env = { DB_HOST = "localhost", DB_PORT = port, DB_SSL = "verify-full", DB_SSL_CA = dir .. "/ca.crt" }
    local cfg = assert(config.resolve({}, function(name) return env[name] end))
    local conn = assert(pg.connect(cfg.conninfo))
    assert.is_true(ssl_row(conn).ssl)
    conn:close()
    -- the same through the pool
    local pool = assert(pg.pool { conninfo = cfg.conninfo, min = 1, max = 1 })
    assert.is_true(assert(pool:query("select ssl from pg_stat_ssl where pid = pg_backend_pid()"))[1].ssl)
    pool:close()
  end)

  it("DB_SSL=verify-full without DB_SSL_CA is refused, never downgraded", function()
    local env = { DB_HOST = "localhost", DB_PORT = port, DB_SSL = "verify-full" }
    local cfg, err = config.resolve({}, function(name) return env[name] end)
    assert.is_nil(cfg)
    assert.are.equal("invalid_input", err.kind)
    assert.matches("DB_SSL_CA", err.message, 1, true)
  end)

  it("DB_SSL=false disables TLS even though the server offers it", function()
    local env = { DB_HOST = "localhost", DB_PORT = port, DB_SSL = "false" }
    local cfg = assert(config.resolve({}, function(name) return env[name] end))
    local conn = assert(pg.connect(cfg.conninfo))
    assert.is_false(ssl_row(conn).ssl)
    conn:close()
  end)
end)
