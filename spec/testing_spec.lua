-- coderunner.testing itself, used as other projects use it: one database for
-- this file, a transaction per test rolled back, a savepoint per statement,
-- expect_error, factories; and a second suite with transaction = false.
local testing = require "coderunner.testing"
local users = require "coderunner.users"
local t = testing.use()

local seen_db -- the database of this file, checked by the next describe

describe("coderunner.testing.use", function()
  it("gives the file a fresh database with the migrations applied", function()
    assert.matches("^coderunner_test_%x+$", t.database)
    assert.equal(t.database, t:query("SELECT current_database() AS d")[1].d)
    assert.is_true(t:query("SELECT to_regclass('public.deployments') IS NOT NULL AS ok")[1].ok)
    assert.is_nil(t.conninfo:find("password", 1, true) and t.conninfo:find("postgres://", 1, true))
    seen_db = t.database
  end)

  it("runs each test in a transaction of its own", function()
    assert.equal("active", t.tx:status())
    assert.equal("active", t.exec:status())
    -- the pool does not see the test's uncommitted rows
    t.factory:user { email = "hidden@example.com" }
    assert.equal(0, t.pool:query("SELECT count(*) AS n FROM users")[1].n)
    assert.equal(1, t:query("SELECT count(*) AS n FROM users")[1].n)
  end)

  it("rolls the previous test back", function()
    assert.equal(0, t:query("SELECT count(*) AS n FROM users")[1].n)
  end)

  it("keeps the transaction usable after a failing statement", function()
    local u = t.factory:user()
    local v, err = t:query("INSERT INTO users (email, password_hash) VALUES ($1, 'h')", u.email)
    assert.is_nil(v)
    assert.equal("conflict", err.kind)
    v, err = t:query("SELECT nope FROM users")
    assert.is_nil(v)
    assert.equal("42703", err.sqlstate)
    assert.equal(1, t:query("SELECT count(*) AS n FROM users")[1].n)
    -- the repositories take the executor too
    local again
    again, err = users.create(t.exec, u.email, "h")
    assert.is_nil(again)
    assert.equal("conflict", err.kind)
    assert.equal(u.id, assert(t.db:get_user_by_email(u.email)).id)
  end)

  it("expect_error returns the error, undoes fn's writes and goes on", function()
    local err = t:expect_error(function()
      assert(t.db:create_user("a@example.com", "h"))
      return t:query("SELECT 1 / 0")
    end)
    assert.equal("22012", err.sqlstate)
    assert.is_nil(t.db:get_user_by_email("a@example.com"))
    err = t:expect_error(function() error({ kind = "custom" }) end)
    assert.equal("custom", err.kind)
    -- nested
    err = t:expect_error(function()
      assert.is_table(t:expect_error(function() return t:query("SELECT x") end))
      return nil, "outer"
    end)
    assert.equal("outer", err)
    assert.equal("active", t.tx:status())
  end)

  it("expect_error raises when fn succeeds", function()
    assert.has_error(function()
      t:expect_error(function() return t:query("SELECT 1") end)
    end, "coderunner.testing: expected an error, but the function succeeded")
  end)

  it("refuses commit and rollback of the test's transaction through the executor", function()
    assert.has_error(function() t.exec:commit() end)
    assert.has_error(function() t.exec:rollback() end)
    assert(t.exec:transaction(function(tx) assert(tx:query("SELECT 1")) end))
  end)

  it("factories make unique rows, with their parents", function()
    local a, b = t.factory:user(), t.factory:user { plan_type = "pro" }
    assert.are_not.equal(a.email, b.email)
    assert.equal("pro", b.plan_type)
    local p = t.factory:project { user_id = a.id, name = "mine" }
    assert.equal(a.id, p.user_id)
    assert.equal("mine", p.name)
    local d = t.factory:deployment { project_id = p.id, status = "running", public_url = "https://x.example" }
    assert.equal(p.id, d.project_id)
    assert.equal("node", d.runtime_type)
    assert.equal(1, t.db:get_running_deployment_count_by_user(a.id))
    local d2 = t.factory:deployment()
    assert.are_not.equal(p.id, d2.project_id)
    assert.equal(3, t:query("SELECT count(*) AS n FROM users")[1].n)
  end)

  it("factories raise on a row that cannot be made", function()
    assert.has_error(function() t.factory:user { email = "not an email" } end)
    assert.has_error(function() t.factory:project { user_id = "00000000-0000-4000-8000-000000000000" } end)
  end)
end)

describe("coderunner.testing.use { transaction = false, migrations = false }", function()
  local plain = testing.use { transaction = false, migrations = false }

  it("gives the block its own database, with no migrations and no per-test transaction", function()
    assert.are_not.equal(seen_db, plain.database)
    assert.is_nil(plain.tx)
    assert.equal(plain.pool, plain.exec)
    assert.is_false(plain:query("SELECT to_regclass('public.users') IS NOT NULL AS ok")[1].ok)
    assert(plain:query("CREATE TABLE kept (n int)"))
    assert(plain:query("INSERT INTO kept VALUES (1)"))
  end)

  it("keeps writes between tests", function()
    assert.equal(1, plain:query("SELECT count(*) AS n FROM kept")[1].n)
  end)
end)

describe("coderunner.testing without busted's hooks", function()
  it("start, begin_test, end_test and finish drop the database", function()
    local s = testing.new { migrations = false }
    s:start()
    s:begin_test()
    assert(s:query("CREATE TABLE x (n int)"))
    s:end_test()
    assert.is_false(s.pool:query("SELECT to_regclass('public.x') IS NOT NULL AS ok")[1].ok)
    local name = s.database
    s:finish()
    local pg = require "coderunner.pg"
    local conn = assert(pg.connect(""))
    assert.equal(0, conn:query("SELECT count(*) AS n FROM pg_database WHERE datname = $1", name)[1].n)
    conn:close()
  end)

  it("start raises when the migrations fail, and drops the database it made", function()
    local s = testing.new { migrations = "/nonexistent/migrations" }
    local ok, err = pcall(s.start, s)
    assert.is_false(ok)
    assert.matches("migrations failed", tostring(err), 1, true)
    local pg = require "coderunner.pg"
    local conn = assert(pg.connect(""))
    assert.equal(0, conn:query("SELECT count(*) AS n FROM pg_database WHERE datname = $1", s.database)[1].n)
    conn:close()
  end)

  it("raises outside a test", function()
    local s = testing.new()
    assert.has_error(function() s:query("SELECT 1") end)
  end)
end)

describe("coderunner.testing inside nginx", function()
  it("refuses to fork initdb and pg_ctl, and asks for DATABASE_URL", function()
    -- a fresh VM with no server named and an `ngx` global, as in an OpenResty worker
    local vm = os.getenv("CODERUNNER_LUA") or "lua5.4"
    local cmd = "env -u DATABASE_URL -u PGHOST -u PGPORT -u PGUSER -u PGPASSWORD -u PGDATABASE "
      .. "-u PGHOSTADDR -u PGSERVICE " .. vm .. [[ -e '
        ngx = {}
        local testing = require "coderunner.testing"
        local s = testing.new { migrations = false }
        local ok, err = pcall(s.start, s)
        io.write(tostring(ok), " ", tostring(err))' 2>&1]]
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    assert.matches("^false ", out)
    assert.matches("must not fork: set DATABASE_URL", out, 1, true)
  end)
end)
