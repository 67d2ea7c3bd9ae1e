rockspec_format = "3.0"
package = "coderunner-db"
version = "scm-1"
source = {
  url = "git+https://example.invalid/coderunner/coderunner-db.git",
}
description = {
  summary = "PostgreSQL client (C core on libpq) and the CodeRunner database service",
  detailed = [[
coderunner.pg: connections, a thread-safe pool, prepared-statement cache,
transactions with savepoints and retries, typed decoding, error objects.
coderunner.db: users, projects and deployments over it, with a checksummed
migration runner and an admin CLI. Lua 5.4 and LuaJIT 2.1 (OpenResty).]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "argparse",
  "luafilesystem",
}
-- libpq: LuaRocks finds the library; the header comes from `pg_config
-- --includedir` (Debian keeps it in /usr/include/postgresql), or from PQ_INCDIR
-- when it holds libpq-fe.h (`luarocks make PQ_INCDIR=...`).
external_dependencies = {
  PQ = { library = "pq" },
}
build = {
  type = "make",
  -- Both passes see the same VM and headers, so the install pass takes the
  -- module the build pass made (build/lua5.4 or build/luajit): for the 5.1 ABI
  -- the Makefile compiles against LuaJIT's headers (pkg-config luajit).
  variables = {
    LUA = "$(LUA)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    PQ_INCDIR = "$(PQ_INCDIR)",
    PG_LIBDIR = "$(PQ_LIBDIR)",
  },
  build_variables = {
    CFLAGS = "$(CFLAGS)",
  },
  -- Everything into the rock's own directories (so it is in the rock's
  -- manifest): modules and coderunner/migrations/*.sql under LUADIR, pg.so
  -- under LIBDIR, the CLI under BINDIR.
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}
-- `luarocks test`: the busted installed for this Lua (Debian's lua-busted, or a
-- busted rock) runs the specs (.busted) under the rock's own interpreter, so
-- the Lua 5.4 tree is tested by lua5.4 and the LuaJIT tree by luajit. The specs
-- need a PostgreSQL server named by PG* or DATABASE_URL
-- (`pg_virtualenv luarocks test`). busted and lua-cjson are not listed as
-- test_dependencies: LuaRocks would insist on installing them as rocks even
-- when the system already provides them.
test = {
  type = "command",
  script = "scripts/luarocks-test.lua",
}
