#!/bin/sh
# Runs the busted specs once per Lua VM named on the command line (lua5.4,
# luajit), against the server in the PG* environment (pg_virtualenv sets it).
# SPECS="spec/x_spec.lua" narrows the run.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
[ -n "${PGHOST:-}${DATABASE_URL:-}" ] || { echo "run-specs: no PostgreSQL server in the environment (PG* or DATABASE_URL)" >&2; exit 1; }
status=0
for vm in "$@"; do
  echo "== specs on $vm =="
  LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;" \
  LUA_CPATH="$root/build/$vm/?.so;;" \
  CODERUNNER_LUA="$vm" \
    "$vm" /usr/bin/busted --output=utfTerminal ${SPECS:-spec} || status=1
done
exit $status
