/* Error objects: tables with kind, message and, for server errors, libpq's
 * diagnostic fields, sharing one metatable whose __tostring reads well in
 * assert(). */
#include <stdlib.h>
#include <string.h>

#include "core.h"

const char *const crpg_kind_names[KIND_COUNT] = {
  "connect", "server", "timeout", "pool_timeout", "closed",
  "invalid_input", "conflict", "invalid_transition",
};

void crpg_new_error(lua_State *L, error_kind kind, const char *message) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, crpg_kind_names[kind]);
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

static error_kind kind_for_sqlstate(const char *state) {
  if (!state) return KIND_SERVER;
  if (strcmp(state, "23505") == 0) return KIND_CONFLICT;
  if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0) return KIND_TIMEOUT;
  if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
      strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
    return KIND_CLOSED;
  return KIND_SERVER;
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
  error_kind kind = kind_for_sqlstate(state);
  size_t n;

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
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
    lua_pushlstring(L, msg, n);
    crpg_new_error(L, kind, lua_tostring(L, -1));
    lua_remove(L, -2);
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

/* pg.error{ kind = "...", message = "...", ... } -> err
 * Turns the given table into an error object (the Lua layers' invalid_input,
 * invalid_transition, ...). Raises on an unknown kind or a missing message. */
static int pg_error(lua_State *L) {
  int i, known = 0;
  const char *kind;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  kind = lua_tostring(L, -1);
  for (i = 0; kind && i < KIND_COUNT; i++) known |= strcmp(kind, crpg_kind_names[i]) == 0;
  if (!known) return luaL_argerror(L, 1, "unknown error kind");
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) return luaL_argerror(L, 1, "message must be a string");
  lua_settop(L, 1);
  luaL_getmetatable(L, CRPG_ERROR_MT);
  lua_setmetatable(L, 1);
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
  static const luaL_Reg functions[] = {{"error", pg_error}, {"is_error", pg_is_error}, {NULL, NULL}};
  luaL_newmetatable(L, CRPG_ERROR_MT);
  luaL_setfuncs(L, metamethods, 0);
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
}
