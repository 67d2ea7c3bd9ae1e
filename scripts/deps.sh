#!/bin/sh
# Installs the Debian packages the build, the tests and the demo need, when any
# is missing. Quiet and idempotent; never prompts (CI has no standard input).
set -eu
need="make gcc pkg-config lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev libpq-dev
postgresql postgresql-common lua-busted lua-cjson lua-check lua-argparse lua-filesystem python3 cppcheck luarocks
nginx libnginx-mod-http-lua"
[ "${1:-}" = "--extra" ] && need="$need valgrind clang libclang-rt-14-dev"
missing=""
for p in $need; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
