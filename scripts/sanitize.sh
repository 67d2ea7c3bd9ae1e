#!/bin/sh
# Runs the core's specs and the workout under AddressSanitizer + UBSan
# (`asan`) or valgrind (`valgrind`), against the server in the PG* environment.
# Fails on any sanitizer report, definite leak or invalid access.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
mode=$1
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;"
case "$mode" in
  asan)
    export LUA_CPATH="$root/build/asan/?.so;;"
    export LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_odr_violation=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    # libpq and the Lua interpreter keep a few process-lifetime allocations
    export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0"
    lua5.4 test/lua/workout.lua 3
    lua5.4 /usr/bin/busted -o TAP spec/pg_types_spec.lua spec/pg_conn_spec.lua spec/pg_pool_spec.lua \
      spec/pg_tx_spec.lua spec/pg_values_spec.lua spec/pg_named_pool_spec.lua spec/pg_wire_spec.lua \
      spec/pg_binary_spec.lua spec/pg_tx_safety_spec.lua spec/pg_timeout_spec.lua spec/pg_reset_spec.lua \
      spec/pg_pool_safety_spec.lua spec/pg_conn_safety_spec.lua
    ;;
  valgrind)
    export LUA_CPATH="$root/build/lua5.4/?.so;;"
    vg="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"
    $vg lua5.4 test/lua/workout.lua 2
    $vg lua5.4 /usr/bin/busted -o TAP spec/pg_types_spec.lua spec/pg_conn_spec.lua spec/pg_pool_spec.lua \
      spec/pg_tx_spec.lua spec/pg_values_spec.lua spec/pg_named_pool_spec.lua spec/pg_wire_spec.lua \
      spec/pg_binary_spec.lua
    ;;
  *) echo "usage: sanitize.sh asan|valgrind" >&2; exit 2 ;;
esac
echo "$mode: clean"
