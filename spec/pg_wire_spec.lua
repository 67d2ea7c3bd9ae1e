-- Beyond one statement at a time: COPY, pipelines, streamed rows, LISTEN/NOTIFY.
local pg = require "coderunner.pg"
local server = require "support.server"

local function count(conn, sql)
  return assert(conn:query(sql))[1].n
end

describe("coderunner.pg wire features", function()
  local conn
  before_each(function()
    conn = server.connect()
    assert(conn:exec([[
      drop table if exists wire_t;
      create table wire_t (id int primary key, name text, flag boolean, score float8,
                           doc jsonb, blob bytea, tags text[])]]))
  end)
  after_each(function()
    if conn and not conn:is_closed() then
      conn:exec("drop table if exists wire_t")
      conn:close()
    end
  end)

  describe("copy_in", function()
    it("loads an array of rows, escaping tabs, newlines, carriage returns, backslashes and NULL", function()
      local tricky = "tab\there\nnew line\r\\back\\slash \\N"
      local n, err = conn:copy_in("COPY wire_t (id, name, flag, score, doc, blob, tags) FROM STDIN", {
        { 1, tricky, true, 1.5, { a = 1, b = { "x", pg.null } }, pg.bytea("\0\1\255\\"), pg.array { "a", "b c" } },
        { 2, pg.null, false, -0.25, pg.json "str", pg.bytea "", pg.array {} },
        { 3, "\\N", pg.null, pg.null, pg.null, pg.null, pg.null },
      })
      assert(n, err)
      assert.are.equal(3, n)
      local rows = assert(conn:query("select * from wire_t order by id"))
      assert.are.equal(tricky, rows[1].name)
      assert.is_true(rows[1].flag)
      assert.are.equal(1.5, rows[1].score)
      assert.are.equal(1, rows[1].doc.a)
      assert.are.equal("x", rows[1].doc.b[1])
      assert.are.equal("\0\1\255\\", rows[1].blob)
      assert.are.same({ "a", "b c" }, rows[1].tags)
      assert.is_nil(rows[2].name)
      assert.is_false(rows[2].flag)
      assert.are.equal("str", rows[2].doc)
      assert.are.equal("", rows[2].blob)
      assert.are.equal("\\N", rows[3].name)
      assert.is_nil(rows[3].flag)
    end)

    it("loads from an iterator, many chunks of rows", function()
      local i = 0
      local n = assert(conn:copy_in("copy wire_t (id, name) from stdin", function()
        i = i + 1
        if i <= 50000 then return { i, ("row %d\t%s"):format(i, ("x"):rep(i % 40)) } end
      end))
      assert.are.equal(50000, n)
      assert.are.equal(50000, count(conn, "select count(*) as n from wire_t"))
      assert.are.equal("row 777\t" .. ("x"):rep(777 % 40),
        conn:query("select name from wire_t where id = 777")[1].name)
    end)

    it("refuses a bad row before sending anything, writing nothing", function()
      local n, err = conn:copy_in("COPY wire_t (id, name) FROM STDIN", { { 1, "a" }, { 2, "b\0c" } })
      assert.is_nil(n)
      assert.are.equal("invalid_input", err.kind)
      assert.matches("row 2", err.message)
      assert.matches("column 2", err.message)
      n, err = conn:copy_in("COPY wire_t (id, name) FROM STDIN", { { 1, "a" }, { 2 } })
      assert.is_nil(n)
      assert.are.equal("invalid_input", err.kind)
      n, err = conn:copy_in("COPY wire_t (id, name) FROM STDIN", { { 1, "a" }, "not a row" })
      assert.is_nil(n)
      assert.are.equal("invalid_input", err.kind)
      n, err = conn:copy_in("COPY wire_t (id, name) FROM STDIN", { { 1, function() end } })
      assert.is_nil(n)
      assert.are.equal("invalid_input", err.kind)
      assert.are.equal(0, count(conn, "select count(*) as n from wire_t"))
      -- the connection is clean afterwards
      assert.are.equal(1, conn:query("select 1 as one")[1].one)
    end)

    it("aborts a COPY already under way on a bad row, writing nothing", function()
      local i = 0
      local n, err = conn:copy_in("COPY wire_t (id, name) FROM STDIN", function()
        i = i + 1
        if i == 40000 then return { i, {} , "extra" } end
        if i <= 50000 then return { i, ("y"):rep(30) } end
      end)
      assert.is_nil(n)
      assert.are.equal("invalid_input", err.kind)
      assert.matches("row 40000", err.message)
      assert.are.equal(0, count(conn, "select count(*) as n from wire_t"))
      assert.are.equal(1, conn:query("select 1 as one")[1].one)
    end)

    it("returns the server's error (duplicate key, wrong column count) and stays usable", function()
      local n, err = conn:copy_in("COPY wire_t (id, name) FROM STDIN", { { 1, "a" }, { 1, "b" } })
      assert.is_nil(n)
      assert.are.equal("23505", err.sqlstate)
      n, err = conn:copy_in("COPY wire_t (id) FROM STDIN", { { 1, "a" } })
      assert.is_nil(n)
      assert.are.equal("server", err.kind)
      n, err = conn:copy_in("COPY no_such_table FROM STDIN", { { 1 } })
      assert.is_nil(n)
      assert.are.equal("42P01", err.sqlstate)
      n, err = conn:copy_in("select 1", { { 1 } })
      assert.is_nil(n)
      assert.are.equal("invalid_input", err.kind)
      assert.are.equal(0, count(conn, "select count(*) as n from wire_t"))
    end)

    it("cleans up when the iterator raises, and re-raises", function()
      local i = 0
      local ok, msg = pcall(conn.copy_in, conn, "COPY wire_t (id, name) FROM STDIN", function()
        i = i + 1
        if i > 30000 then error("iterator failed") end
        return { i, "z" }
      end)
      assert.is_false(ok)
      assert.matches("iterator failed", tostring(msg))
      assert.are.equal(0, count(conn, "select count(*) as n from wire_t"))
    end)

    it("inside a transaction, a bad row in the first chunk sends nothing: the transaction goes on", function()
      assert(conn:transaction(function(tx)
        assert(tx:query("insert into wire_t (id) values (100)"))
        local n, err = tx:copy_in("COPY wire_t (id) FROM STDIN", { { 1 }, { pg.bytea "x", "two" } })
        assert.is_nil(n)
        assert.are.equal("invalid_input", err.kind)
        assert.are.equal(1, assert(tx:copy_in("COPY wire_t (id) FROM STDIN", { { 101 } })))
      end))
      assert.are.equal(2, count(conn, "select count(*) as n from wire_t"))
    end)

    it("works on pools and transactions", function()
      local pool = assert(pg.pool { max = 2 })
      assert.are.equal(2, assert(pool:copy_in("COPY wire_t (id) FROM STDIN", { { 1 }, { 2 } })))
      assert.are.equal(0, pool:stats().busy)
      local ok = assert(conn:transaction(function(tx)
        assert.are.equal(1, assert(tx:copy_in("COPY wire_t (id) FROM STDIN", { { 3 } })))
        return nil, pg.error("invalid_input", "roll it back")
      end) == nil)
      assert.is_true(ok)
      assert.are.equal(2, count(conn, "select count(*) as n from wire_t"))
      pool:close()
    end)
  end)

  describe("copy_out", function()
    it("yields rows as arrays of unescaped text, NULL as pg.null, or raw lines", function()
      assert(conn:copy_in("COPY wire_t (id, name) FROM STDIN", { { 1, "a\tb\\c\nd" }, { 2, pg.null } }))
      local got = {}
      for row in assert(conn:copy_out("COPY (select id, name from wire_t order by id) TO STDOUT")) do
        got[#got + 1] = row
      end
      assert.are.same({ { "1", "a\tb\\c\nd" }, { "2", pg.null } }, got)
      local lines = {}
      for line in assert(conn:copy_out("COPY wire_t (id, name) TO STDOUT", { raw = true })) do
        lines[#lines + 1] = line
      end
      table.sort(lines)
      assert.are.same({ "1\ta\\tb\\\\c\\nd\n", "2\t\\N\n" }, lines)
    end)

    it("reports errors and a statement that is not COPY TO STDOUT", function()
      local it, err = conn:copy_out("COPY nope TO STDOUT")
      assert.is_nil(it)
      assert.are.equal("42P01", err.sqlstate)
      it, err = conn:copy_out("select 1")
      assert.is_nil(it)
      assert.are.equal("invalid_input", err.kind)
      assert.are.equal(1, conn:query("select 1 as one")[1].one)
    end)

    it("leaves a clean connection after an early break", function()
      for _ = 1, 2 do
        for row in assert(conn:copy_out("COPY (select g, 'x' from generate_series(1, 200000) g) TO STDOUT")) do
          if row[1] == "10" then break end
        end
        assert.are.equal(1, conn:query("select 1 as one")[1].one)
      end
    end)
  end)

  describe("pipeline and batch", function()
    it("returns each statement's result in order", function()
      local results = assert(conn:pipeline(function(p)
        assert.are.equal(1, p:query("insert into wire_t (id, name) values ($1, $2)", 1, "a"))
        p:query("insert into wire_t (id, name) values ($1, $2)", 2, "b")
        p:query("select id, name from wire_t order by id")
      end))
      assert.are.equal(3, #results)
      assert.are.equal(0, results.errors)
      assert.are.equal(1, results[1].affected_rows)
      assert.are.equal("INSERT", results[2].command)
      assert.are.same({ 1, 2 }, { results[3][1].id, results[3][2].id })
    end)

    it("outside a transaction: a failing statement fails alone", function()
      local results = assert(conn:batch {
        { "insert into wire_t (id) values ($1)", 1 },
        { "insert into wire_t (id) values ($1)", 1 },
        { "select 1/0 as x" },
        { "insert into wire_t (id) values ($1)", 2 },
        { "select count(*) as n from wire_t" },
      })
      assert.are.equal(5, #results)
      assert.are.equal(2, results.errors)
      assert.are.equal(1, results[1].affected_rows)
      assert.is_true(pg.is_error(results[2]))
      assert.are.equal("23505", results[2].sqlstate)
      assert.are.equal("22012", results[3].sqlstate)
      assert.are.equal(1, results[4].affected_rows)
      assert.are.equal(2, results[5][1].n)
      assert.are.equal(2, count(conn, "select count(*) as n from wire_t"))
    end)

    it("inside a transaction: the rest is skipped and the transaction aborts", function()
      local results
      local ok, err = conn:transaction(function(tx)
        results = assert(tx:batch {
          { "insert into wire_t (id) values (1)" },
          { "insert into wire_t (id) values (1)" },
          { "insert into wire_t (id) values (2)" },
        })
        return true
      end)
      assert.is_nil(ok)
      assert.are.equal("25P02", err.sqlstate)
      assert.are.equal(1, results[1].affected_rows)
      assert.are.equal("23505", results[2].sqlstate)
      assert.are.equal("25P02", results[3].sqlstate)
      assert.are.equal(2, results.errors)
      assert.are.equal(0, count(conn, "select count(*) as n from wire_t"))
    end)

    it("refuses a bad batch before sending anything", function()
      local r, err = conn:batch { { "insert into wire_t (id) values (1)" }, { 42 } }
      assert.is_nil(r)
      assert.are.equal("invalid_input", err.kind)
      r, err = conn:batch { { "insert into wire_t (id) values ($1)", 1 }, { "select $1", function() end } }
      assert.is_nil(r)
      assert.are.equal("invalid_input", err.kind)
      r, err = conn:batch { { "insert into wire_t (id) values ($1)", 1 }, { "select $1, $2", 1 } }
      assert.is_nil(r)
      assert.are.equal("invalid_input", err.kind)
      assert.matches("2 parameters", err.message)
      -- in a pipeline, a wrong parameter count raises at p:query, before it is sent
      local ok, perr = pcall(conn.pipeline, conn, function(p)
        p:query("insert into wire_t (id) values ($1)", 7)
        p:query("select $1::int as a", 1, 2)
      end)
      assert.is_false(ok)
      assert.are.equal("invalid_input", perr.kind)
      assert.are.equal(1, count(conn, "select count(*) as n from wire_t where id = 7"))
      conn:query("delete from wire_t")
      assert.are.equal(0, count(conn, "select count(*) as n from wire_t"))
    end)

    it("runs a thousand statements and large results without deadlock, on a pool too", function()
      local list = {}
      for i = 1, 1000 do list[i] = { "insert into wire_t (id, name) values ($1, $2)", i, ("n"):rep(100) } end
      list[#list + 1] = { "select g, repeat('x', 100) as pad from generate_series(1, 50000) g" }
      local pool = assert(pg.pool { min = 0, max = 1 })
      local results = assert(pool:batch(list))
      assert.are.equal(1001, #results)
      assert.are.equal(0, results.errors)
      assert.are.equal(50000, #results[1001])
      assert.are.equal(1000, count(conn, "select count(*) as n from wire_t"))
      assert.are.equal(1, pool:query("select 1 as one")[1].one)
      pool:close()
    end)

    it("runs statements through the statement cache, and forgets a statement whose prepare failed", function()
      local c = assert(pg.connect("", { statement_cache = 3 }))
      local before = c:cache_stats()
      local results = assert(c:batch {
        { "select $1::int as v", 1 },
        { "select $1::int as v", 2 },
        { "selec broken" },
        { "select $1::int + 1 as v", 3 },
      })
      assert.are.equal(2, results[2][1].v)
      assert.are.equal("42601", results[3].sqlstate)
      assert.are.equal(4, results[4][1].v)
      local after = c:cache_stats()
      assert.are.equal(2, after.entries)            -- the broken one was forgotten
      assert.are.equal(before.hits + 1, after.hits)  -- the second "select $1::int" ran by name
      -- the cached statements work one at a time too, and the broken one never was cached
      assert.are.equal(5, c:query("select $1::int as v", 5)[1].v)
      assert.are.equal(c:cache_stats().hits, after.hits + 1)
      -- inside a transaction, a prepare skipped after a failure is forgotten too
      local ok = c:transaction(function(tx)
        local r = assert(tx:batch { { "select 1/0 as x" }, { "select $1::text as t", "never prepared" } })
        assert.are.equal("25P02", r[2].sqlstate)
        return true
      end)
      assert.is_nil(ok)
      assert.are.equal(3, c:cache_stats().entries) -- "select 1/0" was prepared (it failed running)
      local misses = c:cache_stats().misses
      assert.are.equal("now", c:query("select $1::text as t", "now")[1].t)
      assert.are.equal(misses + 1, c:cache_stats().misses)
      -- a full cache: new statements run unnamed
      results = assert(c:batch { { "select 8 as eight" }, { "select 9 as nine" } })
      assert.are.equal(9, results[2][1].nine)
      assert.are.equal(3, c:cache_stats().entries)
      c:close()
    end)

    it("re-raises an error in the callback after the queued statements ran", function()
      local ok, msg = pcall(conn.pipeline, conn, function(p)
        p:query("insert into wire_t (id) values (1)")
        error("callback failed")
      end)
      assert.is_false(ok)
      assert.matches("callback failed", tostring(msg))
      assert.are.equal(1, count(conn, "select count(*) as n from wire_t"))
    end)
  end)

  describe("rows", function()
    it("streams decoded rows one at a time", function()
      local sum, n = 0, 0
      for row in assert(conn:rows("select g as id, g::text as s, g % 2 = 0 as even from generate_series(1, $1) g",
        10000)) do
        n = n + 1
        sum = sum + row.id
        assert.are.equal(tostring(row.id), row.s)
        assert.are.equal(row.id % 2 == 0, row.even)
      end
      assert.are.equal(10000, n)
      assert.are.equal(10000 * 10001 / 2, sum)
    end)

    it("yields nothing for an empty result; returns nil, err for a bad query", function()
      for _ in assert(conn:rows("select 1 where false")) do error("no row expected") end
      local it, err = conn:rows("select * from no_such_table")
      assert.is_nil(it)
      assert.are.equal("42P01", err.sqlstate)
      it, err = conn:rows("select $1", function() end)
      assert.is_nil(it)
      assert.are.equal("invalid_input", err.kind)
    end)

    it("raises a server error in the middle of the stream, leaving a clean connection", function()
      local seen = 0
      local ok, err = pcall(function()
        for row in assert(conn:rows("select 10 / (5000 - g) as x from generate_series(1, 10000) g")) do
          seen = seen + 1
          assert(row.x ~= nil)
        end
      end)
      assert.is_false(ok)
      assert.are.equal("22012", err.sqlstate)
      assert.is_true(seen >= 1)
      assert.are.equal(1, conn:query("select 1 as one")[1].one)
    end)

    it("an early break, a Lua error in the loop and an abandoned iterator leave a clean connection", function()
      local big = "select g as id from generate_series(1, 1000000) g"
      for row in assert(conn:rows(big)) do
        if row.id == 3 then break end
      end
      assert.are.equal(1, conn:query("select 1 as one")[1].one)
      local ok = pcall(function()
        for row in assert(conn:rows(big)) do
          if row.id == 5 then error("stop") end
        end
      end)
      assert.is_false(ok)
      assert.are.equal(2, conn:query("select 2 as two")[1].two)
      -- abandoned: never closed, collected
      local it, state = assert(conn:rows(big))
      assert.are.equal(1, it(state).id)
      it, state = nil, nil -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
      assert.are.equal(3, conn:query("select 3 as three")[1].three)
      -- abandoned, still referenced: the next statement ends it, the iterator says so
      local it2, state2 = assert(conn:rows(big))
      assert.are.equal(1, it2(state2).id)
      assert.are.equal(4, conn:query("select 4 as four")[1].four)
      local ok2, msg = pcall(it2, state2)
      assert.is_false(ok2)
      assert.matches("ran another statement", msg)
      assert.is_nil(it2(state2))
      -- explicit close
      local it3, state3 = assert(conn:rows(big))
      assert.are.equal(1, it3(state3).id)
      state3:close()
      state3:close()
      assert.are.equal(5, conn:query("select 5 as five")[1].five)
    end)

    it("holds a pool connection for the iterator's life", function()
      local pool = assert(pg.pool { min = 0, max = 1, acquire_timeout = 0.2 })
      local n = 0
      for row in assert(pool:rows("select g as id from generate_series(1, 100) g")) do
        n = n + row.id
        assert.are.equal(1, pool:stats().busy)
      end
      assert.are.equal(5050, n)
      assert.are.equal(0, pool:stats().busy)
      for row in assert(pool:rows("select g as id from generate_series(1, 100000) g")) do
        if row.id == 2 then break end
      end
      if _VERSION == "Lua 5.4" and not jit then
        assert.are.equal(0, pool:stats().busy) -- closed by the for loop
      end
      collectgarbage()
      collectgarbage()
      assert.are.equal(0, pool:stats().busy)
      assert.are.equal(1, pool:query("select 1 as one")[1].one)
      pool:close()
    end)

    it("works inside a transaction", function()
      assert(conn:transaction(function(tx)
        tx:query("insert into wire_t (id) values (1), (2), (3)")
        local ids = {}
        for row in assert(tx:rows("select id from wire_t order by id")) do ids[#ids + 1] = row.id end
        assert.are.same({ 1, 2, 3 }, ids)
      end))
    end)
  end)

  describe("types the server is asked about", function()
    before_each(function()
      assert(conn:exec([[
        drop table if exists wire_typed; drop type if exists wire_mood; drop domain if exists wire_small;
        create type wire_mood as enum ('sad', 'ok', 'happy');
        create domain wire_small as int check (value < 1000);
        create table wire_typed (id int, mood wire_mood, moods wire_mood[], small wire_small, pt point);
        insert into wire_typed select g, 'ok', array['sad', 'happy']::wire_mood[], g % 1000, point(g, -g)
          from generate_series(1, 3000) g]]))
    end)
    after_each(function()
      conn:exec("drop table if exists wire_typed; drop type if exists wire_mood; drop domain if exists wire_small")
    end)

    it("rows decodes enums, enum arrays, domains and registered types as query does, every row", function()
      local fresh = server.connect()   -- knows none of these types yet
      pg.register_type("point", function(text)
        local x, y = text:match("^%((.-),(.-)%)$")
        return { x = tonumber(x), y = tonumber(y) }
      end, fresh)
      local want = assert(conn:query("select * from wire_typed where id = 7"))[1]
      local n = 0
      for row in assert(fresh:rows("select * from wire_typed order by id")) do
        n = n + 1
        assert.are.equal(n, row.id)
        assert.are.equal("ok", row.mood)
        assert.are.same({ "sad", "happy" }, row.moods)
        assert.are.equal(n % 1000, row.small)
        assert.are.same({ x = n, y = -n }, row.pt)
        if n == 7 then
          assert.are.same(want.moods, row.moods)
          assert.are.equal(want.small, row.small)
        end
      end
      assert.are.equal(3000, n)
      fresh:close()
    end)

    it("pipelines decode those types as query does", function()
      local fresh = server.connect()
      local results = assert(fresh:batch {
        { "select moods, small from wire_typed where id = $1", 5 },
        { "select mood from wire_typed where id = $1", 6 },
      })
      assert.are.equal(0, results.errors)
      assert.are.same({ "sad", "happy" }, results[1][1].moods)
      assert.are.equal(5, results[1][1].small)
      assert.are.equal("ok", results[2][1].mood)
      fresh:close()
    end)
  end)

  describe("LISTEN/NOTIFY", function()
    it("waits for a notification with a timeout, without spinning", function()
      local other = server.connect()
      assert(conn:listen("wire chan"))
      local started = pg.monotonic()
      local clock = os.clock()
      assert.is_nil(conn:wait_notification(0.3))
      assert.is_true(pg.monotonic() - started >= 0.29)
      assert.is_true(os.clock() - clock < 0.1) -- slept in poll, not spinning
      assert(other:query("select pg_notify($1, $2)", "wire chan", "hello"))
      local note = assert(conn:wait_notification(5))
      assert.are.equal("wire chan", note.channel)
      assert.are.equal("hello", note.payload)
      assert.are.equal(other:backend_pid(), note.pid)
      -- received during another statement: delivered at once
      assert(other:query("notify \"wire chan\""))
      assert(conn:query("select pg_sleep(0.1)"))
      note = assert(conn:wait_notification(0))
      assert.are.equal("", note.payload)
      assert(conn:unlisten("wire chan"))
      assert(other:query("select pg_notify($1, $2)", "wire chan", "ignored"))
      assert.is_nil(conn:wait_notification(0.2))
      local ok, err = conn:listen("")
      assert.is_nil(ok)
      assert.are.equal("invalid_input", err.kind)
      other:close()
    end)
  end)

  it("reads the values back unchanged through copy_in and rows", function()
    local list = {}
    for i = 1, 300 do list[i] = { i, string.char(i % 127 + 1) .. "\t\\\n" .. i } end
    assert(conn:copy_in("COPY wire_t (id, name) FROM STDIN", list))
    local got = {}
    for row in assert(conn:rows("select id, name from wire_t order by id")) do got[#got + 1] = { row.id, row.name } end
    assert.are.equal(#list, #got)
    for i = 1, #list do assert.are.same(list[i], got[i]) end
  end)
end)
