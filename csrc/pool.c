/* The connection pool (coderunner.pg.pool): a Lua object holding a reference
 * to a pool_core (pool_core.c, pure C, where the sessions, the lock and the
 * counters live) and the hooks table (logger, on_slow_query). */
#include <stdio.h>
#include <string.h>

#include "crpg.h"
#include "redact.h"

typedef struct pool_handle {
  pool_core *core;             /* one reference; NULL once closed */
} pool_handle;

/* ---- the Lua object -------------------------------------------------------------- */

static pool_handle *to_pool(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CRPG_POOL_MT);
}

static pool_core *check_pool(lua_State *L, int idx) {
  pool_handle *h = to_pool(L, idx);
  if (!h->core) luaL_error(L, "attempt to use a closed pool");
  return h->core;
}

/* Reads opts[key] as a number >= min (dflt when absent). Returns 0, or -1 with
 * a message in err. */
static int read_number(lua_State *L, const char *key, double dflt, double min, double *out, char *err, size_t errlen) {
  if (crpg_opt_number(L, 1, key, dflt, min, out) == 0) return 0;
  snprintf(err, errlen, "pool option %s must be a number >= %g", key, min);
  return -1;
}

/* Largest number an int option may hold before pool_config_check judges it. */
static int as_int(double v) {
  return v > 1e9 ? 1000000000 : (int)v;
}

/* pg.pool{ conninfo=, min=2, max=10, idle_timeout=30, connect_timeout=2,
 *          acquire_timeout=5, max_lifetime=, statement_cache=100,
 *          slow_query_ms=1000, on_slow_query=fn, logger=fn } -> pool | nil, err
 * Fails only for bad options or an unparsable conninfo; an unreachable server
 * is not an error here (queries report it). */
static int pool_new(lua_State *L) {
  double min, max, cache;
  char err[256], *perr = NULL;
  PQconninfoOption *parsed;
  pool_config c;
  pool_handle *h;

  pool_config_defaults(&c);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "conninfo");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "pool option conninfo must be a string");
  c.conninfo = lua_isnil(L, -1) ? "" : lua_tostring(L, -1); /* 2: kept on the stack */
  if (read_number(L, "min", c.min, 0, &min, err, sizeof err) ||
      read_number(L, "max", c.max, 1, &max, err, sizeof err) ||
      read_number(L, "idle_timeout", c.idle_timeout, 0, &c.idle_timeout, err, sizeof err) ||
      read_number(L, "connect_timeout", c.connect_timeout, 0.001, &c.connect_timeout, err, sizeof err) ||
      read_number(L, "acquire_timeout", c.acquire_timeout, 0, &c.acquire_timeout, err, sizeof err) ||
      read_number(L, "max_lifetime", c.max_lifetime, 0, &c.max_lifetime, err, sizeof err) ||
      read_number(L, "statement_cache", c.cache_size, 0, &cache, err, sizeof err) ||
      read_number(L, "slow_query_ms", c.slow_ms, -1, &c.slow_ms, err, sizeof err))
    return crpg_push_error(L, KIND_INVALID_INPUT, err);
  if (min > max) return crpg_push_error(L, KIND_INVALID_INPUT, "pool option min must not exceed max");
  c.min = as_int(min);
  c.max = as_int(max);
  c.cache_size = as_int(cache);
  if (pool_config_check(&c, err, sizeof err) != 0) return crpg_push_error(L, KIND_INVALID_INPUT, err);

  parsed = PQconninfoParse(c.conninfo, &perr);
  if (!parsed) {
    strbuf b;
    strbuf_init(&b);
    strbuf_puts(&b, "invalid conninfo: ");
    /* libpq quotes the offending part, which may hold the password: say less */
    strbuf_puts(&b, perr && strstr(perr, "password") == NULL ? perr : "could not parse it");
    if (perr) PQfreemem(perr);
    lua_pushnil(L);
    crpg_new_error(L, KIND_INVALID_INPUT, b.data ? b.data : "invalid conninfo");
    strbuf_free(&b);
    return 2;
  }
  PQconninfoFree(parsed);

  lua_newtable(L); /* 3: hooks */
  lua_getfield(L, 1, "logger");
  lua_setfield(L, 3, "logger");
  lua_getfield(L, 1, "on_slow_query");
  lua_setfield(L, 3, "on_slow_query");

  h = lua_newuserdatauv(L, sizeof *h, 1); /* 4 */
  h->core = NULL;
  luaL_getmetatable(L, CRPG_POOL_MT);
  lua_setmetatable(L, 4);
  crpg_set_hooks(L, 4, 3);

  h->core = pool_core_new(&c, err, sizeof err);
  if (!h->core) return luaL_error(L, "%s", err); /* the config was checked: out of memory */
  return 1;
}

/* Runs one statement (or, simple, a script) on a connection taken for it. */
static int pool_run(lua_State *L, int simple) {
  pool_core *p = check_pool(L, 1);
  int n = lua_gettop(L) - 2, results;
  char err[256];
  session *s;
  exec_target t;
  error_kind kind;

  luaL_checkstring(L, 2);
  if (simple) lua_settop(L, 2);
  kind = pool_core_acquire(p, &s, err, sizeof err);
  if (kind != KIND_COUNT) return crpg_push_error(L, kind, err);
  crpg_getuservalue(L, 1); /* hooks pushed above the parameters */
  t.s = s;
  t.pool = p;
  t.slow_ms = pool_core_slow_ms(p);
  t.hooks = lua_gettop(L);
  results = crpg_run(L, &t, 2, 3, n < 0 || simple ? 0 : n, simple);
  pool_core_release(p, s);
  return results;
}

