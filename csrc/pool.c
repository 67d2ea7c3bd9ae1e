/* The connection pool (coderunner.pg.pool): a Lua object holding a pool
 * (pool_registry.c: a pool_core with its maintenance thread, named pools
 * shared by every Lua state of the process) and the hooks table (logger,
 * on_slow_query), which stay with each Lua object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crpg.h"
#include "pool_registry.h"
#include "redact.h"

typedef struct pool_handle {
  pool_entry *entry;           /* one hold; NULL once this object closed it or was collected */
  pool_core *core;             /* entry's pool, NULL with it */
  double acquire_timeout;      /* seconds (may be math.huge) */
  int leak_traceback;          /* record where each connection is taken */
} pool_handle;

/* Every option pg.pool knows; any other key is refused (a typo must not
 * silently fall back to a default). */
static const char *const known_options[] = {
  "conninfo", "min", "max", "idle_timeout", "connect_timeout", "acquire_timeout", "max_lifetime",
  "statement_cache", "slow_query_ms", "on_slow_query", "logger", "query_timeout", "reset",
  "leak_traceback", "name", NULL,
};

/* Checks what read_number cannot: unknown keys, whole numbers, callbacks,
 * reset and leak_traceback. Returns 0, or -1 with err filled in. */
static int check_options(lua_State *L, char *err, size_t errlen) {
  static const char *const integral[] = {"min", "max", "statement_cache", NULL};
  static const char *const callbacks[] = {"logger", "on_slow_query", NULL};
  int i;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    for (i = 0; key && known_options[i] && strcmp(key, known_options[i]) != 0; i++) {}
    lua_pop(L, 1);
    if (!key || !known_options[i]) {
      snprintf(err, errlen, "unknown pool option %s", key ? key : "(not a string key)");
      lua_pop(L, 1);
      return -1;
    }
  }
  for (i = 0; integral[i]; i++) {
    lua_getfield(L, 1, integral[i]);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      double v = (double)lua_tonumber(L, -1);
      if (v < 1e15 && v > -1e15 && v != (double)(long long)v) {
        snprintf(err, errlen, "pool option %s must be a whole number, got %g", integral[i], v);
        lua_pop(L, 1);
        return -1;
      }
    }
    lua_pop(L, 1);
  }
  for (i = 0; callbacks[i]; i++) {
    lua_getfield(L, 1, callbacks[i]);
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1)) {
      snprintf(err, errlen, "pool option %s must be a function", callbacks[i]);
      lua_pop(L, 1);
      return -1;
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, 1, "leak_traceback");
  i = lua_isnil(L, -1) || lua_isboolean(L, -1);
  lua_pop(L, 1);
  if (!i) {
    snprintf(err, errlen, "pool option leak_traceback must be a boolean");
    return -1;
  }
  return 0;
}

/* pool option reset: "auto" (default), "always" or "never"; -1 when unknown. */
static int reset_mode(lua_State *L) {
  static const char *const names[] = {"auto", "always", "never", NULL};
  const char *v;
  int i;
  lua_getfield(L, 1, "reset");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return POOL_RESET_AUTO;
  }
  v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
  for (i = 0; names[i] && strcmp(v, names[i]) != 0; i++) {}
  lua_pop(L, 1);
  return names[i] ? i : -1;
}

/* ---- the Lua object -------------------------------------------------------------- */

static pool_handle *to_pool(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CRPG_POOL_MT);
}

static pool_core *check_pool(lua_State *L, int idx) {
  pool_handle *h = to_pool(L, idx);
  if (!h->core) luaL_error(L, "attempt to use a closed pool");
  return h->core;
}

