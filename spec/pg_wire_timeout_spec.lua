-- Client-side deadlines beyond query/exec: batch, pipeline, rows, copy_in and
-- copy_out under query_timeout (connection or pool) or a per-call timeout.
-- Each statement here outlasts its deadline on the server (pg_sleep(5), a
-- lock, a sleeping trigger): the call returns kind "timeout" within the
-- deadline plus the cancel's grace, pg_stat_activity shows the server stopped
-- well before the 5 s would have ended, and the connection or pool serves the
-- next statement.
local pg = require "coderunner.pg"
local server = require "support.server"
local shell = require "support.shell"

describe("coderunner.pg deadlines on batch, pipeline, rows and COPY", function()
  local admin
  local GRACE = 2.5 -- the deadline plus this bounds every timed-out call

  setup(function()
    admin = server.connect()
    assert(admin:exec([[
      drop table if exists wt_copy;
      create table wt_copy (id int primary key);
      create or replace function wt_slow() returns trigger language plpgsql as $$
      begin
        if new.id = 99 then perform pg_sleep(5); end if;
        return new;
      end $$;
      create trigger wt_slow before insert on wt_copy for each row execute function wt_slow();
    ]]))
  end)

  teardown(function()
    admin:exec("drop table if exists wt_copy; drop function if exists wt_slow()")
    admin:close()
  end)

  -- true once no backend but ours runs a statement containing marker (the
  -- marker is passed as a parameter, so this query's own text lacks it)
  local function stopped(marker)
    return server.eventually(function()
      return admin:query("select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1",
        "%" .. marker .. "%")[1].n == 0
    end, 1)
  end

  local function timed(fn)
    local t0 = pg.monotonic()
    local a, b = fn()
    return a, b, pg.monotonic() - t0
  end

  -- runs a rows/copy_out iterator to its end: returns the rows read and the
  -- error (nil, err from the call, or the error the loop raised)
  local function drain(it, state)
    if not it then return 0, state end
    local n = 0
    local ok, e = pcall(function()
      for _ in it, state do n = n + 1 end
    end)
    if ok then return n, nil end
    return n, e
  end

  it("batch on a pool with query_timeout: timeout, work stopped, the pool serves the next", function()
    local pool = assert(pg.pool { min = 1, max = 1, query_timeout = 0.3, slow_query_ms = -1 })
    local res, err, took = timed(function()
      return pool:batch { { "select 1 as v" }, { "select pg_sleep(5) /* wt_batch */" } }
    end)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_true(took < 0.3 + GRACE, "took " .. took)
    assert.is_true(took >= 0.3)
    assert.is_truthy(stopped("wt_batch"))
    -- what finished keeps its result; the cut statement reports the timeout
    assert.are.equal(1, err.results[1][1].v)
    assert.are.equal("timeout", err.results[2].kind)
    assert.are.equal(7, assert(pool:query("select 7 as v"))[1].v)
    assert.are.equal(1, pool:stats().total)
    -- a batch within the deadline is untouched by it
    local ok = assert(pool:batch { { "select 1 as v" }, { "select pg_sleep(0.05)" } })
    assert.are.equal(0, ok.errors)
    pool:close()
  end)

  it("batch takes a per-call { timeout = } that overrides the connection's", function()
    local conn = assert(pg.connect(""))
    local res, err, took = timed(function()
      return conn:batch({ { "select pg_sleep(5) /* wt_batch2 */" } }, { timeout = 0.2 })
    end)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_true(took < 0.2 + GRACE, "took " .. took)
    assert.is_truthy(stopped("wt_batch2"))
    assert.are.equal(1, assert(conn:query("select 1 as v"))[1].v)
    assert.has_error(function() conn:batch({ { "select 1" } }, { timeout = -1 }) end)
    assert.has_error(function() conn:batch({ { "select 1" } }, { timeout = "1" }) end)
    conn:close()
  end)

  it("pipeline with a per-call timeout: finished statements keep their results", function()
    local conn = assert(pg.connect("", { query_timeout = 30 }))
    local pid = conn:backend_pid()
    local res, err, took = timed(function()
      return conn:pipeline(function(p)
        p:query("select 1 as v")
        p:query("select pg_sleep(5) /* wt_pipe */")
        p:query("select 2 as v")
      end, { timeout = 0.3 })
    end)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_true(took < 0.3 + GRACE, "took " .. took)
    assert.is_truthy(stopped("wt_pipe"))
    assert.are.equal(1, err.results[1][1].v)
    assert.are.equal("timeout", err.results[2].kind)
    -- outside a transaction each statement stands alone: the third ran after the cancel
    assert.are.equal(2, err.results[3][1].v)
    assert.are.equal(pid, conn:backend_pid())
    assert.are.equal(3, assert(conn:query("select 3 as v"))[1].v)
    conn:close()
  end)

  it("pipeline in a transaction: the timeout aborts it, the connection stays usable", function()
    local conn = assert(pg.connect("", { query_timeout = 0.3 }))
    local tx = assert(conn:begin())
    local res, err = tx:pipeline(function(p)
      p:query("insert into wt_copy values (1)")
      p:query("select pg_sleep(5) /* wt_pipetx */")
    end)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_truthy(stopped("wt_pipetx"))
    local ok, cerr = tx:commit()
    assert.is_nil(ok)
    assert.are.equal("25P02", cerr.sqlstate)
    assert.are.equal(0, admin:query("select count(*)::int as n from wt_copy")[1].n)
    assert(conn:query("select 1"))
    conn:close()
  end)

  it("rows on a pool: a wait for the first row past the deadline returns nil, err", function()
    local pool = assert(pg.pool { min = 1, max = 1, query_timeout = 0.3, slow_query_ms = -1 })
    local t0 = pg.monotonic()
    local n, e = drain(pool:rows("select pg_sleep(5) /* wt_rows */"))
    local took = pg.monotonic() - t0
    assert.are.equal(0, n)
    assert.are.equal("timeout", e.kind)
    assert.is_true(took < 0.3 + GRACE, "took " .. took)
    assert.is_truthy(stopped("wt_rows"))
    assert.are.equal(4, assert(pool:query("select 4 as v"))[1].v)
    -- the deadline is per wait: a stream longer than it, with rows coming (the
    -- server sends every 8 KB), runs to its end
    t0 = pg.monotonic()
    n, e = drain(pool:rows({ sql = "select g, repeat('x', 2000) as pad, pg_sleep(0.015) from generate_series(1, 60) g",
      timeout = 0.5 }))
    assert.is_nil(e)
    assert.are.equal(60, n)
    assert.is_true(pg.monotonic() - t0 > 0.5)
    pool:close()
  end)

  it("rows: a stall in the middle of the stream raises the timeout from the loop", function()
    local conn = assert(pg.connect(""))
    -- 200 rows of 1 KB reach the client (the server flushes every 8 KB), then the stream stalls
    local sql = "select g, case when g = 201 then pg_sleep(5)::text else repeat('x', 1000) end as pad "
      .. "from generate_series(1, 201) g /* wt_rows2 */"
    local t0 = pg.monotonic()
    local n, e = drain(conn:rows({ sql = sql, timeout = 0.3 }))
    local took = pg.monotonic() - t0
    assert.is_true(n > 0 and n <= 200, "rows " .. n)
    assert.are.equal("timeout", e.kind)
    assert.is_true(took < 0.3 + GRACE, "took " .. took)
    assert.is_truthy(stopped("wt_rows2"))
    assert.are.equal(5, assert(conn:query("select 5 as v"))[1].v)
    conn:close()
  end)

  it("copy_out with query_timeout: timeout, work stopped, connection usable", function()
    local conn = assert(pg.connect("", { query_timeout = 0.3 }))
    local t0 = pg.monotonic()
    local n, e = drain(conn:copy_out("COPY (select pg_sleep(5) /* wt_cout */) TO STDOUT"))
    local took = pg.monotonic() - t0
    assert.are.equal(0, n)
    assert.are.equal("timeout", e.kind)
    assert.is_true(took < 0.3 + GRACE, "took " .. took)
    assert.is_truthy(stopped("wt_cout"))
    assert.are.equal(6, assert(conn:query("select 6 as v"))[1].v)
    -- a per-call timeout in the statement table, and a COPY within it
    local rows = {}
    for row in assert(conn:copy_out({ sql = "COPY (select 1, 'a') TO STDOUT", timeout = 5 })) do
      rows[#rows + 1] = row
    end
    assert.are.same({ { "1", "a" } }, rows)
    n, e = drain(conn:copy_out({ sql = "COPY (select 1 union all select pg_sleep(5)::text::int /* wt_cout2 */) TO STDOUT",
      timeout = 0.2 }))
    assert.is_true(n <= 1) -- the first line, if the server sent it before the stall
    assert.are.equal("timeout", e.kind)
    assert.is_truthy(stopped("wt_cout2"))
    assert(conn:query("select 1"))
    conn:close()
  end)

  it("copy_in blocked on a lock, on a pool: timeout, no waiter left, the pool serves the next", function()
    local pool = assert(pg.pool { min = 1, max = 1, query_timeout = 0.3, slow_query_ms = -1 })
    local locker = server.connect()
    local tx = assert(locker:begin())
    assert(tx:query("lock table wt_copy in access exclusive mode"))
    local res, err, took = timed(function()
      return pool:copy_in("COPY wt_copy (id) FROM STDIN", { { 1 }, { 2 } })
    end)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_true(took < 0.3 + GRACE, "took " .. took)
    assert.is_truthy(server.eventually(function()
      return admin:query("select count(*)::int as n from pg_locks where not granted")[1].n == 0
    end, 1))
    assert.is_true(tx:rollback())
    locker:close()
    assert.are.equal(2, assert(pool:copy_in("COPY wt_copy (id) FROM STDIN", { { 1 }, { 2 } })))
    assert(pool:query("delete from wt_copy"))
    pool:close()
  end)

  it("copy_in whose rows the server is slow to store: per-call timeout, nothing stored", function()
    local conn = assert(pg.connect(""))
    local res, err, took = timed(function()
      return conn:copy_in({ sql = "COPY wt_copy (id) FROM STDIN /* wt_cin */", timeout = 0.3 }, { { 1 }, { 99 } })
    end)
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_true(took < 0.3 + GRACE, "took " .. took)
    assert.is_truthy(stopped("wt_cin"))
    assert.are.equal(0, admin:query("select count(*)::int as n from wt_copy")[1].n)
    assert.are.equal(1, assert(conn:copy_in("COPY wt_copy (id) FROM STDIN", { { 3 } })))
    assert(conn:query("delete from wt_copy"))
    conn:close()
  end)

  it("a server that answers nothing: batch, rows, copy_in and copy_out give the connection up", function()
    local pool = assert(pg.pool { min = 1, max = 1, query_timeout = 0.2, slow_query_ms = -1 })
    local calls = {
      function(c) return c:batch { { "select 1" } } end,
      function(c)
        local n, e = drain(c:rows("select 1"))
        return n > 0 or nil, e
      end,
      function(c)
        local n, e = drain(c:copy_out("COPY (select 1) TO STDOUT"))
        return n > 0 or nil, e
      end,
      function(c) return c:copy_in("COPY wt_copy (id) FROM STDIN", { { 5 } }) end,
    }
    for i, call in ipairs(calls) do
      local conn = assert(pool:acquire())
      local pid = conn:backend_pid()
      assert.is_true(shell.sh("kill -STOP " .. pid))
      local res, err, took = timed(function() return call(conn) end)
      shell.sh("kill -CONT " .. pid)
      assert.is_nil(res, "call " .. i)
      assert.are.equal("timeout", err.kind, "call " .. i)
      assert.is_true(took < 0.2 + GRACE + 0.5, "call " .. i .. " took " .. took)
      res, err = conn:query("select 1")
      assert.is_nil(res)
      assert.are.equal("closed", err.kind)
      pool:release(conn)
      local other = assert(pool:query("select pg_backend_pid() as p"))[1].p
      assert.are_not.equal(pid, other, "call " .. i)
    end
    assert.are.equal(0, admin:query("select count(*)::int as n from wt_copy")[1].n)
    pool:close()
  end)

  it("an abandoned stream on a server that answers nothing: the next use ends it in bounded time", function()
    -- no deadline on the stream itself: settling it at the next use is bounded
    -- anyway (cancel, then a drain within a few seconds), and the connection
    -- is given up rather than waited on
    local pool = assert(pg.pool { min = 1, max = 1, slow_query_ms = -1 })
    local conn = assert(pool:acquire())
    local pid = conn:backend_pid()
    do
      local next_row, cursor = assert(conn:rows("select g from generate_series(1, 2000000) g"))
      assert.is_truthy(next_row(cursor)) -- the stream is open, most of it unread
    end
    collectgarbage()
    collectgarbage()
    assert.is_true(shell.sh("kill -STOP " .. pid))
    local res, err, took = timed(function() return conn:query("select 1 as one") end)
    shell.sh("kill -CONT " .. pid)
    assert.is_true(took < 10, "settling took " .. took .. " s")
    if res then
      -- the server's buffered rows and the cancel reply may all have arrived
      assert.are.equal(1, res[1].one)
    else
      assert.are.equal("closed", err.kind)
    end
    pool:release(conn)
    assert.are.equal(1, assert(pool:query("select 1 as one"))[1].one)
    pool:close()
  end)

  it("wait_notification(timeout) sleeps without spinning and returns on time", function()
    local conn = assert(pg.connect(""))
    assert(conn:listen("wt_chan"))
    local c0, t0 = os.clock(), pg.monotonic()
    local note, err = conn:wait_notification(0.5)
    local cpu, wall = os.clock() - c0, pg.monotonic() - t0
    assert.is_nil(note)
    assert.is_nil(err)
    assert.is_true(wall >= 0.45 and wall < 1.5, "wall " .. wall)
    assert.is_true(cpu < 0.1, "cpu " .. cpu)
    conn:close()
  end)
end)
