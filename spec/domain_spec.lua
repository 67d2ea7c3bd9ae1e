-- coderunner.domain holds the domain's constants once: the schema (migrations/)
-- agrees with them, and the repositories, the service's statistics and the
-- CLI use them (no second copy).
local pg = require "coderunner.pg"
local migrate = require "coderunner.migrate"
local domain = require "coderunner.domain"
local server = require "support.server"

local VM = (os.getenv("CODERUNNER_LUA") or "lua"):gsub("%W", "")

describe("coderunner.domain", function()
  local conn
  setup(function()
    conn = assert(pg.connect(server.fresh_database("cr_domain_" .. VM)))
    assert(migrate.up(conn, { dir = "migrations" }))
  end)
  teardown(function() conn:close() end)

  it("its statuses are the schema's enum, in order, with the schema's default", function()
    local rows = assert(conn:query("select enum_range(null::deployment_status)::text[] as r"))
    assert.same(domain.STATUSES, rows[1].r)
    rows = assert(conn:query([[select column_default from information_schema.columns
      where table_name = 'deployments' and column_name = 'status']]))
    assert.matches("^'" .. domain.DEFAULT_STATUS .. "'::", rows[1].column_default)
  end)

  it("its plans are exactly what the schema's check accepts, with the schema's default", function()
    for _, plan in ipairs(domain.PLANS) do
      assert(conn:query("insert into users (email, password_hash, plan_type) values ($1, 'h', $2)",
        plan .. "@example.com", plan))
    end
    local res, err = conn:query("insert into users (email, password_hash, plan_type) values ('x@example.com', 'h', 'gold')")
    assert.is_nil(res)
    assert.equal("23514", err.sqlstate)
    local rows = assert(conn:query("insert into users (email, password_hash) values ('d@example.com', 'h') "
      .. "returning plan_type"))
    assert.equal(domain.DEFAULT_PLAN, rows[1].plan_type)
    assert.equal(domain.DEFAULT_PLAN, domain.PLANS[1])
  end)

  it("the transitions cover every status and name only known statuses", function()
    local known = {}
    for _, s in ipairs(domain.STATUSES) do known[s] = true end
    for _, from in ipairs(domain.STATUSES) do
      assert.is_table(domain.TRANSITIONS[from], from)
      for to in pairs(domain.TRANSITIONS[from]) do assert.is_true(known[to], to) end
      assert.is_true(domain.can_move(from, from))
    end
    assert.same({ "pending", "building", "deploying", "stopping" }, domain.ALLOWED_FROM.stopped)
    assert.equal("stopping, failed", domain.allowed_targets("running"))
  end)

  it("the repositories use the same tables, not copies", function()
    assert.equal(domain.PLANS, require("coderunner.users").PLANS)
    assert.equal(domain.STATUSES, require("coderunner.deployments").STATUSES)
    assert.equal(domain.TRANSITIONS, require("coderunner.deployments").TRANSITIONS)
  end)

  it("the service no longer re-exports the repositories or the configuration", function()
    local db = require "coderunner.db"
    assert.is_nil(rawget(db, "users"))
    assert.is_nil(rawget(db, "projects"))
    assert.is_nil(rawget(db, "deployments"))
    assert.is_nil(rawget(db, "config"))
    assert.is_nil(rawget(require("coderunner.config"), "quote"))
  end)
end)
