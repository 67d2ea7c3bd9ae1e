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
external_dependencies = {
  PQ = { header = "libpq-fe.h", library = "pq" },
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    PG_INCDIR = "$(PQ_INCDIR)",
    PG_LIBDIR = "$(PQ_LIBDIR)",
  },
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}
test_dependencies = {
  "busted",
  "lua-cjson",
}
test = {
  type = "busted",
}