/* pool:query(sql, ...) -> res | nil, err */
static int pool_query(lua_State *L) { return pool_run(L, 0); }

/* pool:exec(script) -> res | nil, err  (several statements, no parameters) */
static int pool_exec(lua_State *L) { return pool_run(L, 1); }

/* Pushes a connection borrowed from the pool at idx (1 result), or nil, err (2). */
int crpg_pool_push_conn(lua_State *L, int idx) {
  pool_core *p = check_pool(L, idx);
  char err[256];
  session *s;
  error_kind kind = pool_core_acquire(p, &s, err, sizeof err);
  if (kind != KIND_COUNT) return crpg_push_error(L, kind, err);
  crpg_getuservalue(L, idx);
  crpg_push_borrowed_conn(L, s, p, pool_core_slow_ms(p), -1);
  lua_remove(L, -2);
  return 1;
}

/* pool:acquire() -> conn | nil, err   (give it back with pool:release(conn)) */
static int pool_acquire(lua_State *L) {
  return crpg_pool_push_conn(L, 1);
}

/* pool:release(conn): rolls back any open transaction and parks the connection. */
static int pool_release(lua_State *L) {
  pool_core *p = to_pool(L, 1)->core; /* NULL once closed: the connection then closes */
  conn_handle *c = luaL_checkudata(L, 2, CRPG_CONN_MT);
  if (!c->pool || (p && c->pool != p)) return luaL_argerror(L, 2, "connection does not belong to this pool");
  crpg_release_conn(c);
  return 0;
}

/* pool:maintain(): closes expired idle connections, opens up to min. */
static int pool_maintain(lua_State *L) {
  pool_core_maintain(check_pool(L, 1));
  return 0;
}

#define SET_INT(name, value) (lua_pushinteger(L, (lua_Integer)(value)), lua_setfield(L, -2, name))

/* pool:stats() -> { total, idle, busy, waiting, min, max, queries, slow_queries,
 *   errors = { kind = n }, connections_opened, connections_closed,
 *   acquire_timeouts, cache_hits, cache_misses, last_error } */
static int pool_stats_method(lua_State *L) {
  pool_stats c;
  int k;
  pool_core_stats(check_pool(L, 1), &c);
  lua_createtable(L, 0, 16);
  SET_INT("total", c.total);
  SET_INT("idle", c.idle);
  SET_INT("busy", c.total - c.idle);
  SET_INT("waiting", c.waiting);
  SET_INT("min", c.min);
  SET_INT("max", c.max);
  SET_INT("queries", c.queries);
  SET_INT("slow_queries", c.slow_queries);
  SET_INT("connections_opened", c.opened);
  SET_INT("connections_closed", c.closed);
  SET_INT("acquire_timeouts", c.acquire_timeouts);
  SET_INT("cache_hits", c.cache_hits);
  SET_INT("cache_misses", c.cache_misses);
  lua_createtable(L, 0, KIND_COUNT);
  for (k = 0; k < KIND_COUNT; k++) SET_INT(sqlstate_kind_names[k], c.errors[k]);
  lua_setfield(L, -2, "errors");
  if (c.last_error[0]) {
    lua_pushstring(L, c.last_error);
    lua_setfield(L, -2, "last_error");
  }
  return 1;
}

/* pool:close([timeout]) -> true when every connection is closed, else false
 * (busy ones close when released). Idempotent. */
static int pool_close(lua_State *L) {
  pool_handle *h = to_pool(L, 1);
  double timeout = (double)luaL_optnumber(L, 2, 0);
  pool_core *p = h->core;
  int left;
  if (!p) {
    lua_pushboolean(L, 1);
    return 1;
  }
  h->core = NULL;
  left = pool_core_close(p, timeout);
  pool_core_detach(p);
  lua_pushboolean(L, left == 0);
  return 1;
}

static int pool_gc(lua_State *L) {
  lua_settop(L, 1);
  return pool_close(L);
}

/* pool:is_closed() -> boolean */
static int pool_is_closed(lua_State *L) {
  lua_pushboolean(L, to_pool(L, 1)->core == NULL);
  return 1;
}

static int pool_tostring(lua_State *L) {
  pool_handle *h = to_pool(L, 1);
  strbuf b;
  if (!h->core) {
    lua_pushstring(L, CRPG_POOL_MT " (closed)");
    return 1;
  }
  strbuf_init(&b);
  redact_conninfo(&b, pool_core_conninfo(h->core));
  lua_pushfstring(L, "%s (%s)", CRPG_POOL_MT, b.data && b.len ? b.data : "PG* environment");
  strbuf_free(&b);
  return 1;
}

void crpg_open_pool(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"query", pool_query},
    {"exec", pool_exec},
    {"acquire", pool_acquire},
    {"release", pool_release},
    {"maintain", pool_maintain},
    {"stats", pool_stats_method},
    {"close", pool_close},
    {"is_closed", pool_is_closed},
    {NULL, NULL},
  };
  static const luaL_Reg metamethods[] = {
    {"__gc", pool_gc},
    {"__close", pool_gc},
    {"__tostring", pool_tostring},
    {NULL, NULL},
  };
  static const luaL_Reg functions[] = {{"pool", pool_new}, {NULL, NULL}};
  crpg_new_type(L, CRPG_POOL_MT, methods, metamethods);
  luaL_setfuncs(L, functions, 0);
}
