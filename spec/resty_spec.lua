-- coderunner.resty outside nginx: calls run directly (blocking is fine in a
-- plain Lua script) on the named pool, with the same plain results and error
-- tables a handler gets from a worker thread; and the refusal of a call where
-- it would block nginx's event loop. (Inside nginx, over HTTP, with worker
-- threads: `make test-openresty`.)
local pg = require "coderunner.pg"
local cjson = require "cjson"
local server = require "support.server"
local migrate = require "coderunner.migrate"
local resty = require "coderunner.resty"

describe("coderunner.resty", function()
  local url

  setup(function()
    url = server.fresh_database("coderunner_resty_spec") .. " application_name=resty_spec"
    local p = assert(pg.pool { conninfo = url, min = 0, max = 1 })
    assert(migrate.up(p, { dir = "migrations" }))
    p:close()
    resty.configure { pool_name = "resty_spec", url = url, pool = { min = 0, max = 2 } }
  end)

  teardown(function()
    local p = assert(pg.pool { name = "resty_spec" })
    p:close()
  end)

  it("runs calls directly outside nginx", function()
    assert.equal("direct", resty.placement())
  end)

  it("returns a service method's results as plain values", function()
    local user, err = resty.call("create_user", "ada@example.com", "h4sh", "pro")
    assert.is_nil(err)
    assert.equal("ada@example.com", user.email)
    assert.equal("pro", user.plan_type)
    local project = assert(resty.call("create_project", user.id, "engine", "analytical"))
    local list = assert(resty.call("get_projects_by_user_id", user.id))
    assert.equal(1, #list)
    assert.equal(project.id, list[1].id)
    local res = assert(resty.call("query", "select $1::int + 1 as n", 41))
    assert.equal(42, res[1].n)
  end)

  it("uses the process-wide pool of its name", function()
    local p = assert(pg.pool { name = "resty_spec" })
    local before = p:stats().queries
    assert(resty.call("query", "select 1"))
    assert.equal(before + 1, p:stats().queries)
    assert.equal(2, p:stats().max)
    p:close() -- closes it for the service too: its next call opens a new one
    assert(resty.call("query", "select 1"))
  end)

  it("passes pg.null as it is: the light userdata NULL (cjson.null, ngx.null)", function()
    assert.equal(cjson.null, pg.null)
    local user = assert(resty.call("create_user", "nulls@example.com", "h4sh"))
    local project = assert(resty.call("create_project", user.id, "p"))
    local d = assert(resty.call("create_deployment", project.id, { runtime_type = "node",
      db_connection_info = { host = "db", replica = cjson.null } }))
    assert.equal("db", d.db_connection_info.host)
    assert.equal(pg.null, d.db_connection_info.replica)
    assert.equal('{"replica":null}', cjson.encode({ replica = d.db_connection_info.replica }))
  end)

  it("returns errors as plain tables with kind, message and the server's fields", function()
    local _, err = resty.call("create_user", "dup@example.com", "h4sh")
    assert.is_nil(err)
    local user
    user, err = resty.call("create_user", "dup@example.com", "h4sh")
    assert.is_nil(user)
    assert.equal("conflict", err.kind)
    assert.equal("23505", err.sqlstate)
    assert.equal("users_email_key", err.constraint)
    assert.is_string(err.message)
    assert.is_false(pg.is_error(err))                -- a plain table ...
    assert.equal(resty.Error, getmetatable(err))     -- ... that prints
    assert.matches("(conflict)", tostring(err), 1, true)
    user, err = resty.call("create_user", "not an email", "h4sh")
    assert.is_nil(user)
    assert.equal("invalid_input", err.kind)
    local moved
    moved, err = resty.call("update_deployment_status", "00000000-0000-0000-0000-000000000000", "nope")
    assert.is_nil(moved)
    assert.equal("invalid_input", err.kind)
  end)

  it("raises for a method the service does not have, or bad settings", function()
    assert.has_error(function() resty.call("no_such_method") end)
    assert.has_error(function() resty.call("_private") end)
    assert.has_error(function() resty.call(42) end)
    assert.has_error(function() resty.configure { pool = { logger = print } } end)
    assert.has_error(function() resty.configure { max_inflight = 0 } end)
    assert.has_error(function() resty.configure { thread_pools = "x" } end)
  end)

  it("runs a function of a module with the service (a transaction)", function()
    package.loaded["resty_spec_tx"] = {
      two_projects = function(svc, email)
        return svc:execute_in_transaction(function(tx)
          local u = assert(tx:create_user(email, "h4sh"))
          assert(tx:create_project(u.id, "one"))
          assert(tx:create_project(u.id, "two"))
          return u.id
        end)
      end,
    }
    local id = assert(resty.run("resty_spec_tx", "two_projects", "tx@example.com"))
    assert.equal(2, #assert(resty.call("get_projects_by_user_id", id)))
    package.loaded["resty_spec_tx"] = nil
  end)

  describe("in nginx's main VM", function()
    local saved
    before_each(function() saved = rawget(_G, "ngx") end)
    after_each(function() rawset(_G, "ngx", saved) end)

    -- what nginx's main VM looks like to coderunner.resty, in a given phase
    local function main_vm(phase, with_threads)
      rawset(_G, "ngx", {
        get_phase = function() return phase end,
        run_worker_thread = with_threads and function() error("must not be called") end or nil,
        sleep = function() end,
        socket = {},
      })
    end

    it("refuses a call in a phase that cannot wait for a thread, instead of blocking", function()
      for _, phase in ipairs { "init", "init_worker", "set", "header_filter", "body_filter", "log" } do
        main_vm(phase, true)
        local res, err = resty.call("health")
        assert.is_nil(res)
        assert.equal("invalid_input", err.kind)
        assert.matches("cannot run in the " .. phase .. " phase", err.message, 1, true)
        assert.matches("would block", err.message, 1, true)
      end
    end)

    it("refuses every call when nginx has no worker threads", function()
      main_vm("content", false)
      local res, err = resty.call("health")
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.matches("run_worker_thread", err.message, 1, true)
    end)

    it("calls run directly in a worker-thread VM (ngx without sleep or sockets)", function()
      rawset(_G, "ngx", { get_phase = function() return "unknown" end })
      assert.equal("direct", resty.placement())
      assert.equal("healthy", resty.call("health").status)
    end)
  end)
end)
