-- The library modules that OpenResty workers load never fork a process: they
-- are loaded afresh with io.popen and os.execute replaced by stubs that fail
-- the spec, then migrate up (waiting for the lock once), status, validate,
-- down and create run against the real server, and the service works.
local pg = require "coderunner.pg"
local server = require "support.server"

local VM = (os.getenv("CODERUNNER_LUA") or "lua"):gsub("%W", "")

local LIBRARY = { "coderunner.migrate", "coderunner.migrate.files", "coderunner.migrate.history",
                  "coderunner.migrate.lock", "coderunner.migrate.planner", "coderunner.migrate.applier",
                  "coderunner.db", "coderunner.config", "coderunner.domain", "coderunner.stats",
                  "coderunner.repository", "coderunner.users", "coderunner.projects", "coderunner.deployments" }

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Runs fn with the library freshly loaded under the stubs; returns the forks tried.
-- luacheck: push ignore 122 (it replaces io.popen and os.execute for a while)
local function without_forks(fn)
  local saved_popen, saved_execute = io.popen, os.execute
  local saved = {}
  for _, name in ipairs(LIBRARY) do saved[name], package.loaded[name] = package.loaded[name], nil end
  local forks = {}
  io.popen = function(cmd) forks[#forks + 1] = "io.popen " .. tostring(cmd); error("io.popen called", 2) end
  os.execute = function(cmd) forks[#forks + 1] = "os.execute " .. tostring(cmd); error("os.execute called", 2) end
  local ok, err = pcall(fn, function(name) return require(name) end)
  io.popen, os.execute = saved_popen, saved_execute
  for _, name in ipairs(LIBRARY) do package.loaded[name] = saved[name] end
  assert(ok, err)
  return forks
end
-- luacheck: pop

describe("the library never forks a process", function()
  local url, dir
  setup(function()
    url = server.fresh_database("cr_nofork_" .. VM)
    dir = os.tmpname()
    os.remove(dir)
    dir = dir .. "_migrations"
  end)
  teardown(function()
    for _, f in ipairs { "001_widgets.sql", "002_gadgets.sql" } do os.remove(dir .. "/" .. f) end
    os.remove(dir .. "/nested/003_more.sql")
    os.remove(dir .. "/nested")
    os.remove(dir)
  end)

  it("migrate create, up (waiting for the lock), status, validate and down; the service", function()
    local holder = assert(pg.connect(url))
    local forks = without_forks(function(load)
      local migrate = load("coderunner.migrate")
      local db = load("coderunner.db")
      -- create makes the missing directory (lua-filesystem, not `mkdir -p`)
      local made = assert(migrate.create(dir, "widgets"))
      assert.equal(dir .. "/001_widgets.sql", made.file)
      write(made.file, "-- migrate:up\ncreate table widgets (id int);\n-- migrate:down\ndrop table widgets;\n")
      write(dir .. "/002_gadgets.sql", "-- migrate:up\ncreate table gadgets (id int);\n"
        .. "-- migrate:down\ndrop table gadgets;\n")
      assert(migrate.create(dir .. "/nested", "more"))

      local conn = assert(pg.connect(url))
      -- another session holds the lock for a moment: the runner polls with pg.sleep
      local ns, key = migrate.lock_keys()
      assert(holder:query("select pg_advisory_lock($1::int4, $2::int4)", ns, key))
      local waited = false
      local runner = assert(migrate.new(conn, { dir = dir, poll_interval = 0.05, logger = function(_, _, info)
        if info.event == "waiting" then
          waited = true
          assert(holder:query("select pg_advisory_unlock($1::int4, $2::int4)", ns, key))
        end
      end }))
      local report = assert(runner:up())
      assert.is_true(waited)
      assert.equal(2, #report.applied)
      local status = assert(runner:status())
      assert.equal(2, status.applied)
      assert.equal(64, #status.migrations[1].checksum)
      assert(runner:validate())
      assert.equal(1, assert(runner:down()).current)
      conn:close()

      local svc = assert(db.new({ url = url, pool = { min = 0, max = 1 } }))
      assert.equal("healthy", svc:health().status)
      assert.same({ 0 }, { #assert(svc:query("select 1 as one where false")) })
      svc:close()
    end)
    holder:close()
    assert.same({}, forks)
  end)

  it("the lock timeout waits with pg.sleep too", function()
    local holder = assert(pg.connect(url))
    local forks = without_forks(function(load)
      local migrate = load("coderunner.migrate")
      local ns, key = migrate.lock_keys()
      assert(holder:query("select pg_advisory_lock($1::int4, $2::int4)", ns, key))
      local conn = assert(pg.connect(url))
      local started = pg.monotonic()
      local report, err = assert(migrate.new(conn, { dir = dir, lock_timeout = 0.2, poll_interval = 0.05 })):up()
      assert.is_nil(report)
      assert.equal("timeout", err.kind)
      assert.is_true(pg.monotonic() - started >= 0.19)
      conn:close()
    end)
    holder:close()
    assert.same({}, forks)
  end)
end)
