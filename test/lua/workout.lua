-- A workload through every part of the C core, for the sanitizer and valgrind
-- runs (`make asan`, `make valgrind`): each path allocates and frees, errors
-- included. Needs a server in the PG* environment. Exits non-zero on a wrong answer.
local pg = require "coderunner.pg"

local rounds = tonumber(arg and arg[1]) or 3

local function check(cond, what)
  if not cond then
    io.stderr:write("workout: ", tostring(what), "\n")
    os.exit(1)
  end
end

for _ = 1, rounds do
  local conn = assert(pg.connect("", { statement_cache = 3, slow_query_ms = 0, logger = function() end }))
  assert(conn:exec("drop table if exists wk; create temp table wk (id int8 primary key, j jsonb, a text[], b bytea)"))
  for i = 1, 20 do
    assert(conn:query("insert into wk values ($1, $2, $3, $4)", i, { n = i, list = { 1, "two", true, pg.null } },
      pg.array { "x", pg.null, "y,z", '"q"' }, pg.bytea(string.rep("\0\255", i))))
  end
  local res = assert(conn:query("select * from wk order by id"))
  check(#res == 20 and res[20].j.n == 20 and res[3].a[3] == "y,z" and #res[2].b == 4, "round trip")
  local _, err = conn:query("insert into wk (id) values (1)")
  check(err and err.kind == "conflict", "conflict")
  _, err = conn:query("select $1::int", {})
  check(err and err.kind == "server", "bad cast")
  _, err = conn:query("select $1", function() end)
  check(err and err.kind == "invalid_input", "bad param")
  assert(conn:query("select 1::int2, 2.5::float4, 'NaN'::numeric, array[1,2]::int8[], '{\"a\":[[],{}]}'::json"))
  assert(conn:exec("do $$ begin raise notice 'n'; end $$"))
  for i = 1, 6 do assert(conn:query("select " .. i .. " as v")) end -- evictions
  assert(conn:transaction(function(tx)
    assert(tx:query("update wk set j = $1 where id = 1", { changed = true }))
    tx:transaction(function(inner) inner:query("select broken") end)
    return true
  end))
  local tx = assert(conn:begin { isolation = "serializable", settings = { ["app.x"] = 1 } })
  tx:rollback()
  conn:close()

  local pool = assert(pg.pool { min = 1, max = 2, acquire_timeout = 0.05, statement_cache = 2 })
  local a, b = assert(pool:acquire()), assert(pool:acquire())
  local c, perr = pool:acquire()
  check(c == nil and perr.kind == "pool_timeout", "pool timeout")
  pool:release(a)
  b:query("begin")
  pool:release(b)
  for i = 1, 10 do assert(pool:query("select $1::int + 1 as v", i)) end
  local ok, terr = pool:transaction(function() error("boom") end)
  check(ok == nil and tostring(terr):find("boom"), "tx error")
  assert(pool:transaction(function(t) return t:query("select 1") end, { retries = 1 }))
  local held = assert(pool:begin())
  held:query("select 1")
  held = nil -- luacheck: ignore (collected while active)
  collectgarbage()
  check(pool:stats().queries > 10, "stats")
  pool:close(1)
  check(#pg.split_sql("select 1; select ';'; $$ ; $$;") == 3, "split")
  check(pg.redact("postgres://u:p@h/d"):find("p@", 1, true) == nil, "redact")
end
collectgarbage()
print("workout ok")
