-- pg.conninfo_with: another database (or user, or option) from any conninfo
-- form, and pg.pool{max = 1} (the default min never exceeds max). Needs the
-- test server (PG* from pg_virtualenv).
local pg = require "coderunner.pg"
local server = require "support.server"

describe("pg.conninfo_with", function()
  local name = "conninfo_spec_" .. tostring(os.time())

  setup(function() server.fresh_database(name) end)
  teardown(function()
    local conn = server.connect()
    assert(conn:exec("DROP DATABASE IF EXISTS " .. conn:escape_identifier(name) .. " WITH (FORCE)"))
    conn:close()
  end)

  local function current_database(conninfo)
    local conn = assert(pg.connect(conninfo))
    local db = assert(conn:query("select current_database() as d"))[1].d
    conn:close()
    return db
  end

  it("points an empty conninfo (PG* environment) at another database", function()
    local derived = assert(pg.conninfo_with("", { dbname = name }))
    assert.are.equal("dbname='" .. name .. "'", derived)
    assert.are.equal(name, current_database(derived))
  end)

  it("points a URL at another database, keeping host, port, user and password", function()
    local url = ("postgresql://%s:%s@%s:%s/%s"):format(os.getenv("PGUSER"), os.getenv("PGPASSWORD") or "",
      (os.getenv("PGHOST") or "localhost"):gsub("/", "%%2F"), os.getenv("PGPORT") or "5432",
      os.getenv("PGDATABASE") or "postgres")
    assert.are.equal(os.getenv("PGDATABASE") or "postgres", current_database(url))
    local derived = assert(pg.conninfo_with(url, { dbname = name, application_name = "spec" }))
    assert.is_nil(derived:find("postgresql://", 1, true))
    assert.are.equal(name, current_database(derived))
  end)

  it("points a keyword conninfo elsewhere, and removes a key with false", function()
    local derived = assert(pg.conninfo_with("dbname=nowhere port=" .. (os.getenv("PGPORT") or "5432"),
      { dbname = name, port = false }))
    assert.are.equal(name, current_database(derived))
    assert.is_nil(derived:find("port", 1, true))
  end)

  it("returns invalid_input for an unknown keyword or an unparsable conninfo, without the password", function()
    local v, err = pg.conninfo_with("host=h", { colour = "blue" })
    assert.is_nil(v)
    assert.are.equal("invalid_input", err.kind)
    assert.matches("colour", err.message, 1, true)
    v, err = pg.conninfo_with("postgres://u:hunter2@h/db?hunter2", { dbname = "x" })
    assert.is_nil(v)
    assert.are.equal("invalid_input", err.kind)
    assert.is_nil(tostring(err):find("hunter2", 1, true))
    v, err = pg.conninfo_with("password=hunter 2", { dbname = "x" })
    assert.is_nil(v)
    assert.is_nil(tostring(err):find("hunter", 1, true))
  end)

  it("raises for a change that is not keyword = string, number or false", function()
    assert.has_error(function() pg.conninfo_with("", { dbname = true }) end)
    assert.has_error(function() pg.conninfo_with("", { "dbname" }) end)
    assert.has_error(function() pg.conninfo_with("", "dbname=x") end)
  end)
end)

describe("pg.pool{max = 1}", function()
  it("works: the default min follows a max below 2", function()
    local pool = assert(pg.pool { max = 1 })
    assert.are.equal(1, pool:stats().max)
    assert.are.equal(1, pool:stats().min)
    assert.are.equal(1, assert(pool:query("select 1 as one"))[1].one)
    assert(pool:transaction(function(tx)
      assert(tx:query("select 1"))
    end))
    pool:close()
  end)

  it("works through the service's configuration too (db.new{pool = {max = 1}})", function()
    local db = require "coderunner.db"
    local svc = assert(db.new { pool = { max = 1 } })
    assert.are.equal(1, svc.pool:stats().min)
    assert(svc:execute_in_transaction(function(ops) assert(ops:query("SELECT 1")) end))
    svc:close()
    local none, err = db.new { pool = { min = 2, max = 1 } }
    assert.is_nil(none)
    assert.are.equal("invalid_input", err.kind)
  end)

  it("still refuses an explicit min above max", function()
    local pool, err = pg.pool { min = 3, max = 1 }
    assert.is_nil(pool)
    assert.are.equal("invalid_input", err.kind)
  end)
end)
