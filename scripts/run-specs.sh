#!/bin/sh
# Runs the busted specs once per Lua VM named on the command line (lua5.4,
# luajit), against the server in the PG* environment (pg_virtualenv sets it).
# SPECS="spec/x_spec.lua" narrows the run; a VM's run is stopped after
# SPEC_TIMEOUT seconds (480) so a hang fails fast. Ends with one
# "N passed, N failed" line over every VM.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
[ -n "${PGHOST:-}${DATABASE_URL:-}" ] || { echo "run-specs: no PostgreSQL server in the environment (PG* or DATABASE_URL)" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0 passed=0 failed=0
for vm in "$@"; do
  echo "== specs on $vm =="
  LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;" \
  LUA_CPATH="$root/build/$vm/?.so;;" \
  CODERUNNER_LUA="$vm" \
    timeout "${SPEC_TIMEOUT:-480}" "$vm" /usr/bin/busted --output=utfTerminal ${SPECS:-spec} | tee "$log"
  # "315 successes / 0 failures / 0 errors / 0 pending : ..."
  summary=$(grep -a 'successes / ' "$log" | tail -n 1)
  [ -n "$summary" ] || { status=1; failed=$((failed + 1)); continue; }
  passed=$((passed + $(echo "$summary" | awk '{print $1}')))
  failed=$((failed + $(echo "$summary" | awk '{print $4 + $7}')))
done
echo "specs: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit $status
