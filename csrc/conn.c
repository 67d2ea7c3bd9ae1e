/* The connection object (coderunner.pg.conn): owns a session, or borrows one
 * from a pool_core; its statements run through exec.c. */
#include <stdlib.h>
#include <string.h>

#include "crpg.h"

#define DEFAULT_STATEMENT_CACHE 100
#define DEFAULT_CONNECT_TIMEOUT 10.0
/* ---- the connection object --------------------------------------------------- */

static conn_handle *to_conn(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CRPG_CONN_MT);
}

/* Raises unless the connection at idx is open. */
conn_handle *crpg_check_conn(lua_State *L, int idx) {
  conn_handle *h = to_conn(L, idx);
  if (!h->s) luaL_error(L, h->pool ? "connection was released to its pool" : "attempt to use a closed connection");
  return h;
}

void crpg_release_conn(conn_handle *h) {
  session *s = h->s;
  if (!s) return;
  h->s = NULL;
  free(h->acquired_at);
  h->acquired_at = NULL;
  if (h->pool) {
    session_tx_reset(s); /* the pool rolls back whatever is open */
    pool_core_release(h->pool, s);
  } else {
    session_close(s);
  }
}

/* From a finalizer: like crpg_release_conn, but never waits on the network.
 * A borrowed connection with anything open (a transaction, an abandoned one)
 * goes back marked for a rollback, which the pool runs (bounded in time)
 * before lending it again; an own connection closes (Terminate is sent
 * without waiting: sessions are non-blocking). */
void crpg_abandon_conn(conn_handle *h) {
  session *s = h->s;
  if (!s) return;
  if (h->pool) {
    int open = s->tx_id || s->abandoned >= 0 || PQtransactionStatus(s->pg) != PQTRANS_IDLE;
    h->s = NULL;
    free(h->acquired_at);
    h->acquired_at = NULL;
    session_tx_reset(s);
    if (open) s->abandoned = 0;
    pool_core_release_quiet(h->pool, s);
  } else {
    crpg_release_conn(h);
  }
}

/* Fills t for statements on the connection at idx (hooks pushed). First
 * cleans what a collected transaction left (bounded in time; a failure marks
 * the session broken, which the statement then reports as kind closed) and
 * raises when the connection's open transaction belongs to another coroutine:
 * its statements must not land inside someone else's transaction. */
void crpg_conn_target(lua_State *L, int idx, exec_target *t) {
  conn_handle *h = crpg_check_conn(L, idx);
  session *s = h->s;
  if (s->abandoned >= 0) (void)session_settle_tx(s, SESSION_SETTLE_TIMEOUT);
  if (s->tx_id && s->tx_owner != (const void *)L)
    luaL_error(L, "connection is busy in a transaction of another coroutine");
  idx = lua_absindex(L, idx);
  t->s = h->s;
  t->pool = h->pool;
  t->slow_ms = h->slow_ms;
  t->timeout = h->timeout;
  crpg_getuservalue(L, idx);
  t->hooks = lua_gettop(L);
}

conn_handle *crpg_push_borrowed_conn(lua_State *L, session *s, pool_core *pool, double slow_ms, int hooks) {
  conn_handle *h;
  hooks = lua_absindex(L, hooks);
  h = lua_newuserdatauv(L, sizeof *h, 1);
  h->s = s;
  h->pool = pool;
  h->slow_ms = slow_ms;
  h->timeout = 0;
  h->acquired_at = NULL;
  h->lent_to_tx = 0;
  luaL_getmetatable(L, CRPG_CONN_MT);
  lua_setmetatable(L, -2);
  crpg_set_hooks(L, lua_gettop(L), hooks);
  return h;
}

static double opt_number(lua_State *L, int opts, const char *key, double dflt, double min) {
  double v;
  int rc = crpg_opt_number(L, opts, key, dflt, min, &v);
  if (rc == CRPG_OPT_NOT_NUMBER) luaL_error(L, "option %s must be a number", key);
  if (rc == CRPG_OPT_TOO_SMALL) luaL_error(L, "option %s must be at least %g", key, min);
  return v;
}

/* pg.connect([conninfo [, opts]]) -> conn | nil, err
 * conninfo: libpq keywords, a postgres:// URL, or "" for the PG* environment.
 * opts: statement_cache, connect_timeout, slow_query_ms, query_timeout, logger. */
