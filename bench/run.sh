#!/bin/sh
# `make bench`: each workload through raw libpq in C and through coderunner.pg
# on Lua 5.4 and LuaJIT, in one run, against the server in the PG* environment.
# Prints wall time, client CPU time and peak memory as ratios to C. The
# checksums must agree: the same work was done.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
export LUA_PATH="$root/lua/?.lua;;"
scale=${BENCH_SCALE:-3}
cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -I"$(pg_config --includedir)" -o build/libpq_bench bench/libpq_bench.c -lpq

run() { # vm workload n [via]
  if [ "$1" = c ]; then build/libpq_bench "$2" "$3"
  else LUA_CPATH="$root/build/$1/?.so;;" "$1" bench/lua_bench.lua "$2" "$3" "${4:-conn}"; fi
}

printf '%-14s %-18s %9s %8s %9s %8s %9s %8s\n' workload client wall_s "x C" cpu_s "x C" rss_kb "x C"
status=0
for spec in "point $((20000 * scale))" "wide $((60 * scale))" "insert $((20000 * scale))" "point/pool $((20000 * scale))"; do
  set -- $spec
  name=$1; n=$2; workload=${name%/*}; via=conn
  [ "$name" != "$workload" ] && via=pool
  base=$(run c "$workload" "$n")
  set -- $base
  cw=$1 cc_=$2 cr=$3 csum=$4
  printf '%-14s %-18s %9s %8s %9s %8s %9s %8s\n' "$name" "libpq (C)" "$cw" "1.00" "$cc_" "1.00" "$cr" "1.00"
  for vm in lua5.4 luajit; do
    out=$(run "$vm" "$workload" "$n" "$via")
    set -- $out
    [ "$4" = "$csum" ] || { echo "checksum mismatch for $name on $vm: $4 vs $csum" >&2; status=1; }
    awk -v n="$name" -v c="coderunner/$vm" -v w="$1" -v u="$2" -v r="$3" -v cw="$cw" -v cu="$cc_" -v cr="$cr" \
      'function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
       BEGIN { printf "%-14s %-18s %9s %8s %9s %8s %9s %8s\n", n, c, w, ratio(w, cw), u, ratio(u, cu), r, ratio(r, cr) }'
  done
done
exit $status
