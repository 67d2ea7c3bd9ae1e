/* The connection object (coderunner.pg.conn) and crpg_run, the one path every
 * statement takes: encode parameters, execute, decode, count, log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define DEFAULT_STATEMENT_CACHE 100
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define LOG_SQL_MAX 500

/* ---- logging ------------------------------------------------------------------ */

/* Pushes sql with whitespace runs folded and cut to LOG_SQL_MAX bytes. */
static void push_sql_for_log(lua_State *L, const char *sql, size_t len) {
  luaL_Buffer b;
  size_t i, out = 0;
  int space = 0;
  luaL_buffinit(L, &b);
  for (i = 0; i < len && out < LOG_SQL_MAX; i++) {
    char c = sql[i];
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = out > 0;
      continue;
    }
    if (space) { luaL_addchar(&b, ' '); out++; space = 0; }
    luaL_addchar(&b, c);
    out++;
  }
  if (i < len) luaL_addstring(&b, "...");
  luaL_pushresult(&b);
}

/* Calls hooks[name](args...) with the nargs values on top, protected; a
 * failing callback is reported on stderr and never breaks the statement.
 * Returns 1 when the hook existed (the arguments are consumed either way). */
static int call_hook(lua_State *L, int hooks, const char *name, int nargs) {
  if (hooks) {
    lua_getfield(L, hooks, name);
    if (lua_isfunction(L, -1)) {
      lua_insert(L, -(nargs + 1));
      if (lua_pcall(L, nargs, 0, 0) != 0) {
        fprintf(stderr, "coderunner.pg: %s callback failed: %s\n", name,
                lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
        lua_pop(L, 1);
      }
      return 1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, nargs);
  return 0;
}

/* logger(level, message, info) with info = { sql=, duration_ms=, ... } on top
 * (consumed). Without a logger, one line on stderr, as libpq's own default. */
static void log_line(lua_State *L, int hooks, const char *level, const char *message) {
  int info = lua_gettop(L);
  lua_pushstring(L, level);
  lua_pushstring(L, message);
  lua_pushvalue(L, info);
  if (!call_hook(L, hooks, "logger", 3)) fprintf(stderr, "coderunner.pg: %s\n", message);
  lua_settop(L, info - 1);
}

static const char *level_for(const char *severity) {
  if (strcmp(severity, "WARNING") == 0) return "warn";
  if (strcmp(severity, "NOTICE") == 0) return "notice";
  if (strncmp(severity, "DEBUG", 5) == 0) return "debug";
  return "info";
}

static void deliver_notices(lua_State *L, exec_target *t) {
  notice *n = session_take_notices(t->s);
  while (n) {
    notice *next = n->next;
    char line[512];
    const char *level = level_for(n->severity);
    snprintf(line, sizeof line, "%s: %s", n->severity, n->message);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, n->severity);
    lua_setfield(L, -2, "severity");
    lua_pushstring(L, n->message);
    lua_setfield(L, -2, "message");
    free(n);
    log_line(L, t->hooks, level, line);
    n = next;
  }
}

static void report_slow(lua_State *L, exec_target *t, const char *sql, size_t len, double ms) {
  char took[32];
  lua_createtable(L, 0, 2);
  push_sql_for_log(L, sql, len);
  lua_setfield(L, -2, "sql");
  lua_pushnumber(L, (lua_Number)ms);
  lua_setfield(L, -2, "duration_ms");
  lua_pushvalue(L, -1);                                /* info, info */
  if (call_hook(L, t->hooks, "on_slow_query", 1)) {   /* info */
    lua_pop(L, 1);
    return;
  }
  snprintf(took, sizeof took, "%.1f", ms);
  lua_getfield(L, -1, "sql");                          /* info, sql */
  lua_pushfstring(L, "slow query (%s ms): %s", took, lua_tostring(L, -1));
  lua_insert(L, -3);                                   /* msg, info, sql */
  lua_pop(L, 1);                                       /* msg, info */
  log_line(L, t->hooks, "warn", lua_tostring(L, -2));  /* msg */
  lua_pop(L, 1);
}

/* ---- running statements ------------------------------------------------------ */

int crpg_run(lua_State *L, exec_target *t, int sql_idx, int first, int n, int simple) {
  size_t sql_len;
  const char *sql = luaL_checklstring(L, sql_idx, &sql_len);
  param_set ps;
  PGresult *r;
  ExecStatusType st;
  double started, ms;
  int hit = 0, ok, slow, result_idx;
  error_kind kind = KIND_COUNT;

  if (memchr(sql, 0, sql_len)) return crpg_push_error(L, KIND_INVALID_INPUT, "SQL text contains a NUL byte");
  if (simple) ps.n = 0;
  else if (crpg_encode_params(L, first, n, &ps)) return 2;
  if (t->s->decoding) { /* a previous decode raised (out of memory) */
    PQclear(t->s->decoding);
    t->s->decoding = NULL;
  }

  started = session_now();
  if (simple) r = PQexec(t->s->pg, sql);
  else r = session_exec(t->s, sql, sql_len, ps.n, ps.types, ps.values, ps.lengths, ps.formats, &hit);
  ms = (session_now() - started) * 1000.0;

  st = PQresultStatus(r);
  ok = r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY);
  if (ok) {
    crpg_push_result(L, t->s, r);
  } else {
    if (r && (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)) {
      char *row;
      PQclear(r);
      if (st == PGRES_COPY_OUT) while (PQgetCopyData(t->s->pg, &row, 0) > 0) PQfreemem(row);
      else PQputCopyEnd(t->s->pg, "COPY is not supported by coderunner.pg");
      while ((r = PQgetResult(t->s->pg)) != NULL) PQclear(r);
      lua_pushnil(L);
      crpg_new_error(L, KIND_INVALID_INPUT, "COPY is not supported by query/exec");
      kind = KIND_INVALID_INPUT;
    } else {
      lua_pushnil(L);
      kind = crpg_push_result_error(L, r, t->s);
      PQclear(r);
    }
  }
  result_idx = lua_gettop(L);
  slow = t->slow_ms >= 0 && ms >= t->slow_ms;
  if (t->pool) crpg_pool_count_query(t->pool, ok ? -1 : (int)kind, slow, hit);
  if (t->s->notices) deliver_notices(L, t);
  if (slow) report_slow(L, t, sql, sql_len, ms);
  lua_settop(L, result_idx);
  return ok ? 1 : 2;
}