static int pg_connect(lua_State *L) {
  const char *conninfo = luaL_optstring(L, 1, "");
  int opts = lua_isnoneornil(L, 2) ? 0 : 2;
  int cache, timed_out;
  double timeout, slow, qtimeout;
  char err[512];
  conn_handle *h;
  session *s;

  if (opts) luaL_checktype(L, 2, LUA_TTABLE);
  cache = (int)opt_number(L, opts, "statement_cache", DEFAULT_STATEMENT_CACHE, 0);
  timeout = opt_number(L, opts, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, 0.001);
  slow = opt_number(L, opts, "slow_query_ms", -1, -1);
  qtimeout = opt_number(L, opts, "query_timeout", 0, 0);
  if (cache > 100000) luaL_error(L, "option statement_cache is too large");
  lua_settop(L, 2);
  lua_newtable(L); /* 3: hooks */
  if (opts) {
    lua_getfield(L, 2, "logger");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1)) luaL_error(L, "option logger must be a function");
    lua_setfield(L, 3, "logger");
  }
  /* The object exists, closed, before the connection does: nothing dangles. */
  h = lua_newuserdatauv(L, sizeof *h, 1);
  memset(h, 0, sizeof *h);
  h->slow_ms = slow;
  h->timeout = qtimeout;
  luaL_getmetatable(L, CRPG_CONN_MT);
  lua_setmetatable(L, -2);
  crpg_set_hooks(L, 4, 3);
  if (session_check_conninfo(conninfo, err, sizeof err)) return crpg_push_error(L, KIND_INVALID_INPUT, err);
  s = session_open(conninfo, timeout, cache, err, sizeof err, &timed_out);
  if (!s) return crpg_push_error(L, timed_out ? KIND_TIMEOUT : KIND_CONNECT, err);
  h->s = s;
  return 1;
}

/* conn:query(sql, ...) -> res | nil, err */
static int conn_query(lua_State *L) {
  int n = lua_gettop(L) - 2;
  exec_target t;
  crpg_conn_target(L, 1, &t);
  return crpg_run(L, &t, 2, 3, n < 0 ? 0 : n, 0);
}

/* conn:exec(script) -> res | nil, err  (several statements, no parameters) */
static int conn_exec(lua_State *L) {
  exec_target t;
  lua_settop(L, 2);
  crpg_conn_target(L, 1, &t);
  return crpg_run(L, &t, 2, 0, 0, 1);
}

/* conn:close() -> true. Idempotent; a borrowed connection goes back to its pool. */
static int conn_close(lua_State *L) {
  crpg_release_conn(to_conn(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

/* Finalizer: gives the connection back without waiting on the network. A
 * borrowed connection collected without release is a leak: the pool reports
 * it (with where it was taken, under leak_traceback) at its next use. */
static int conn_gc(lua_State *L) {
  conn_handle *h = to_conn(L, 1);
  if (h->s && h->pool && !h->lent_to_tx) {
    pool_core_note_leak(h->pool, h->acquired_at); /* takes acquired_at */
    h->acquired_at = NULL;
  }
  crpg_abandon_conn(h);
  return 0;
}

/* conn:is_closed() -> boolean */
static int conn_is_closed(lua_State *L) {
  lua_pushboolean(L, to_conn(L, 1)->s == NULL);
  return 1;
}

/* conn:cache_stats() -> { size, entries, hits, misses, replans, binary_results } */
static int conn_cache_stats(lua_State *L) {
  session *s = crpg_check_conn(L, 1)->s;
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, s->cache_size); lua_setfield(L, -2, "size");
  lua_pushinteger(L, s->cache_count); lua_setfield(L, -2, "entries");
  lua_pushinteger(L, (lua_Integer)s->cache_hits); lua_setfield(L, -2, "hits");
  lua_pushinteger(L, (lua_Integer)s->cache_misses); lua_setfield(L, -2, "misses");
  lua_pushinteger(L, (lua_Integer)s->cache_replans); lua_setfield(L, -2, "replans");
  lua_pushinteger(L, (lua_Integer)s->binary_results); lua_setfield(L, -2, "binary_results");
  return 1;
}

/* Escapes the string argument with fn: NUL (which would cut the string
 * short) and text invalid in the client encoding are refused. */
static int escape_with(lua_State *L, char *(*fn)(PGconn *, const char *, size_t)) {
  session *s = crpg_check_conn(L, 1)->s;
  size_t len;
  const char *str = luaL_checklstring(L, 2, &len);
  char *out;
  if (memchr(str, 0, len)) return crpg_push_error(L, KIND_INVALID_INPUT, "cannot escape a string containing a NUL byte");
  out = fn(s->pg, str, len);
  if (!out) {
    char msg[256];
    snprintf(msg, sizeof msg, "cannot escape: %s", PQerrorMessage(s->pg));
    session_one_line(msg);
    return crpg_push_error(L, KIND_INVALID_INPUT, msg);
  }
  lua_pushstring(L, out);
  PQfreemem(out);
  return 1;
}

/* conn:escape_identifier(s) -> "\"quoted\"" | nil, err (invalid_input: NUL, bad encoding) */
static int conn_escape_identifier(lua_State *L) { return escape_with(L, PQescapeIdentifier); }

/* conn:escape_literal(s) -> "'quoted'" | nil, err (invalid_input: NUL, bad encoding) */
static int conn_escape_literal(lua_State *L) { return escape_with(L, PQescapeLiteral); }

/* conn:parameter(name) -> server parameter (server_version, TimeZone, ...) or nil */
static int conn_parameter(lua_State *L) {
  session *s = crpg_check_conn(L, 1)->s;
  const char *v = PQparameterStatus(s->pg, luaL_checkstring(L, 2));
  if (v) lua_pushstring(L, v); else lua_pushnil(L);
  return 1;
}

/* conn:option(name) -> the value of libpq connection option name in use
 * (host, sslmode, keepalives_idle, ...), or nil; never the password. */
static int conn_option(lua_State *L) {
  session *s = crpg_check_conn(L, 1)->s;
  const char *name = luaL_checkstring(L, 2);
  PQconninfoOption *opts = PQconninfo(s->pg), *o;
  lua_pushnil(L);
  for (o = opts; o && o->keyword; o++) {
    if (strcmp(o->keyword, name) == 0 && o->val && strcmp(name, "password") != 0 && o->dispchar[0] != '*') {
      lua_pushstring(L, o->val);
      break;
    }
  }
  if (opts) PQconninfoFree(opts);
  return 1;
}

/* conn:cancel_token() -> integer: names this connection to pg.cancel from
 * any thread or Lua state of the process (a plain number crosses them). */
static int conn_cancel_token(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)crpg_check_conn(L, 1)->s->cancel_token);
  return 1;
}

