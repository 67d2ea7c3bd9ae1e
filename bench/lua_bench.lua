-- The benchmark workloads through coderunner.pg: the same statements and the
-- same work per row as bench/libpq_bench.c. Usage: lua_bench.lua WORKLOAD N [pool]
-- Prints "wall_seconds cpu_seconds max_rss_kb checksum" on one line.
local pg = require "coderunner.pg"

local workload, n, via = arg[1] or "point", tonumber(arg[2]) or 1000, arg[3] or "conn"

local wall = pg.monotonic

local function max_rss_kb()
  local f = io.open("/proc/self/status")
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmHWM:%s*(%d+)"))
end

local exec = via == "pool" and assert(pg.pool { min = 1, max = 1 }) or assert(pg.connect(""))
assert(exec:query("set client_min_messages = warning"))
local checksum = 0
local started, cpu_started

if workload == "point" then
  local sql = "select $1::int8 as id, 'user' || $1 as email, true as active"
  started, cpu_started = wall(), os.clock()
  for i = 0, n - 1 do
    local row = assert(exec:query(sql, i))[1]
    checksum = checksum + row.id + #row.email + (row.active and 1 or 0)
  end
elseif workload == "select1" then
  started, cpu_started = wall(), os.clock()
  for _ = 1, n do
    checksum = checksum + assert(exec:query("select 1 as one"))[1].one
  end
elseif workload == "wide" or workload == "wide_binary" then -- both: binary results when it can
  local sql = "select g as id, 'name ' || g as name, g * 1.5::float8 as score, g % 2 = 0 as even, "
    .. "jsonb_build_object('k', g, 'tags', jsonb_build_array('a', 'b')) as meta "
    .. "from generate_series(1, 1000) g"
  started, cpu_started = wall(), os.clock()
  for _ = 1, n do
    local rows = assert(exec:query(sql))
    for r = 1, #rows do
      local row = rows[r]
      checksum = checksum + row.id + #row.name + math.floor(row.score) + (row.even and 1 or 0)
        + row.meta.k -- decoded into a table, where C only kept the text
    end
  end
-- typical: int, uuid, text, timestamptz, numeric, jsonb, int4[]; both: binary results when it can
elseif workload == "typical" or workload == "typical_binary" then
  assert(exec:query("set timezone = 'UTC'"))
  assert(exec:query("create temp table bench_typical as select g as id, md5(g::text)::uuid as uid, "
    .. "'name ' || g as name, timestamptz '2024-01-01 00:00:00+00' + g * interval '61.25 seconds' as created, "
    .. "(g * 1.25)::numeric(12, 2) as amount, jsonb_build_object('k', g) as meta, array[g, g + 1] as tags "
    .. "from generate_series(1, 1000) g"))
  local sql = "select id, uid, name, created, amount, meta, tags from bench_typical"
  started, cpu_started = wall(), os.clock()
  for _ = 1, n do
    local rows = assert(exec:query(sql))
    for r = 1, #rows do
      local row = rows[r]
      checksum = checksum + row.id + #row.uid + #row.name + #row.created + math.floor(tonumber(row.amount))
        + row.meta.k + row.tags[2]
    end
  end
elseif workload == "insert" then
  assert(exec:query("create temp table bench_ins (id int8, name text, data jsonb)"))
  local sql = "insert into bench_ins values ($1, $2, $3)"
  started, cpu_started = wall(), os.clock()
  assert(exec:transaction(function(tx)
    for i = 0, n - 1 do
      checksum = checksum + assert(tx:query(sql, i, "a name", { n = i, ok = true })).affected_rows
    end
  end))
elseif workload == "copy" then
  assert(exec:query("create temp table bench_copy (id int8, name text, data jsonb)"))
  started, cpu_started = wall(), os.clock()
  local i = -1
  checksum = assert(exec:copy_in("COPY bench_copy (id, name, data) FROM STDIN", function()
    i = i + 1
    if i < n then return { i, "a name", { n = i, ok = true } } end
  end))
elseif workload == "pipeline" or workload == "pipeline_tx" then
  -- batches of 1000 inserts: outside a transaction (a sync after each) or in one
  assert(exec:query("create temp table bench_pipe (id int8, name text)"))
  local sql = "insert into bench_pipe values ($1, $2)"
  local function batch(x, b)
    local results = assert(x:pipeline(function(p)
      for j = 0, 999 do p:query(sql, b * 1000 + j, "a name") end
    end))
    assert(results.errors == 0)
    for j = 1, #results do checksum = checksum + results[j].affected_rows end
  end
  started, cpu_started = wall(), os.clock()
  for b = 0, math.floor(n / 1000) - 1 do
    if workload == "pipeline_tx" then
      assert(exec:transaction(function(tx) batch(tx, b) end))
    else
      batch(exec, b)
    end
  end
elseif workload == "stream" then
  local sql = "select g as id, 'row ' || g as name from generate_series(1, $1) g"
  started, cpu_started = wall(), os.clock()
  for row in assert(exec:rows(sql, n)) do
    checksum = checksum + row.id + #row.name
  end
else
  error("unknown workload " .. workload)
end
local elapsed, cpu = wall() - started, os.clock() - cpu_started
print(string.format("%.3f %.3f %d %.0f", elapsed, cpu, max_rss_kb(), checksum))
exec:close()
