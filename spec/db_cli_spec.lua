-- The service's commands of bin/coderunner-db (health, stats, demo, examples
-- errors), run as a user runs them: a child process of the same Lua VM, with
-- DATABASE_URL naming a fresh database; --json output decoded and checked.
local testing = require "coderunner.testing"
local t = testing.use { transaction = false, migrations = false } -- a fresh empty database
local cjson = require "cjson"

local conninfo

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs coderunner-db with `args` (a string); returns exit status, stdout, stderr.
local function cli(args, url)
  local vm = os.getenv("CODERUNNER_LUA") or "lua5.4"
  local err_path = os.tmpname()
  local p = assert(io.popen(("DATABASE_URL=%s %s bin/coderunner-db %s 2>%s; echo \"::exit $?\""):format(
    shell_quote(url or conninfo), vm, args, err_path)))
  local out = p:read("*a")
  p:close()
  local f = assert(io.open(err_path))
  local stderr = f:read("*a")
  f:close()
  os.remove(err_path)
  local status = tonumber(out:match("::exit (%d+)%s*$"))
  return status, (out:gsub("::exit %d+%s*$", "")), stderr
end

setup(function()
  conninfo = t.conninfo
end)

describe("coderunner-db demo", function()
  it("walks through the whole service, migrating first, and cleans up", function()
    local status, out, stderr = cli("demo")
    assert.equal(0, status, out .. stderr)
    for _, step in ipairs({ "Connect", "Migrate", "Create a user", "Create a project", "Create deployments",
      "Move statuses", "Joins", "A transaction that rolls back", "Statistics", "Health", "Clean up" }) do
      assert.matches("== " .. step, out, 1, true)
    end
    assert.matches("running -> building refused: invalid_transition", out, 1, true)
    assert.matches("project gone with it (cascade): true", out, 1, true)
    assert.not_matches("never.printed", out .. stderr, 1, true)
  end)

  it("--json prints one document with every step, and leaves no rows behind", function()
    local status, out = cli("--json demo")
    assert.equal(0, status, out)
    local doc = cjson.decode(out)
    assert.is_true(doc.ok)
    assert.equal(11, #doc.steps)
    assert.equal("Statistics", doc.steps[9].step)
    assert.is_table(doc.steps[9].stats.users.by_plan)
    assert.equal("healthy", doc.steps[10].health.status)
    local _, stats = cli("--json stats")
    local s = cjson.decode(stats)
    assert.equal(0, s.users.total)
    assert.equal(0, s.deployments.total)
  end)
end)

describe("coderunner-db examples errors", function()
  it("shows each kind of error and exits 0", function()
    local status, out, stderr = cli("examples errors")
    assert.equal(0, status, out .. stderr)
    for _, text in ipairs({ "create_user with a taken email -> kind conflict",
      "create_project for a missing user -> kind invalid_input", "pending -> running -> kind invalid_transition",
      "get_user_by_id with a bad UUID -> kind invalid_input", "plan still free, status still pending",
      "user still there: true", "get_users while down -> kind connect" }) do
      assert.matches(text, out, 1, true)
    end
    assert.not_matches("hash-never-printed", out .. stderr, 1, true)
  end)

  it("refuses an unknown topic as a usage error", function()
    local status = cli("examples everything")
    assert.equal(2, status)
  end)
end)

describe("coderunner-db health and stats", function()
  it("health prints a table and exits 0 when healthy", function()
    local status, out = cli("health")
    assert.equal(0, status)
    assert.matches("Database health: HEALTHY", out, 1, true)
    assert.matches(t.database, out, 1, true)
    assert.matches("latency", out, 1, true)
  end)

  it("health --json", function()
    local status, out = cli("--json health")
    assert.equal(0, status)
    local h = cjson.decode(out)
    assert.equal("healthy", h.status)
    assert.equal(t.database, h.database)
    assert.is_number(h.latency_ms)
    assert.is_number(h.pool.total)
  end)

  it("health exits 1 when the database is down, without the password", function()
    local status, out = cli("health", "host=127.0.0.1 port=1 password=cli-secret connect_timeout=1")
    assert.equal(1, status)
    assert.matches("UNHEALTHY", out, 1, true)
    assert.matches("password=***", out, 1, true)
    assert.not_matches("cli-secret", out, 1, true)
    status, out = cli("--json health", "host=127.0.0.1 port=1 connect_timeout=1")
    assert.equal(1, status)
    local h = cjson.decode(out)
    assert.equal("unhealthy", h.status)
    -- the error shape every command uses with --json
    assert.is_false(h.ok)
    assert.equal("health", h.command)
    assert.equal("connect", h.error.kind)
    assert.is_string(h.error.message)
  end)

  it("--url wins over DATABASE_URL", function()
    local status, out = cli("--json --url " .. shell_quote(conninfo) .. " health", "host=127.0.0.1 port=1")
    assert.equal(0, status, out)
    assert.equal(t.database, cjson.decode(out).database)
  end)

  it("stats prints the counts, and --json the same figures", function()
    assert.equal(0, (cli("migrate")))
    local status, out = cli("stats")
    assert.equal(0, status, out)
    for _, label in ipairs({ "users", "enterprise", "projects", "deployments", "running deployments",
      "slow queries", "Pool" }) do
      assert.matches(label, out, 1, true)
    end
    status, out = cli("--json stats")
    assert.equal(0, status)
    local s = cjson.decode(out)
    assert.equal(t.database, s.database.name)
    assert.equal(0, s.users.by_plan.pro)
    assert.equal(0, s.deployments.by_status.failed)
  end)

  it("a bad configuration is a clear usage error", function()
    local vm = os.getenv("CODERUNNER_LUA") or "lua5.4"
    local p = assert(io.popen(("DATABASE_URL= DB_PORT=abc %s bin/coderunner-db health 2>&1; echo \"::exit $?\""):format(
      vm)))
    local out = p:read("*a")
    p:close()
    assert.matches("DB_PORT must be a port number", out, 1, true)
    assert.matches("::exit 2", out, 1, true)
  end)
end)