/* ---- the connection object --------------------------------------------------- */

static conn_handle *to_conn(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CRPG_CONN_MT);
}

/* Raises unless the connection at idx is open. */
conn_handle *crpg_check_conn(lua_State *L, int idx) {
  conn_handle *h = to_conn(L, idx);
  if (!h->s) luaL_error(L, h->released ? "connection was released to its pool" : "attempt to use a closed connection");
  return h;
}

void crpg_release_conn(conn_handle *h) {
  session *s = h->s;
  if (!s) return;
  h->s = NULL;
  if (h->pool) {
    h->released = 1;
    session_tx_reset(s); /* the pool rolls back whatever is open */
    crpg_pool_release(h->pool, s);
  } else {
    session_close(s);
  }
}

/* From a finalizer: like crpg_release_conn, but never waits on the network.
 * A borrowed connection with anything open (a transaction, an abandoned one)
 * is discarded instead of rolled back; closing sends Terminate without
 * waiting (sessions are non-blocking). */
void crpg_abandon_conn(conn_handle *h) {
  session *s = h->s;
  if (!s) return;
  if (h->pool && (s->tx_id || s->abandoned >= 0 || PQtransactionStatus(s->pg) != PQTRANS_IDLE))
    s->broken = 1;
  crpg_release_conn(h);
}

/* Before a statement on the bare connection: cleans what a collected
 * transaction left (bounded in time) and refuses a connection whose open
 * transaction belongs to another coroutine (raises). Returns 0, or pushes
 * nil, err and returns 2. */
static int conn_ready(lua_State *L, conn_handle *h) {
  session *s = h->s;
  if (s->abandoned >= 0 && session_settle(s, SESSION_SETTLE_TIMEOUT) != 0)
    return crpg_push_error(L, KIND_CLOSED, "connection was given up: cleaning a collected transaction did not finish in time");
  if (s->tx_id && s->tx_owner != (const void *)L)
    luaL_error(L, "connection is busy in a transaction of another coroutine");
  return 0;
}

static void target_of(lua_State *L, int idx, conn_handle *h, exec_target *t) {
  t->s = h->s;
  t->pool = h->pool;
  t->slow_ms = h->slow_ms;
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
  h->released = 0;
  luaL_getmetatable(L, CRPG_CONN_MT);
  lua_setmetatable(L, -2);
  crpg_set_hooks(L, lua_gettop(L), hooks);
  return h;
}

