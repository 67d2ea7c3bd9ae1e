/* Error objects: tables with kind, message and, for server errors, libpq's
 * diagnostic fields, sharing one metatable whose __tostring reads well in
 * assert(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crpg.h"

#define KINDS_KEY "coderunner.pg.error_kinds"  /* registry: { name = true } registered by Lua */

void crpg_new_error(lua_State *L, error_kind kind, const char *message) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, sqlstate_kind_names[kind]);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  luaL_getmetatable(L, CRPG_ERROR_MT);
  lua_setmetatable(L, -2);
}

int crpg_push_error(lua_State *L, error_kind kind, const char *message) {
  lua_pushnil(L);
  crpg_new_error(L, kind, message);
  return 2;
}

static void set_field(lua_State *L, const PGresult *r, int code, const char *name) {
  const char *v = PQresultErrorField(r, code);
  if (v && *v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, name);
  }
}

/* Pushes an error object for a failed result (r may be NULL when libpq ran
 * out of memory). A lost connection is kind "closed" whatever the server said. */
error_kind crpg_push_result_error(lua_State *L, const PGresult *r, const session *s) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *position = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
  error_kind kind = sqlstate_lookup(state, primary).kind;

  /* 08xxx means "closed" only when the connection really is gone: a protocol
   * error (08P01) on a live connection is the server refusing a message. */
  if (session_is_broken(s)) kind = KIND_CLOSED;
  else if (kind == KIND_CLOSED && state && strncmp(state, "08", 2) == 0) kind = KIND_SERVER;
  if (primary) {
    crpg_new_error(L, kind, primary);
  } else {
    /* libpq's own message ("server closed the connection unexpectedly\n...") */
    const char *msg = r ? PQresultErrorMessage(r) : "";
    if (!*msg && s->pg) msg = PQerrorMessage(s->pg);
    if (!*msg) msg = "out of memory";
    {
      /* one line: libpq's hint lines folded in */
      char line[512];
      snprintf(line, sizeof line, "%s", msg);
      session_one_line(line);
      crpg_new_error(L, kind, line);
    }
  }
  if (!r) return kind;
  set_field(L, r, PG_DIAG_SQLSTATE, "sqlstate");
  set_field(L, r, PG_DIAG_SEVERITY_NONLOCALIZED, "severity");
  set_field(L, r, PG_DIAG_MESSAGE_DETAIL, "detail");
  set_field(L, r, PG_DIAG_MESSAGE_HINT, "hint");
  set_field(L, r, PG_DIAG_CONTEXT, "where");
  set_field(L, r, PG_DIAG_SCHEMA_NAME, "schema");
  set_field(L, r, PG_DIAG_TABLE_NAME, "table");
  set_field(L, r, PG_DIAG_COLUMN_NAME, "column");
  set_field(L, r, PG_DIAG_DATATYPE_NAME, "datatype");
  set_field(L, r, PG_DIAG_CONSTRAINT_NAME, "constraint");
  if (position) {
    lua_pushinteger(L, (lua_Integer)atoi(position));
    lua_setfield(L, -2, "position");
  }
  return kind;
}

/* tostring(err) -> "kind: message (SQLSTATE xxxxx)". Never includes detail,
 * which can quote row values. */
static int error_tostring(lua_State *L) {
  luaL_Buffer b;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_buffinit(L, &b);
  lua_getfield(L, 1, "kind");
  if (lua_isstring(L, -1)) {
    luaL_addvalue(&b);
    luaL_addstring(&b, ": ");
  } else {
    lua_pop(L, 1);
  }
  lua_getfield(L, 1, "message");
  if (lua_isstring(L, -1)) luaL_addvalue(&b); else lua_pop(L, 1);
  lua_getfield(L, 1, "sqlstate");
  if (lua_isstring(L, -1)) {
    luaL_addstring(&b, " (SQLSTATE ");
    luaL_addvalue(&b);
    luaL_addchar(&b, ')');
  } else {
    lua_pop(L, 1);
  }
  luaL_pushresult(&b);
  return 1;
}

/* 1 when name is one of the core's kinds or one registered from Lua. */
static int known_kind(lua_State *L, const char *name) {
  int i, known = 0;
  if (!name) return 0;
  for (i = 0; i < KIND_COUNT; i++) if (strcmp(name, sqlstate_kind_names[i]) == 0) return 1;
  lua_getfield(L, LUA_REGISTRYINDEX, KINDS_KEY);
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, name);
    known = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return known;
}

/* pg.error{ kind = "...", message = "...", ... } -> err
 * Turns the given table into an error object (the Lua layers' invalid_input,
 * or a kind they registered with pg.register_error_kind). Raises on an
 * unknown kind or a missing message. */
static int pg_error(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  if (!known_kind(L, lua_tostring(L, -1))) return luaL_argerror(L, 1, "unknown error kind");
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) return luaL_argerror(L, 1, "message must be a string");
  lua_settop(L, 1);
  luaL_getmetatable(L, CRPG_ERROR_MT);
  lua_setmetatable(L, 1);
  return 1;
}

/* pg.register_error_kind(name) -> name
 * Lets pg.error build errors of a kind the domain layer owns (such as
 * "invalid_transition"). name: lower-case letters, digits and underscores.
 * Idempotent, per Lua state. Pools do not count registered kinds: the core
 * never returns them from a statement. */
static int pg_register_error_kind(lua_State *L) {
  size_t len, i;
  const char *name = luaL_checklstring(L, 1, &len);
  if (len == 0 || len > 64) return luaL_argerror(L, 1, "a kind is 1 to 64 characters");
  for (i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return luaL_argerror(L, 1, "a kind is lower-case letters, digits and underscores");
  }
  lua_getfield(L, LUA_REGISTRYINDEX, KINDS_KEY);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, KINDS_KEY);
  }
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, name);
  lua_settop(L, 1);
  return 1;
}

/* pg.sqlstate_info(sqlstate [, message]) -> { kind, retryable, stale_plan, rejects_value }
 * The core's facts about a SQLSTATE: the error kind it maps to, whether the
 * transaction may succeed if run again, whether a cached plan went stale
 * (message tells the generic codes apart), whether the server refused a value. */
static int pg_sqlstate_info(lua_State *L) {
  sqlstate_info info = sqlstate_lookup(luaL_checkstring(L, 1), luaL_optstring(L, 2, NULL));
  lua_createtable(L, 0, 4);
  lua_pushstring(L, sqlstate_kind_names[info.kind]);
  lua_setfield(L, -2, "kind");
  lua_pushboolean(L, info.retryable);
  lua_setfield(L, -2, "retryable");
  lua_pushboolean(L, info.stale_plan);
  lua_setfield(L, -2, "stale_plan");
  lua_pushboolean(L, info.rejects_value);
  lua_setfield(L, -2, "rejects_value");
  return 1;
}

/* pg.is_error(v) -> boolean */
static int pg_is_error(lua_State *L) {
  int same = 0;
  if (lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, CRPG_ERROR_MT);
    same = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, same);
  return 1;
}

void crpg_open_error(lua_State *L) {
  static const luaL_Reg metamethods[] = {{"__tostring", error_tostring}, {NULL, NULL}};
  static const luaL_Reg functions[] = {{"error", pg_error},
                                            {"is_error", pg_is_error},
                                            {"register_error_kind", pg_register_error_kind},
                                            {"sqlstate_info", pg_sqlstate_info},
                                            {NULL, NULL}};
  luaL_newmetatable(L, CRPG_ERROR_MT);
  luaL_setfuncs(L, metamethods, 0);
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
}
