/* The connection pool (coderunner.pg.pool). Its state lives in a C struct
 * behind a mutex, not in Lua, so that one pool can later serve several Lua
 * states of a process. Connections are opened lazily up to max; min are kept
 * warm by maintain(); idle ones above min close after idle_timeout; any older
 * than max_lifetime retire; a connection found dead when taken from the idle
 * list is replaced before anything runs on it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "redact.h"

struct pool_core {
  pthread_mutex_t mu;
  pthread_cond_t cv;           /* signalled when a connection is released or closed */
  int handles;                 /* Lua pool objects pointing here */
  char *conninfo;
  int min, max, cache_size;
  double idle_timeout, connect_timeout, acquire_timeout, max_lifetime, slow_ms;
  session *idle;               /* most recently used first */
  int n_idle;
  int n_total;                 /* open or being opened, idle or busy */
  int n_waiting;
  int closed;
  unsigned long long queries, slow_queries, errors[KIND_COUNT], opened, closed_count,
      acquire_timeouts, cache_hits, cache_misses;
  char last_error[256];
};

typedef struct pool_handle {
  pool_core *core;             /* NULL once closed */
} pool_handle;

/* ---- the C pool ---------------------------------------------------------------- */

static void core_free(pool_core *p) {
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p->conninfo);
  free(p);
}

/* Unlocks, and frees the pool when nothing refers to it any more. */
static void unlock_and_maybe_free(pool_core *p) {
  int done = p->handles == 0 && p->n_total == 0;
  pthread_mutex_unlock(&p->mu);
  if (done) core_free(p);
}

/* Closes a session the pool counted, outside the lock. */
static void discard(pool_core *p, session *s) {
  session_close(s);
  pthread_mutex_lock(&p->mu);
  p->n_total--;
  p->closed_count++;
  pthread_cond_broadcast(&p->cv);
  unlock_and_maybe_free(p);
}

static void discard_list(pool_core *p, session *list) {
  while (list) {
    session *next = list->next;
    discard(p, list);
    list = next;
  }
}

/* Moves idle sessions past idle_timeout (while more than min are open) or past
 * max_lifetime out of the idle list; returns them for discard after unlocking. */
static session *reap_locked(pool_core *p, double now) {
  session **link = &p->idle, *doomed = NULL;
  int open = p->n_total;
  while (*link) {
    session *s = *link;
    int expired = p->max_lifetime > 0 && now - s->created_at >= p->max_lifetime;
    int idle_too_long = open > p->min && now - s->idle_since >= p->idle_timeout;
    if (expired || idle_too_long || p->closed) {
      *link = s->next;
      s->next = doomed;
      doomed = s;
      p->n_idle--;
      open--;
    } else {
      link = &s->next;
    }
  }
  return doomed;
}

static void deadline_ts(struct timespec *ts, double deadline) {
  double whole = (double)(long long)deadline;
  ts->tv_sec = (time_t)whole;
  ts->tv_nsec = (long)((deadline - whole) * 1e9);
}

/* Takes a connection: an idle one (checked alive), a new one while fewer than
 * max are open, or one released within acquire_timeout. Returns KIND_COUNT on
 * success, else the error kind with err filled in. */
