/* coderunner.pg: the opener. Builds the module table (the parameter wrappers
 * pg.json, pg.array, pg.bytea; pg.null; small pure helpers exposed to Lua),
 * opens each type, and installs the methods the executor types share
 * (transaction, begin, copy_in, copy_out, rows, pipeline, batch) into the
 * conn, pool and tx metatables, so no type
 * names another's functions. Nothing calls this file; its only exported symbol
 * is luaopen_coderunner_pg. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "conninfo.h"
#include "crpg.h"
#include "redact.h"
#include "sql_split.h"

#define CRPG_VERSION "0.1.0"

/* Wraps the argument in a one-slot table carrying the named metatable. */
static int wrap(lua_State *L, const char *mt) {
  lua_settop(L, 1);
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  luaL_getmetatable(L, mt);
  lua_setmetatable(L, -2);
  return 1;
}

/* pg.json(v) -> parameter sent as JSON text (any value; plain tables already are) */
static int pg_json(lua_State *L) {
  luaL_checkany(L, 1);
  return wrap(L, CRPG_JSON_MT);
}

/* pg.array(t) -> parameter sent as an array literal ("{1,2,NULL}") */
static int pg_array(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  return wrap(L, CRPG_ARRAY_MT);
}

/* pg.bytea(s) -> parameter sent as binary bytea */
static int pg_bytea(lua_State *L) {
  luaL_checkstring(L, 1);
  return wrap(L, CRPG_BYTEA_MT);
}

/* pg.redact(conninfo) -> the conninfo or URL with passwords masked */
static int pg_redact(lua_State *L) {
  const char *in = luaL_checkstring(L, 1);
  strbuf b;
  strbuf_init(&b);
  redact_conninfo(&b, in);
  if (b.failed) {
    strbuf_free(&b);
    return luaL_error(L, "out of memory");
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  strbuf_free(&b);
  return 1;
}

/* pg.conninfo_with(conninfo, changes) -> keyword conninfo | nil, err
 * conninfo in any form (keywords, URL, "" for PG*); changes maps libpq keywords
 * to a string or number (set) or false (remove). */
static int pg_conninfo_with(lua_State *L) {
  const char *in = luaL_optstring(L, 1, "");
  conninfo_change changes[64];
  size_t n = 0;
  char err[256];
  strbuf b;
  lua_settop(L, 2);
  lua_newtable(L); /* 3: keeps the strings made from numbers alive */
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) { /* key at -2, value at -1 */
      int t = lua_type(L, -1);
      if (lua_type(L, -2) != LUA_TSTRING || n == sizeof changes / sizeof changes[0] ||
          !(t == LUA_TSTRING || t == LUA_TNUMBER || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))))
        return luaL_argerror(L, 2, "keyword = string, number or false expected");
      changes[n].key = lua_tostring(L, -2);
      changes[n].value = NULL;
      if (t != LUA_TBOOLEAN) {
        lua_pushvalue(L, -1);
        changes[n].value = lua_tostring(L, -1); /* a copy: the key's value stays as it was */
        lua_rawseti(L, 3, (int)n + 1);
      }
      n++;
      lua_pop(L, 1);
    }
  }
  strbuf_init(&b);
  if (conninfo_with(&b, in, changes, n, err, sizeof err) != 0) {
    strbuf_free(&b);
    return crpg_push_error(L, KIND_INVALID_INPUT, err);
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  strbuf_free(&b);
  return 1;
}

typedef struct split_ctx {
  lua_State *L;
  int n;
} split_ctx;

static int add_statement(void *ctx, const char *stmt, size_t len, int line) {
  split_ctx *c = ctx;
  lua_createtable(c->L, 0, 2);
  lua_pushlstring(c->L, stmt, len);
  lua_setfield(c->L, -2, "sql");
  lua_pushinteger(c->L, line);
  lua_setfield(c->L, -2, "line");
  lua_rawseti(c->L, -2, ++c->n);
  return 0;
}

/* pg.split_sql(script) -> { {sql=, line=}, ... } | nil, err
 * Statements split at semicolons outside quotes, dollar quotes and comments. */
