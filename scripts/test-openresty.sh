#!/bin/sh
# `make test-openresty`: the OpenResty example (examples/openresty) under load,
# over HTTP, against the server in the PG* environment (pg_virtualenv sets it).
#
# Makes a fresh database, applies the migrations, starts nginx with the
# example's nginx.conf on a spare loopback port (in a temporary prefix), drives
# it with scripts/test-openresty.py (which checks every response, the stored
# rows, the server connections and /ping latency under load), and stops its
# nginx by PID. Needs `make build LUA=luajit` first.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
[ -n "${PGHOST:-}${DATABASE_URL:-}" ] || { echo "test-openresty: no PostgreSQL server in the environment (PG*)" >&2; exit 1; }
[ -f build/luajit/coderunner/pg.so ] || { echo "test-openresty: build/luajit/coderunner/pg.so is missing (make build LUA=luajit)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "test-openresty: nginx is missing (sh scripts/deps.sh)" >&2; exit 1; }

dbname=coderunner_openresty
app=coderunner-openresty           # application_name of the example's connections
workers=${OPENRESTY_WORKERS:-2}    # worker_processes in the test's nginx.conf
pool_max=4                         # the example's pool max (per worker process)

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" \
  -c "CREATE DATABASE $dbname" >/dev/null
DATABASE_URL="dbname=$dbname application_name=$app"
export DATABASE_URL
luajit bin/coderunner-db migrate up >/dev/null

tmp=$(mktemp -d)
pid=""
stop_nginx() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -QUIT "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
cleanup() { stop_nginx; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/logs"
# The example's nginx.conf, with this checkout's paths, the spare port, and the
# test's own locations (scripts/test-openresty.locations).
sed -e "s#\$prefix/\.\./\.\.#$root#g" -e "s#\$prefix/lua#$root/examples/openresty/lua#g" \
    -e "s#listen 127.0.0.1:8080;#listen 127.0.0.1:$port;#" \
    -e "s#^worker_processes .*#worker_processes $workers;#" \
    -e 's#^error_log .*#error_log logs/error.log info;#' \
    -e "s#location = /ping#$(grep -v '^#' scripts/test-openresty.locations | tr '\n' ' ')\n        location = /ping#" \
    examples/openresty/nginx.conf >"$tmp/nginx.conf"
grep -q "listen 127.0.0.1:$port;" "$tmp/nginx.conf" || { echo "test-openresty: could not set the port" >&2; exit 1; }
user=""
[ "$(id -u)" -eq 0 ] && user="user root;"   # workers must read this checkout and the socket dir
nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/logs/error.log" -g "daemon off; $user" &
pid=$!

status=0
python3 scripts/test-openresty.py --url "http://127.0.0.1:$port" --dbname "$dbname" --app "$app" \
  --workers "$workers" --pool-max "$pool_max" || status=$?
stop_nginx
# nginx's own complaints (a Lua error in a handler, a crash) fail the run too.
if grep -E '\[(error|crit|alert|emerg)\]' "$tmp/logs/error.log" >"$tmp/problems"; then
  echo "test-openresty: nginx's error.log has errors:" >&2
  head -n 20 "$tmp/problems" >&2
  status=1
fi
[ $status -eq 0 ] && echo "test-openresty: passed" || echo "test-openresty: FAILED" >&2
exit $status