/* Pool options and the bit each sets when given (see pool_registry.h). */
static const struct {
  const char *key;
  unsigned bit;
} given_bits[] = {
  {"conninfo", POOL_OPT_CONNINFO}, {"min", POOL_OPT_MIN}, {"max", POOL_OPT_MAX},
  {"statement_cache", POOL_OPT_CACHE_SIZE}, {"idle_timeout", POOL_OPT_IDLE_TIMEOUT},
  {"connect_timeout", POOL_OPT_CONNECT_TIMEOUT}, {"acquire_timeout", POOL_OPT_ACQUIRE_TIMEOUT},
  {"max_lifetime", POOL_OPT_MAX_LIFETIME}, {"slow_query_ms", POOL_OPT_SLOW_MS},
  {"query_timeout", POOL_OPT_QUERY_TIMEOUT}, {"reset", POOL_OPT_RESET},
};

/* Which options the table at idx gives. */
static unsigned given_options(lua_State *L, int idx) {
  unsigned given = 0;
  size_t i;
  for (i = 0; i < sizeof given_bits / sizeof given_bits[0]; i++) {
    lua_getfield(L, idx, given_bits[i].key);
    if (!lua_isnil(L, -1)) given |= given_bits[i].bit;
    lua_pop(L, 1);
  }
  return given;
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
 *          slow_query_ms=1000, on_slow_query=fn, logger=fn, name= } -> pool | nil, err
 * Fails only for bad options or an unparsable conninfo; an unreachable server
 * is not an error here (queries report it). With name: the living pool of
 * that name in the process if there is one (nil, err when an option given
 * disagrees with it), else a new pool under that name. */
static int pool_new(lua_State *L) {
  double min, max, cache;
  char err[512];
  pool_config c;
  pool_handle *h;
  char namebuf[128];
  const char *name = NULL;
  size_t namelen = 0;
  int created;

  pool_config_defaults(&c);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "name");
  if (!lua_isnil(L, 2)) {
    if (lua_type(L, 2) != LUA_TSTRING) return luaL_error(L, "pool option name must be a string");
    name = lua_tolstring(L, 2, &namelen);
    if (namelen == 0 || namelen >= sizeof namebuf || strlen(name) != namelen)
      return crpg_push_error(L, KIND_INVALID_INPUT, "pool option name must be 1 to 127 characters (no NUL)");
    memcpy(namebuf, name, namelen + 1);
    name = namebuf;
  }
  lua_settop(L, 1);
  lua_getfield(L, 1, "conninfo");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "pool option conninfo must be a string");
  c.conninfo = lua_isnil(L, -1) ? "" : lua_tostring(L, -1); /* 2: kept on the stack */
  if (check_options(L, err, sizeof err) != 0) return crpg_push_error(L, KIND_INVALID_INPUT, err);
  c.reset = reset_mode(L);
  if (c.reset < 0) return crpg_push_error(L, KIND_INVALID_INPUT, "pool option reset must be \"auto\", \"always\" or \"never\"");
  if (read_number(L, "max", c.max, 1, &max, err, sizeof err) ||
      read_number(L, "min", max < c.min ? max : c.min, 0, &min, err, sizeof err) || /* default never above max */
      read_number(L, "idle_timeout", c.idle_timeout, 0, &c.idle_timeout, err, sizeof err) ||
      read_number(L, "connect_timeout", c.connect_timeout, 0.001, &c.connect_timeout, err, sizeof err) ||
      read_number(L, "acquire_timeout", c.acquire_timeout, 0, &c.acquire_timeout, err, sizeof err) ||
      read_number(L, "max_lifetime", c.max_lifetime, 0, &c.max_lifetime, err, sizeof err) ||
      read_number(L, "statement_cache", c.cache_size, 0, &cache, err, sizeof err) ||
      read_number(L, "slow_query_ms", c.slow_ms, -1, &c.slow_ms, err, sizeof err) ||
      read_number(L, "query_timeout", c.query_timeout, 0, &c.query_timeout, err, sizeof err))
    return crpg_push_error(L, KIND_INVALID_INPUT, err);
  if (min > max) return crpg_push_error(L, KIND_INVALID_INPUT, "pool option min must not exceed max");
  c.min = as_int(min);
  c.max = as_int(max);
  c.cache_size = as_int(cache);
  if (pool_config_check(&c, err, sizeof err) != 0) return crpg_push_error(L, KIND_INVALID_INPUT, err);

  if (session_check_conninfo(c.conninfo, err, sizeof err)) return crpg_push_error(L, KIND_INVALID_INPUT, err);

  lua_newtable(L); /* 3: hooks */
  lua_getfield(L, 1, "logger");
  lua_setfield(L, 3, "logger");
  lua_getfield(L, 1, "on_slow_query");
  lua_setfield(L, 3, "on_slow_query");

  h = lua_newuserdatauv(L, sizeof *h, 1); /* 4 */
  h->entry = NULL;
  h->core = NULL;
  h->acquire_timeout = c.acquire_timeout;
  lua_getfield(L, 1, "leak_traceback");
  h->leak_traceback = lua_toboolean(L, -1);
  lua_pop(L, 1);
  luaL_getmetatable(L, CRPG_POOL_MT);
  lua_setmetatable(L, 4);
  crpg_set_hooks(L, 4, 3);

  h->entry = pool_entry_open(name, &c, given_options(L, 1), &created, err, sizeof err);
  if (!h->entry) {
    if (!name) return luaL_error(L, "%s", err); /* the config was checked: out of memory */
    return crpg_push_error(L, KIND_INVALID_INPUT, err); /* disagrees with the living pool */
  }
  h->core = pool_entry_core(h->entry);
  return 1;
}

