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
elseif workload == "wide" then
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
elseif workload == "insert" then
  assert(exec:query("create temp table bench_ins (id int8, name text, data jsonb)"))
  local sql = "insert into bench_ins values ($1, $2, $3)"
  started, cpu_started = wall(), os.clock()
  assert(exec:transaction(function(tx)
    for i = 0, n - 1 do
      checksum = checksum + assert(tx:query(sql, i, "a name", { n = i, ok = true })).affected_rows
    end
  end))
else
  error("unknown workload " .. workload)
end
local elapsed, cpu = wall() - started, os.clock() - cpu_started
print(string.format("%.3f %.3f %d %.0f", elapsed, cpu, max_rss_kb(), checksum))
exec:close()