static error_kind core_acquire(pool_core *p, session **out, char *err, size_t errlen) {
  double deadline = session_now() + p->acquire_timeout;
  for (;;) {
    session *doomed, *s = NULL;
    int open_new = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
      if (p->closed) {
        pthread_mutex_unlock(&p->mu);
        snprintf(err, errlen, "the pool is closed");
        return KIND_CLOSED;
      }
      if (p->idle || p->n_total < p->max) break;
      {
        struct timespec ts;
        int rc;
        deadline_ts(&ts, deadline);
        p->n_waiting++;
        rc = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        p->n_waiting--;
        if (rc == ETIMEDOUT && !p->idle && p->n_total >= p->max) {
          p->acquire_timeouts++;
          pthread_mutex_unlock(&p->mu);
          snprintf(err, errlen, "no connection free within %g s (all %d busy)", p->acquire_timeout, p->max);
          return KIND_POOL_TIMEOUT;
        }
      }
    }
    doomed = reap_locked(p, session_now());
    if (p->idle) {
      s = p->idle;
      p->idle = s->next;
      s->next = NULL;
      p->n_idle--;
    } else if (p->n_total < p->max) {
      p->n_total++; /* reserve the slot while connecting unlocked */
      open_new = 1;
    }
    pthread_mutex_unlock(&p->mu);
    discard_list(p, doomed);

    if (s) {
      if (session_check_idle(s) == 0) {
        *out = s;
        return KIND_COUNT;
      }
      discard(p, s); /* died while idle: replace it before anything runs */
      continue;
    }
    if (open_new) {
      int timed_out;
      char msg[256];
      s = session_open(p->conninfo, p->connect_timeout, p->cache_size, msg, sizeof msg, &timed_out);
      pthread_mutex_lock(&p->mu);
      if (s) {
        p->opened++;
      } else {
        p->n_total--;
        snprintf(p->last_error, sizeof p->last_error, "%s", msg);
        pthread_cond_broadcast(&p->cv);
      }
      pthread_mutex_unlock(&p->mu);
      if (!s) {
        snprintf(err, errlen, "%s", msg);
        return KIND_CONNECT;
      }
      *out = s;
      return KIND_COUNT;
    }
  }
}

/* Gives a session back: rolled back if a transaction is open, closed if it is
 * broken, too old, or the pool is closed. */
void crpg_pool_release(pool_core *p, session *s) {
  int keep = !session_is_broken(s) && !s->fatal_seen;
  session *doomed;
  notice *n;
  double now = session_now();

  if (s->decoding) {
    PQclear(s->decoding);
    s->decoding = NULL;
  }
  if (keep) {
    PGTransactionStatusType ts = PQtransactionStatus(s->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
      PGresult *r = PQexec(s->pg, "ROLLBACK");
      keep = PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
    } else if (ts != PQTRANS_IDLE) {
      keep = 0;
    }
  }
  n = session_take_notices(s);
  while (n) {
    notice *next = n->next;
    free(n);
    n = next;
  }
  if (keep && p->max_lifetime > 0 && now - s->created_at >= p->max_lifetime) keep = 0;

  pthread_mutex_lock(&p->mu);
  if (!keep || p->closed) {
    pthread_mutex_unlock(&p->mu);
    discard(p, s);
    return;
  }
  s->idle_since = now;
  s->next = p->idle;
  p->idle = s;
  p->n_idle++;
  doomed = reap_locked(p, now);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  discard_list(p, doomed);
}

/* Reaps expired idle connections, then opens connections up to min. Failures
 * to connect are remembered in last_error, not raised: a pool starts even
 * when its server is down. */