static int pg_split_sql(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  split_ctx c;
  c.L = L;
  c.n = 0;
  lua_newtable(L);
  if (sql_split(text, len, add_statement, &c) != 0)
    return crpg_push_error(L, KIND_INVALID_INPUT, "SQL script ends inside a quoted string, dollar quote or comment");
  return 1;
}

/* pg.json_encode(v) -> json text | nil, err (kind invalid_input) */
static int pg_json_encode(lua_State *L) {
  strbuf b;
  char err[160];
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  strbuf_init(&b);
  if (crpg_json_encode(L, 1, &b, err, sizeof err) != 0 || b.failed) {
    strbuf_free(&b);
    return crpg_push_error(L, KIND_INVALID_INPUT, b.failed ? "out of memory" : err);
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  strbuf_free(&b);
  return 1;
}

/* pg.json_decode(text) -> value | nil, err (kind invalid_input) */
static int pg_json_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  if (crpg_json_decode(L, text, len) != 0)
    return crpg_push_error(L, KIND_INVALID_INPUT, "invalid JSON text");
  return 1;
}

/* pg.sleep(seconds): blocks the calling thread (never forks a process) */
static int pg_sleep(lua_State *L) {
  double secs = (double)luaL_checknumber(L, 1);
  struct timespec ts;
  if (!(secs > 0)) return 0;
  if (secs > 86400.0) secs = 86400.0;
  ts.tv_sec = (time_t)secs;
  ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

/* pg.monotonic() -> seconds (a float) from a monotonic clock, for timing */
static int pg_monotonic(lua_State *L) {
  lua_pushnumber(L, (lua_Number)session_now());
  return 1;
}

/* Adds the shared executor methods to the __index table of metatable name. */
static void add_executor_methods(lua_State *L, const char *name) {
  static const luaL_Reg shared[] = {
    {"transaction", crpg_transaction},
    {"begin", crpg_begin},
    {"copy_in", crpg_copy_in},
    {"copy_out", crpg_copy_out},
    {"rows", crpg_rows},
    {"pipeline", crpg_pipeline},
    {"batch", crpg_batch},
    {NULL, NULL},
  };
  crpg_add_methods(L, name, shared);
}

static void new_marker_mt(lua_State *L, const char *name) {
  luaL_newmetatable(L, name);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}

/* require "coderunner.pg" */
#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int luaopen_coderunner_pg(lua_State *L);
int luaopen_coderunner_pg(lua_State *L) {
  static const luaL_Reg functions[] = {
    {"json", pg_json},
    {"array", pg_array},
    {"bytea", pg_bytea},
    {"redact", pg_redact},
    {"conninfo_with", pg_conninfo_with},
    {"split_sql", pg_split_sql},
    {"monotonic", pg_monotonic},
    {"json_encode", pg_json_encode},
    {"json_decode", pg_json_decode},
    {"sleep", pg_sleep},
    {NULL, NULL},
  };
  new_marker_mt(L, CRPG_JSON_MT);
  new_marker_mt(L, CRPG_ARRAY_MT);
  new_marker_mt(L, CRPG_BYTEA_MT);
  new_marker_mt(L, CRPG_JSON_ARRAY_MT);

  lua_newtable(L);
  crpg_push_null(L); /* pg.null: the light userdata NULL, as cjson.null and ngx.null */
  lua_setfield(L, -2, "null");
  luaL_setfuncs(L, functions, 0);
  crpg_open_error(L);
  crpg_open_conn(L);
  crpg_open_pool(L);
  crpg_open_tx(L);
  crpg_open_result(L);
  crpg_open_rows(L);
  crpg_open_pipeline(L);
  crpg_open_notify(L);
  add_executor_methods(L, CRPG_CONN_MT);
  add_executor_methods(L, CRPG_POOL_MT);
  add_executor_methods(L, CRPG_TX_MT);
  luaL_getmetatable(L, CRPG_JSON_ARRAY_MT);
  lua_setfield(L, -2, "json_array_mt");
  lua_pushliteral(L, CRPG_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, PQlibVersion());
  lua_setfield(L, -2, "libpq_version");
  return 1;
}