/* Reports connections collected without release (see pool_core_note_leak)
 * through the logger (level "warn"), or on stderr without one. */
static void report_leaks(lua_State *L, int pool_idx, pool_core *p) {
  char *where;
  while (pool_core_take_leak(p, &where)) {
    int top = lua_gettop(L);
    lua_pushfstring(L, "a pooled connection was collected without release (leaked); acquired at: %s",
                    where ? where : "unknown (pool option leak_traceback = true records it)");
    crpg_getuservalue(L, pool_idx);
    lua_getfield(L, -1, "logger");
    if (lua_isfunction(L, -1)) {
      lua_pushliteral(L, "warn");
      lua_pushvalue(L, top + 1);
      lua_createtable(L, 0, 2);
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "leak");
      if (where) {
        lua_pushstring(L, where);
        lua_setfield(L, -2, "traceback");
      }
      if (lua_pcall(L, 3, 0, 0) != 0)
        fprintf(stderr, "coderunner.pg: logger callback failed: %s\n",
                lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
    } else {
      fprintf(stderr, "coderunner.pg: %s\n", lua_tostring(L, top + 1));
    }
    lua_settop(L, top);
    free(where);
  }
}

/* Takes a connection for the pool at pool_idx. When none frees up in time,
 * runs a full garbage collection (connections dropped without release come
 * back through their finalizers) and tries once more before giving up. */
static error_kind acquire(lua_State *L, int pool_idx, session **s, char *err, size_t errlen) {
  pool_handle *h = to_pool(L, pool_idx);
  error_kind kind;
  report_leaks(L, pool_idx, h->core);
  kind = pool_core_acquire_for(h->core, h->acquire_timeout, 0, s, err, errlen);
  if (kind == KIND_POOL_TIMEOUT) {
    lua_gc(L, LUA_GCCOLLECT, 0);
    kind = pool_core_acquire_for(h->core, 0, 1, s, err, errlen);
    report_leaks(L, pool_idx, h->core);
  }
  return kind;
}

/* Runs one statement (or, simple, a script) on a connection taken for it.
 * Parameters are encoded first: bad input fails before any connection is
 * taken (no waiting for a free one). */
static int pool_run(lua_State *L, int simple) {
  pool_core *p = check_pool(L, 1);
  int n = lua_gettop(L) - 2, results;
  char err[256];
  size_t len;
  double timeout = 0;
  session *s;
  exec_target t;
  error_kind kind;
  param_set ps;

  (void)crpg_statement(L, 2, &len, &timeout); /* raises on misuse */
  if (simple) {
    lua_settop(L, 2);
    memset(&ps, 0, sizeof ps); /* no parameters */
  } else if (crpg_encode_statement(L, 2, 3, n < 0 ? 0 : n, &ps)) {
    return 2;
  }
  kind = acquire(L, 1, &s, err, sizeof err);
  if (kind != KIND_COUNT) return crpg_push_error(L, kind, err);
  crpg_getuservalue(L, 1); /* hooks pushed above the parameters */
  t.s = s;
  t.pool = p;
  t.slow_ms = pool_core_slow_ms(p);
  t.timeout = pool_core_query_timeout(p);
  t.hooks = lua_gettop(L);
  s->count_at_release = 1; /* counted under pool_core_release's lock */
  results = crpg_run_encoded(L, &t, 2, 3, &ps, simple);
  pool_core_release(p, s);
  return results;
}