/* pg.cancel(token) -> true (request delivered) | false (no open connection
 * has that token) | nil, err. Thread-safe; the statement then fails with
 * SQLSTATE 57014 (kind timeout). */
static int pg_cancel(lua_State *L) {
  char err[256];
  int rc = session_cancel_token((unsigned long long)luaL_checkinteger(L, 1), err, sizeof err);
  if (rc < 0) return crpg_push_error(L, KIND_CONNECT, err);
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* conn:cancel() -> true | nil, err: pg.cancel(conn:cancel_token()) */
static int conn_cancel(lua_State *L) {
  lua_settop(L, 1);
  lua_pushinteger(L, (lua_Integer)crpg_check_conn(L, 1)->s->cancel_token);
  lua_replace(L, 1);
  return pg_cancel(L);
}

/* conn:server_version() -> integer, e.g. 150004 */
static int conn_server_version(lua_State *L) {
  lua_pushinteger(L, PQserverVersion(crpg_check_conn(L, 1)->s->pg));
  return 1;
}

/* conn:backend_pid() -> integer */
static int conn_backend_pid(lua_State *L) {
  lua_pushinteger(L, PQbackendPID(crpg_check_conn(L, 1)->s->pg));
  return 1;
}

/* tostring(conn): who and where, never the password. */
static int conn_tostring(lua_State *L) {
  conn_handle *h = to_conn(L, 1);
  if (!h->s) {
    lua_pushfstring(L, "%s (%s)", CRPG_CONN_MT, h->pool ? "released" : "closed");
  } else {
    PGconn *pg = h->s->pg;
    lua_pushfstring(L, "%s (%s@%s:%s/%s)", CRPG_CONN_MT, PQuser(pg), PQhost(pg), PQport(pg), PQdb(pg));
  }
  return 1;
}

void crpg_open_conn(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"query", conn_query},
    {"exec", conn_exec},
    {"close", conn_close},
    {"is_closed", conn_is_closed},
    {"cache_stats", conn_cache_stats},
    {"escape_identifier", conn_escape_identifier},
    {"escape_literal", conn_escape_literal},
    {"parameter", conn_parameter},
    {"option", conn_option},
    {"cancel", conn_cancel},
    {"cancel_token", conn_cancel_token},
    {"server_version", conn_server_version},
    {"backend_pid", conn_backend_pid},
    {NULL, NULL},
  };
  static const luaL_Reg metamethods[] = {
    {"__gc", conn_gc},
    {"__close", conn_close},
    {"__tostring", conn_tostring},
    {NULL, NULL},
  };
  static const luaL_Reg functions[] = {{"connect", pg_connect}, {"cancel", pg_cancel}, {NULL, NULL}};
  crpg_new_type(L, CRPG_CONN_MT, methods, metamethods);
  luaL_setfuncs(L, functions, 0);
}
