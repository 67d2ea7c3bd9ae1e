#!/bin/sh
# `luarocks make` as a user runs it, for Lua 5.4 and for LuaJIT (the 5.1 ABI),
# each into a temporary tree, from a copy of this checkout (its tracked and
# untracked files, no build/): the Lua 5.4 tree first, so the LuaJIT build runs
# in a checkout that already holds a 5.4 build. Then, from another directory,
# with only the tree's paths (`luarocks path`): require "coderunner.db", a
# transaction, coderunner.migrate's default directory (inside the rock), and
# `coderunner-db migrate status` / `migrate up`. Needs the server in PG*
# (pg_virtualenv). Dependencies (argparse) come from Debian's packages, hence
# --deps-mode none. LuaJIT's luarocks config names the luajit interpreter, as
# OpenResty's does; Debian's 5.1 headers are swapped for LuaJIT's by the Makefile.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
[ -n "${PGHOST:-}${DATABASE_URL:-}" ] || { echo "test-rocks: no PostgreSQL server in the environment (PG*)" >&2; exit 1; }
tmp=$(mktemp -d -t coderunner-rocks.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
src="$tmp/src" work="$tmp/elsewhere"
mkdir -p "$src" "$work"
(cd "$root" && git ls-files -co --exclude-standard -z | grep -zv '^build/' | xargs -0 tar cf -) | (cd "$src" && tar xf -)
printf 'lua_interpreter = "luajit"\nvariables = { LUA = "/usr/bin/luajit", LUA_BINDIR = "/usr/bin" }\n' > "$tmp/luajit-config.lua"

fail() { echo "test-rocks: $*" >&2; exit 1; }

build_tree() { # <lua-version> <tree> [env...]
  ver=$1 tree=$2
  shift 2
  (cd "$src" && env MAKEFLAGS=-j2 "$@" luarocks --lua-version "$ver" make --deps-mode none --tree "$tree" \
    rockspec/coderunner-db-scm-1.rockspec >"$tmp/build-$ver.log" 2>&1) \
    || { cat "$tmp/build-$ver.log"; fail "luarocks make for Lua $ver failed"; }
  grep -q "is now installed" "$tmp/build-$ver.log" || fail "luarocks make for Lua $ver installed nothing"
  if grep -n "warning:" "$tmp/build-$ver.log"; then fail "compiler warnings for Lua $ver"; fi
  manifest="$tree/lib/luarocks/rocks-$ver/coderunner-db/scm-1/rock_manifest"
  grep -q '001_initial_schema.sql' "$manifest" || fail "the migrations are not in the rock's manifest ($manifest)"
  [ -f "$tree/share/lua/$ver/coderunner/migrations/001_initial_schema.sql" ] \
    || fail "the migrations are not deployed under $tree/share/lua/$ver/coderunner/migrations"
}

build_tree 5.4 "$tmp/tree54"
[ -f "$src/build/lua5.4/coderunner/pg.so" ] || fail "no Lua 5.4 build in the copy before the LuaJIT build"
build_tree 5.1 "$tmp/treejit" LUAROCKS_CONFIG="$tmp/luajit-config.lua"
grep -q -- "$(pkg-config --cflags-only-I luajit)" "$tmp/build-5.1.log" \
  || fail "the 5.1 build did not compile against LuaJIT's headers"
cmp -s "$tmp/tree54/lib/lua/5.4/coderunner/pg.so" "$tmp/treejit/lib/lua/5.1/coderunner/pg.so" \
  && fail "the LuaJIT tree holds the Lua 5.4 module"

# A fresh database per VM for the CLI's migrations.
check_vm() { # <vm> <lua-version> <tree> [env...]
  vm=$1 ver=$2 tree=$3
  shift 3
  TREE=$tree
  export TREE
  dbname="coderunner_rocks_$(echo "$vm" | tr -c 'a-z0-9\n' '_')"
  PGOPTIONS="-c client_min_messages=warning" psql -qAt -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" \
    -c "CREATE DATABASE $dbname" >/dev/null
  url="dbname=$dbname"
  (
    cd "$work"
    eval "$(env "$@" luarocks --lua-version "$ver" --tree "$tree" path)"
    export DATABASE_URL="$url"
    unset LUA_PATH_5_4 LUA_CPATH_5_4 CODERUNNER_MIGRATIONS
    "$vm" -e '
      local db = require "coderunner.db"
      local pg = require "coderunner.pg"
      local tree = assert(os.getenv("TREE"))
      assert(package.searchpath("coderunner.pg", package.cpath):find(tree, 1, true) == 1, "pg.so not from the tree")
      assert(package.searchpath("coderunner.db", package.path):find(tree, 1, true) == 1, "db.lua not from the tree")
      local svc = assert(db.new({ pool = { max = 1 } }))
      local n = assert(svc.pool:transaction(function(tx)
        assert(tx:query("CREATE TEMP TABLE t (n int)"))
        assert(tx:query("INSERT INTO t VALUES ($1), ($2)", 1, 2))
        return tx:query("SELECT sum(n) AS s FROM t")[1].s
      end))
      assert(n == 3, "transaction result")
      local migrate = require "coderunner.migrate"
      local runner = assert(migrate.new(svc.pool))
      assert(runner.dir:find(tree, 1, true) == 1, "coderunner.migrate looks in " .. tostring(runner.dir))
      svc:close()
      print(("%s: coderunner.db %s, a transaction, migrations in %s"):format(_VERSION, pg.version, runner.dir))
    ' || fail "$vm: require, transaction or migrations directory failed"
    status=$(coderunner-db migrate status 2>&1) || { echo "$status"; fail "$vm: coderunner-db migrate status failed"; }
    echo "$status" | grep -q "001" || { echo "$status"; fail "$vm: migrate status does not list 001"; }
    coderunner-db migrate up >/dev/null 2>&1 || fail "$vm: coderunner-db migrate up failed"
    [ -z "$(ls -A "$work")" ] || fail "$vm: the CLI wrote into the current directory: $(ls -A "$work")"
  ) || exit 1
  psql -qAt -c "DROP DATABASE $dbname WITH (FORCE)" >/dev/null
  echo "test-rocks: $vm tree ok"
}

check_vm lua5.4 5.4 "$tmp/tree54"
check_vm luajit 5.1 "$tmp/treejit" LUAROCKS_CONFIG="$tmp/luajit-config.lua"
# `luarocks test` in the checkout copy: the installed busted, under each
# tree's interpreter (a wrong VM would fail to load the other VM's pg.so).
rocks_test() { # <lua-version> <vm> [env...]
  ver=$1 vm=$2
  shift 2
  out=$(cd "$src" && env "$@" luarocks --lua-version "$ver" test rockspec/coderunner-db-scm-1.rockspec \
    -- --output=TAP spec/pg_helpers_spec.lua 2>&1) || { echo "$out"; fail "luarocks test for $vm failed"; }
  echo "$out" | grep -q '^ok 3 ' || { echo "$out"; fail "luarocks test for $vm ran no spec"; }
  echo "test-rocks: luarocks test ok on $vm"
}
rocks_test 5.4 lua5.4
rocks_test 5.1 luajit LUAROCKS_CONFIG="$tmp/luajit-config.lua"
echo "test-rocks: both trees built, loaded and migrated from another directory"