/* pool:query(sql, ...) -> res | nil, err   (sql may be { sql =, timeout = }) */
static int pool_query(lua_State *L) { return pool_run(L, 0); }

/* pool:exec(script) -> res | nil, err  (several statements, no parameters) */
static int pool_exec(lua_State *L) { return pool_run(L, 1); }

/* Pushes a connection borrowed from the pool at idx (1 result), or nil, err (2). */
int crpg_pool_push_conn(lua_State *L, int idx) {
  pool_core *p = check_pool(L, idx);
  pool_handle *ph = to_pool(L, idx);
  char err[256];
  session *s;
  conn_handle *h;
  error_kind kind;
  idx = lua_absindex(L, idx);
  kind = acquire(L, idx, &s, err, sizeof err);
  if (kind != KIND_COUNT) return crpg_push_error(L, kind, err);
  crpg_getuservalue(L, idx);
  h = crpg_push_borrowed_conn(L, s, p, pool_core_slow_ms(p), -1);
  h->timeout = pool_core_query_timeout(p);
  if (ph->leak_traceback) {
    const char *tb;
    luaL_traceback(L, L, "pool connection acquired", 1);
    tb = lua_tostring(L, -1);
    h->acquired_at = tb ? strdup(tb) : NULL;
    lua_pop(L, 1);
  }
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
  SET_INT("resets", c.resets);
  SET_INT("leaks", c.leaks);
  SET_INT("connect_attempts", c.connect_attempts);
  SET_INT("consecutive_connect_failures", c.connect_failures);
  lua_pushnumber(L, (lua_Number)c.connect_backoff);
  lua_setfield(L, -2, "connect_backoff");
  if (pool_entry_name(to_pool(L, 1)->entry)) {
    lua_pushstring(L, pool_entry_name(to_pool(L, 1)->entry));
    lua_setfield(L, -2, "name");
  }
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
 * (busy ones close when released). Idempotent. A named pool closes for every
 * Lua state holding it (their calls then fail with kind "closed"), and the
 * name is free for a new pool. */
static int pool_close(lua_State *L) {
  pool_handle *h = to_pool(L, 1);
  double timeout = (double)luaL_optnumber(L, 2, 0);
  pool_entry *e = h->entry;
  int left;
  if (!e) {
    lua_pushboolean(L, 1);
    return 1;
  }
  left = pool_entry_close(e, timeout);
  h->entry = NULL;
  h->core = NULL;
  pool_entry_release(e);
  lua_pushboolean(L, left == 0);
  return 1;
}

/* __gc, __close: lets go of the pool; the last holder's release closes it (a
 * named pool stays open while other Lua states hold it). */
static int pool_gc(lua_State *L) {
  pool_handle *h = to_pool(L, 1);
  pool_entry *e = h->entry;
  if (e) {
    h->entry = NULL;
    h->core = NULL;
    pool_entry_release(e);
  }
  return 0;
}

/* pool:is_closed() -> boolean (closed here, or by any holder of a named pool) */
static int pool_is_closed(lua_State *L) {
  pool_handle *h = to_pool(L, 1);
  lua_pushboolean(L, h->entry == NULL || pool_entry_is_closed(h->entry));
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
  if (pool_entry_name(h->entry))
    lua_pushfstring(L, "%s \"%s\" (%s)", CRPG_POOL_MT, pool_entry_name(h->entry),
                    b.data && b.len ? b.data : "PG* environment");
  else
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