static double opt_number(lua_State *L, int opts, const char *key, double dflt, double min) {
  double v;
  if (!opts) return dflt;
  lua_getfield(L, opts, key);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return dflt; }
  if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "option %s must be a number", key);
  v = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(v >= min)) luaL_error(L, "option %s must be at least %g", key, min);
  return v;
}

/* pg.connect([conninfo [, opts]]) -> conn | nil, err
 * conninfo: libpq keywords, a postgres:// URL, or "" for the PG* environment.
 * opts: statement_cache, connect_timeout, slow_query_ms, logger. */
static int pg_connect(lua_State *L) {
  const char *conninfo = luaL_optstring(L, 1, "");
  int opts = lua_isnoneornil(L, 2) ? 0 : 2;
  int cache, timed_out;
  double timeout, slow;
  char err[512];
  conn_handle *h;
  session *s;

  if (opts) luaL_checktype(L, 2, LUA_TTABLE);
  cache = (int)opt_number(L, opts, "statement_cache", DEFAULT_STATEMENT_CACHE, 0);
  timeout = opt_number(L, opts, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, 0.001);
  slow = opt_number(L, opts, "slow_query_ms", -1, -1);
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
  luaL_getmetatable(L, CRPG_CONN_MT);
  lua_setmetatable(L, -2);
  crpg_set_hooks(L, 4, 3);
  s = session_open(conninfo, timeout, cache, err, sizeof err, &timed_out);
  if (!s) return crpg_push_error(L, KIND_CONNECT, err);
  h->s = s;
  return 1;
}

/* conn:query(sql, ...) -> res | nil, err */
static int conn_query(lua_State *L) {
  int n = lua_gettop(L) - 2;
  conn_handle *h = crpg_check_conn(L, 1);
  exec_target t;
  luaL_checkstring(L, 2);
  if (conn_ready(L, h)) return 2;
  target_of(L, 1, h, &t);
  return crpg_run(L, &t, 2, 3, n < 0 ? 0 : n, 0);
}

/* conn:exec(script) -> res | nil, err  (several statements, no parameters) */
static int conn_exec(lua_State *L) {
  conn_handle *h = crpg_check_conn(L, 1);
  exec_target t;
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  if (conn_ready(L, h)) return 2;
  target_of(L, 1, h, &t);
  return crpg_run(L, &t, 2, 0, 0, 1);
}

/* conn:close() -> true. Idempotent; a borrowed connection goes back to its pool. */
static int conn_close(lua_State *L) {
  crpg_release_conn(to_conn(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

/* Finalizer: gives the connection back without waiting on the network. */
static int conn_gc(lua_State *L) {
  crpg_abandon_conn(to_conn(L, 1));
  return 0;
}

/* conn:is_closed() -> boolean */
static int conn_is_closed(lua_State *L) {
  lua_pushboolean(L, to_conn(L, 1)->s == NULL);
  return 1;
}

/* conn:cache_stats() -> { size, entries, hits, misses, replans } */
static int conn_cache_stats(lua_State *L) {
  session *s = crpg_check_conn(L, 1)->s;
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, s->cache_size); lua_setfield(L, -2, "size");
  lua_pushinteger(L, s->cache_count); lua_setfield(L, -2, "entries");
  lua_pushinteger(L, (lua_Integer)s->cache_hits); lua_setfield(L, -2, "hits");
  lua_pushinteger(L, (lua_Integer)s->cache_misses); lua_setfield(L, -2, "misses");
  lua_pushinteger(L, (lua_Integer)s->cache_replans); lua_setfield(L, -2, "replans");
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
    lua_pushfstring(L, "%s (%s)", CRPG_CONN_MT, h->released ? "released" : "closed");
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
    {"transaction", crpg_transaction},
    {"begin", crpg_begin},
    {"close", conn_close},
    {"is_closed", conn_is_closed},
    {"cache_stats", conn_cache_stats},
    {"escape_identifier", conn_escape_identifier},
    {"escape_literal", conn_escape_literal},
    {"parameter", conn_parameter},
    {"option", conn_option},
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
  static const luaL_Reg functions[] = {{"connect", pg_connect}, {NULL, NULL}};
  crpg_new_type(L, CRPG_CONN_MT, methods, metamethods);
  luaL_setfuncs(L, functions, 0);
}