static void core_maintain(pool_core *p) {
  session *doomed;
  int need;
  pthread_mutex_lock(&p->mu);
  doomed = reap_locked(p, session_now());
  need = p->closed ? 0 : p->min - p->n_total;
  if (need > 0) p->n_total += need;
  pthread_mutex_unlock(&p->mu);
  discard_list(p, doomed);
  while (need > 0) {
    int timed_out;
    char msg[256];
    session *s = session_open(p->conninfo, p->connect_timeout, p->cache_size, msg, sizeof msg, &timed_out);
    pthread_mutex_lock(&p->mu);
    need--;
    if (!s) {
      p->n_total -= need + 1; /* give back this slot and the ones not tried */
      snprintf(p->last_error, sizeof p->last_error, "%s", msg);
      pthread_cond_broadcast(&p->cv);
      pthread_mutex_unlock(&p->mu);
      return;
    }
    p->opened++;
    s->idle_since = session_now();
    s->next = p->idle;
    p->idle = s;
    p->n_idle++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
}

/* Marks the pool closed, closes idle connections, and waits up to timeout
 * seconds for busy ones to come back. Returns how many are still open. */
static int core_close(pool_core *p, double timeout) {
  session *idle;
  int left;
  double deadline = session_now() + timeout;
  pthread_mutex_lock(&p->mu);
  p->closed = 1;
  idle = p->idle;
  p->idle = NULL;
  p->n_idle = 0;
  p->handles++; /* hold the struct while discarding */
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  discard_list(p, idle);
  pthread_mutex_lock(&p->mu);
  while (p->n_total > 0 && session_now() < deadline) {
    struct timespec ts;
    deadline_ts(&ts, deadline);
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
  }
  left = p->n_total;
  p->handles--;
  pthread_mutex_unlock(&p->mu);
  return left;
}

void crpg_pool_count_query(pool_core *p, int failed_kind, int slow, int cache_hit) {
  pthread_mutex_lock(&p->mu);
  p->queries++;
  if (slow) p->slow_queries++;
  if (failed_kind >= 0 && failed_kind < KIND_COUNT) p->errors[failed_kind]++;
  if (cache_hit) p->cache_hits++; else p->cache_misses++;
  pthread_mutex_unlock(&p->mu);
}

static void count_error(pool_core *p, error_kind kind) {
  pthread_mutex_lock(&p->mu);
  p->errors[kind]++;
  pthread_mutex_unlock(&p->mu);
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

/* Reads opts[key] as a number >= min (dflt when absent). Returns 0, or -1 with
 * a message in err. */
static int read_number(lua_State *L, const char *key, double dflt, double min, double *out, char *err, size_t errlen) {
  lua_getfield(L, 1, key);
  if (lua_isnil(L, -1)) {
    *out = dflt;
  } else if (lua_type(L, -1) != LUA_TNUMBER || !((double)lua_tonumber(L, -1) >= min)) {
    snprintf(err, errlen, "pool option %s must be a number >= %g", key, min);
    lua_pop(L, 1);
    return -1;
  } else {
    *out = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return 0;
}

/* pg.pool{ conninfo=, min=2, max=10, idle_timeout=30, connect_timeout=2,
 *          acquire_timeout=5, max_lifetime=, statement_cache=100,
 *          slow_query_ms=1000, on_slow_query=fn, logger=fn } -> pool | nil, err
 * Fails only for bad options or an unparsable conninfo; an unreachable server
 * is not an error here (queries report it). */
int crpg_pool_new(lua_State *L) {
  double min, max, idle, connect, acquire, lifetime, cache, slow;
  const char *conninfo;
  char err[256], *perr = NULL;
  PQconninfoOption *parsed;
  pool_handle *h;
  pool_core *p;

  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "conninfo");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "pool option conninfo must be a string");
  conninfo = lua_isnil(L, -1) ? "" : lua_tostring(L, -1); /* 2: kept on the stack */
  if (read_number(L, "max", 10, 1, &max, err, sizeof err) ||
      read_number(L, "min", max < 2 ? max : 2, 0, &min, err, sizeof err) || /* default never above max */
      read_number(L, "idle_timeout", 30, 0, &idle, err, sizeof err) ||
      read_number(L, "connect_timeout", 2, 0.001, &connect, err, sizeof err) ||
      read_number(L, "acquire_timeout", 5, 0, &acquire, err, sizeof err) ||
      read_number(L, "max_lifetime", 0, 0, &lifetime, err, sizeof err) ||
      read_number(L, "statement_cache", 100, 0, &cache, err, sizeof err) ||
      read_number(L, "slow_query_ms", 1000, -1, &slow, err, sizeof err))
    return crpg_push_error(L, KIND_INVALID_INPUT, err);
  if (min > max) return crpg_push_error(L, KIND_INVALID_INPUT, "pool option min must not exceed max");
  if (max > 10000 || cache > 100000) return crpg_push_error(L, KIND_INVALID_INPUT, "pool option max or statement_cache is too large");

  parsed = PQconninfoParse(conninfo, &perr);
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

  p = calloc(1, sizeof *p);
  if (!p || !(p->conninfo = strdup(conninfo))) {
    free(p);
    return luaL_error(L, "out of memory");
  }
  pthread_mutex_init(&p->mu, NULL);
  {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
  }
  p->handles = 1;
  p->min = (int)min;
  p->max = (int)max;
  p->cache_size = (int)cache;
  p->idle_timeout = idle;
  p->connect_timeout = connect;
  p->acquire_timeout = acquire;
  p->max_lifetime = lifetime;
  p->slow_ms = slow;
  h->core = p;
  core_maintain(p);
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
  kind = core_acquire(p, &s, err, sizeof err);
  if (kind != KIND_COUNT) {
    count_error(p, kind);
    return crpg_push_error(L, kind, err);
  }
  crpg_getuservalue(L, 1); /* hooks pushed above the parameters */
  t.s = s;
  t.pool = p;
  t.slow_ms = p->slow_ms;
  t.hooks = lua_gettop(L);
  results = crpg_run(L, &t, 2, 3, n < 0 || simple ? 0 : n, simple);
  crpg_pool_release(p, s);
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
  error_kind kind = core_acquire(p, &s, err, sizeof err);
  if (kind != KIND_COUNT) {
    count_error(p, kind);
    return crpg_push_error(L, kind, err);
  }
  crpg_getuservalue(L, idx);
  crpg_push_borrowed_conn(L, s, p, p->slow_ms, -1);
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
  core_maintain(check_pool(L, 1));
  return 0;
}

#define SET_INT(name, value) (lua_pushinteger(L, (lua_Integer)(value)), lua_setfield(L, -2, name))

/* pool:stats() -> { total, idle, busy, waiting, min, max, queries, slow_queries,
 *   errors = { kind = n }, connections_opened, connections_closed,
 *   acquire_timeouts, cache_hits, cache_misses, last_error } */
static int pool_stats(lua_State *L) {
  pool_core *p = check_pool(L, 1);
  pool_core c;
  int k;
  pthread_mutex_lock(&p->mu);
  c = *p;
  pthread_mutex_unlock(&p->mu);
  lua_createtable(L, 0, 16);
  SET_INT("total", c.n_total);
  SET_INT("idle", c.n_idle);
  SET_INT("busy", c.n_total - c.n_idle);
  SET_INT("waiting", c.n_waiting);
  SET_INT("min", c.min);
  SET_INT("max", c.max);
  SET_INT("queries", c.queries);
  SET_INT("slow_queries", c.slow_queries);
  SET_INT("connections_opened", c.opened);
  SET_INT("connections_closed", c.closed_count);
  SET_INT("acquire_timeouts", c.acquire_timeouts);
  SET_INT("cache_hits", c.cache_hits);
  SET_INT("cache_misses", c.cache_misses);
  lua_createtable(L, 0, KIND_COUNT);
  for (k = 0; k < KIND_COUNT; k++) SET_INT(crpg_kind_names[k], c.errors[k]);
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
  left = core_close(p, timeout);
  pthread_mutex_lock(&p->mu);
  p->handles--;
  unlock_and_maybe_free(p);
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
  redact_conninfo(&b, h->core->conninfo);
  lua_pushfstring(L, "%s (%s)", CRPG_POOL_MT, b.data && b.len ? b.data : "PG* environment");
  strbuf_free(&b);
  return 1;
}

void crpg_open_pool(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"query", pool_query},
    {"exec", pool_exec},
    {"transaction", crpg_transaction},
    {"begin", crpg_begin},
    {"acquire", pool_acquire},
    {"release", pool_release},
    {"maintain", pool_maintain},
    {"stats", pool_stats},
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
  static const luaL_Reg functions[] = {{"pool", crpg_pool_new}, {NULL, NULL}};
  crpg_new_type(L, CRPG_POOL_MT, methods, metamethods);
  luaL_setfuncs(L, functions, 0);
}
