-- The pool never spins, never hammers a server that is down, refills by
-- itself, reclaims and reports leaked connections, refuses bad options, and
-- checks parameters before it takes a connection.
local pg = require "coderunner.pg"
local server = require "support.server"
local shell = require "support.shell"
local sh, capture = shell.sh, shell.capture

-- CPU seconds (user + system) a process has used, from /proc.
local function cpu_seconds(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return nil end
  local stat = f:read("*a")
  f:close()
  local fields = {}
  for field in stat:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = field end
  -- after "pid (comm) ": state is field 1, utime 12, stime 13 (man 5 proc: 14 and 15)
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

-- Starts `code` in a background process of the same VM; returns its pid.
local function spawn(code)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  local vm = os.getenv("CODERUNNER_LUA") or "lua5.4"
  return capture(("%s %s >/dev/null 2>&1 & echo $!"):format(vm, file)), file
end

describe("coderunner.pg pool safety", function()
  describe("infinite waits", function()
    local function idle_waiter(code)
      local pid, file = spawn(code)
      os.execute("sleep 1.5")
      local before = cpu_seconds(pid)
      os.execute("sleep 1")
      local after = cpu_seconds(pid)
      local alive = before ~= nil and after ~= nil
      sh("kill " .. pid)
      os.remove(file)
      return alive, alive and (after - before) or nil
    end

    it("acquire_timeout = math.huge waits without spinning", function()
      local alive, used = idle_waiter([[
        local pg = require "coderunner.pg"
        local pool = assert(pg.pool { min = 1, max = 1, acquire_timeout = math.huge })
        local held = assert(pool:acquire())
        pool:acquire() -- waits for held, forever
      ]])
      assert.is_true(alive, "the waiting process ended: it did not wait")
      assert.is_true(used < 0.2, ("used %.2f s of CPU in 1 s of waiting"):format(used or -1))
    end)

    it("pool:close(math.huge) waits without spinning", function()
      local alive, used = idle_waiter([[
        local pg = require "coderunner.pg"
        local pool = assert(pg.pool { min = 1, max = 1 })
        local held = assert(pool:acquire())
        pool:close(math.huge) -- waits for held, forever
      ]])
      assert.is_true(alive)
      assert.is_true(used < 0.2, ("used %.2f s of CPU in 1 s of waiting"):format(used or -1))
    end)

    it("a finite acquire_timeout still times out", function()
      local pool = assert(pg.pool { min = 1, max = 1, acquire_timeout = 0.2 })
      local held = assert(pool:acquire())
      local t0 = pg.monotonic()
      local conn, err = pool:acquire()
      assert.is_nil(conn)
      assert.are.equal("pool_timeout", err.kind)
      assert.is_true(pg.monotonic() - t0 < 1.5)
      pool:release(held)
      pool:close()
    end)
  end)

  describe("a server that is down", function()
    it("is not hammered: connect attempts back off, and stats() says so", function()
      local pool = assert(pg.pool { conninfo = "host=127.0.0.1 port=1 connect_timeout=1", min = 0, max = 2,
        acquire_timeout = 0.05 })
      local t0, calls = pg.monotonic(), 0
      while pg.monotonic() - t0 < 0.5 do
        local res, err = pool:query("select 1")
        assert.is_nil(res)
        assert.are.equal("connect", err.kind)
        calls = calls + 1
      end
      local st = pool:stats()
      assert.is_true(calls > 20, "calls " .. calls)
      assert.is_true(st.connect_attempts <= 8, "attempts " .. st.connect_attempts)
      assert.is_true(st.consecutive_connect_failures >= 2)
      assert.is_true(st.connect_backoff > 0)
      assert.is_string(st.last_error)
      pool:close()
    end)

    it("the pool refills min by itself once the server answers again", function()
      -- "down": a database that does not exist yet; "back": it is created
      local admin = server.connect()
      assert(admin:exec("drop database if exists pool_refill with (force)"))
      local pool = assert(pg.pool { conninfo = "dbname=pool_refill", min = 2, max = 3, acquire_timeout = 3 })
      assert.are.equal(0, pool:stats().total)
      assert.is_nil((pool:query("select 1")))
      assert(admin:exec("create database pool_refill"))
      assert.is_truthy(server.eventually(function() return pool:query("select 1") ~= nil end, 5))
      -- no maintain(): releases open what is missing up to min
      for _ = 1, 3 do assert(pool:query("select 1")) end
      assert.is_true(pool:stats().total >= 2)
      assert.are.equal(0, pool:stats().consecutive_connect_failures)
      pool:close()
      assert(admin:exec("drop database pool_refill with (force)"))
      admin:close()
    end)
  end)

  describe("leaked connections", function()
    it("are reclaimed by a collection before acquire gives up, and reported with where they were taken", function()
      local logged = {}
      local pool = assert(pg.pool { min = 1, max = 1, acquire_timeout = 0.2, leak_traceback = true,
        logger = function(level, message, info) logged[#logged + 1] = { level, message, info } end })
      local function leak() assert(pool:acquire()) end -- dropped without release
      leak()
      local res = assert(pool:query("select 1 as v"))
      assert.are.equal(1, res[1].v)
      local st = pool:stats()
      assert.are.equal(1, st.leaks)
      assert.are.equal(1, st.total)
      assert.are.equal(1, #logged)
      assert.are.equal("warn", logged[1][1])
      assert.matches("collected without release", logged[1][2], 1, true)
      assert.matches("pool_safety_spec", logged[1][2], 1, true) -- the traceback names the acquiring line
      assert.is_true(logged[1][3].leak)
      pool:close()
    end)

    it("without leak_traceback the report says how to get one", function()
      local logged = {}
      local pool = assert(pg.pool { min = 0, max = 1, acquire_timeout = 0.1,
        logger = function(_, message) logged[#logged + 1] = message end })
      do local _ = assert(pool:acquire()) end
      assert(pool:query("select 1"))
      assert.matches("leak_traceback = true", logged[1], 1, true)
      pool:close()
    end)
  end)

  describe("options", function()
    local function refused(opts, pattern)
      local pool, err = pg.pool(opts)
      assert.is_nil(pool)
      assert.are.equal("invalid_input", err.kind)
      assert.matches(pattern, err.message, 1, true)
    end

    it("refuses unknown option names (typos)", function()
      refused({ mxa = 3 }, "unknown pool option mxa")
      refused({ idle_timout = 3 }, "unknown pool option idle_timout")
      refused({ [1] = "x" }, "unknown pool option")
    end)

    it("refuses non-integral min, max and statement_cache", function()
      refused({ min = 1.5 }, "min must be a whole number")
      refused({ max = 2.5 }, "max must be a whole number")
      refused({ statement_cache = 0.5 }, "statement_cache must be a whole number")
    end)

    it("refuses a logger or on_slow_query that is not a function", function()
      refused({ logger = "stderr" }, "logger must be a function")
      refused({ on_slow_query = true }, "on_slow_query must be a function")
    end)

    it("a named pool refuses a query_timeout or reset that disagrees with the living one", function()
      local a = assert(pg.pool { name = "safety_named", min = 0, max = 1, reset = "always", query_timeout = 2 })
      refused({ name = "safety_named", reset = "never" }, "reset")
      refused({ name = "safety_named", query_timeout = 3 }, "query_timeout")
      local b = assert(pg.pool { name = "safety_named", reset = "always" })
      assert.is_true(b:close())
      assert.is_true(a:is_closed() or a:close())
    end)

    it("refuses a bad query_timeout, reset or leak_traceback", function()
      refused({ query_timeout = -1 }, "query_timeout")
      refused({ reset = "sometimes" }, "reset")
      refused({ leak_traceback = "yes" }, "leak_traceback")
    end)
  end)

  it("checks parameters before taking a connection (no wait for a free one)", function()
    local pool = assert(pg.pool { min = 1, max = 1, acquire_timeout = 5 })
    local held = assert(pool:acquire())
    local t0 = pg.monotonic()
    local res, err = pool:query("select $1", function() end)
    assert.is_nil(res)
    assert.are.equal("invalid_input", err.kind)
    assert.is_true(pg.monotonic() - t0 < 0.5)
    assert.are.equal(0, pool:stats().acquire_timeouts)
    pool:release(held)
    pool:close()
  end)
end)
