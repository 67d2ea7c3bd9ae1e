#!/bin/sh
# `make bench`: each workload through raw libpq in C and through coderunner.pg
# on Lua 5.4 and LuaJIT, in one run, against the server in the PG* environment.
# Prints wall time, client CPU time and peak memory as ratios to C. The clients
# take turns for BENCH_ROUNDS rounds and the best round of each counts, so load
# from elsewhere on the machine hits them alike. The checksums must agree: the
# same work was done.
#
# Two passes (BENCH_MODES, default "pinned unpinned"): pinned runs every client
# under `taskset -c 0` and, when this user may, moves the postmaster (so every
# new backend) to CPU 0 too, so the client's own cost shows in wall time;
# unpinned leaves both to the scheduler.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
export LUA_PATH="$root/lua/?.lua;;"
scale=${BENCH_SCALE:-2}
rounds=${BENCH_ROUNDS:-3}
modes=${BENCH_MODES:-pinned unpinned}
workloads=${BENCH_WORKLOADS:-"point $((10000 * scale))
select1 $((10000 * scale))
wide $((30 * scale))
wide_binary $((30 * scale))
typical $((30 * scale))
typical_binary $((30 * scale))
insert $((10000 * scale))
point/pool $((10000 * scale))
copy $((100000 * scale))
pipeline $((5000 * scale))
pipeline_tx $((10000 * scale))
stream 1000000"}
cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -I"$(pg_config --includedir)" -Icsrc -o build/libpq_bench bench/libpq_bench.c csrc/binary.c -lpq -lm

# The postmaster's pid (first line of postmaster.pid; needs a superuser).
postmaster=$(psql -XAtc "select split_part(pg_read_file('postmaster.pid'), E'\\n', 1)" 2>/dev/null || true)
ncpu=$(nproc)

pin_server() { # cpu list
  [ -n "$postmaster" ] || { echo "bench: server pid unknown: the server is not pinned" >&2; return 0; }
  taskset -a -p -c "$1" "$postmaster" >/dev/null 2>&1 || echo "bench: cannot pin the server (not its owner?)" >&2
}

run() { # prefix client workload n via
  prefix=$1
  shift
  if [ "$1" = c ]; then $prefix build/libpq_bench "$2" "$3"
  else LUA_CPATH="$root/build/$1/?.so;;" $prefix "$1" bench/lua_bench.lua "$2" "$3" "$4"; fi
}

results=$(mktemp)
trap 'rm -f "$results"; pin_server "0-$((ncpu - 1))"' EXIT
status=0
for mode in $modes; do
  : > "$results"
  if [ "$mode" = pinned ]; then
    pin_server 0
    prefix="taskset -c 0"
  else
    pin_server "0-$((ncpu - 1))"
    prefix=""
  fi
  echo "$workloads" | while read -r name n; do
    [ -n "$name" ] || continue
    workload=${name%/*} via=conn
    [ "$name" != "$workload" ] && via=pool
    round=1
    while [ "$round" -le "$rounds" ]; do
      for client in c lua5.4 luajit; do
        echo "$name $client $(run "$prefix" "$client" "$workload" "$n" "$via")" >> "$results"
      done
      round=$((round + 1))
    done
  done

  echo "== $mode (best of $rounds rounds; ratios to C: time, lower is better)"
  awk '
    function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
    {
      key = $1 SUBSEP $2
      if (!(key in wall) || $3 < wall[key]) wall[key] = $3
      if (!(key in cpu) || $4 < cpu[key]) cpu[key] = $4
      if (!(key in rss) || $5 < rss[key]) rss[key] = $5
      if (!(key in sum)) sum[key] = $6
      else if (sum[key] != $6) bad = bad " " $1 "/" $2
      if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }
    }
    END {
      printf "%-12s %-20s %8s %6s %8s %6s %8s %6s\n", "workload", "client", "wall_s", "x C", "cpu_s", "x C", "rss_kb", "x C"
      split("c lua5.4 luajit", clients, " ")
      for (i = 1; i <= n; i++) {
        w = order[i]; c = w SUBSEP "c"
        for (j = 1; j <= 3; j++) {
          k = w SUBSEP clients[j]
          if (sum[k] != sum[c]) bad = bad " " w "/" clients[j]
          label = clients[j] == "c" ? "libpq (C)" : "coderunner/" clients[j]
          printf "%-12s %-20s %8.3f %6s %8.3f %6s %8d %6s\n", w, label, wall[k], ratio(wall[k], wall[c]),
            cpu[k], ratio(cpu[k], cpu[c]), rss[k], ratio(rss[k], rss[c])
        }
      }
      if (bad != "") { print "checksum mismatch:" bad > "/dev/stderr"; exit 1 }
    }' "$results" || status=1
done
exit $status
