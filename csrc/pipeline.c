/* Pipelines (coderunner.pg.pipeline) on libpq's pipeline mode: statements
 * are sent without waiting for each other's results, then the results are
 * read back in order. executor:pipeline(fn) hands fn a pipeline object whose
 * p:query(sql, ...) queues a statement; executor:batch{ {sql, ...}, ... } is
 * the same for a list. module.c installs both into the conn, pool and tx
 * metatables.
 *
 * Results: an array with one entry per statement, in order: its result (as
 * query returns it) or its error object (pg.is_error), and results.errors, the
 * number of failed statements. Semantics of a failure:
 *   - outside a transaction, each statement is followed by a sync point, so
 *     each runs in its own implicit transaction: a failing statement changes
 *     nothing and the others run as if it were not there;
 *   - inside a transaction (tx:pipeline, or a connection with BEGIN open),
 *     one sync ends the pipeline: after a failure the server skips the rest
 *     (each reports kind server, sqlstate 25P02) and the transaction is
 *     aborted, as it would be one statement at a time.
 * Statements go through the statement cache: a cached one runs by name, a
 * new one is prepared in the pipeline (PQsendPrepare) and cached, and when the
 * cache is full (evicting needs a round trip) it runs unnamed. COPY is not
 * allowed in them.
 * The connection is in non-blocking mode while statements are sent, reading
 * whatever the server already answered, so a long pipeline cannot deadlock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crpg.h"

typedef struct pipeline_handle {
  conn_handle *conn;      /* kept alive by the uservalue */
  int in_tx;              /* one sync at the end, not one per statement */
  int sent;               /* statements queued */
  int open;               /* accepting statements */
  int failed_send;        /* a send failed: the connection is broken */
  double timeout;         /* client-side deadline for the whole pipeline, 0: none */
  double deadline;        /* monotonic seconds (from its start), 0: none */
} pipeline_handle;

static pipeline_handle *to_pipeline(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CRPG_PIPELINE_MT);
}

/* Sends what libpq buffered, reading incoming results meanwhile so the server
 * never blocks on a full socket, within the session's deadline. 0, or -1 when
 * the connection failed or was given up. */
static int flush_all(session *s) {
  for (;;) {
    int rc = PQflush(s->pg);
    if (rc == 0) return 0;
    if (rc < 0 || session_wait(s, 1) != 0) return -1;
  }
}

/* Pushes the table of statement names (uservalue.names) of the pipeline at pidx. */
static void push_names(lua_State *L, int pidx) {
  crpg_getuservalue(L, pidx);
  lua_getfield(L, -1, "names");
  lua_remove(L, -2);
}

/* Queues one statement: sql at sql_idx, n parameters from first, through the
 * statement cache when it can (a cached statement runs by name; a new one is
 * prepared in the pipeline first). Returns 0, or 2 with nil, err pushed (bad
 * parameters: nothing sent). */
static int send_one(lua_State *L, int pidx, pipeline_handle *p, int sql_idx, int first, int n) {
  size_t sql_len;
  const char *sql = lua_tolstring(L, sql_idx, &sql_len);
  param_set ps;
  session *s = p->conn->s;
  PGconn *pg = s->pg;
  char name[32];
  int how, ok;
  if (!sql) return crpg_push_error(L, KIND_INVALID_INPUT, "pipeline statement: SQL must be a string");
  if (memchr(sql, 0, sql_len)) return crpg_push_error(L, KIND_INVALID_INPUT, "SQL text contains a NUL byte");
  if (crpg_encode_params(L, first, n, &ps)) return 2;
  how = session_pipeline_name(s, sql, sql_len, ps.n, ps.types, name, sizeof name);
  /* a cached statement (same SQL, same parameter count) passed this check
   * when it was cached: the lexer runs once per statement, not per call */
  if (how != 1 && crpg_check_param_count(L, sql, sql_len, n)) {
    if (how == 2) session_pipeline_forget(s, name);
    return 2;
  }
  if (how == 0) {
    ok = PQsendQueryParams(pg, sql, ps.n, ps.types, ps.values, ps.lengths, ps.formats, 0);
  } else {
    ok = (how == 1 || PQsendPrepare(pg, name, sql, ps.n, ps.types)) &&
         PQsendQueryPrepared(pg, name, ps.n, ps.values, ps.lengths, ps.formats, 0);
  }
  /* no flush here: libpq sends once 8 KiB are queued (the non-blocking
   * connection never waits), and collect flushes the rest */
  if (!ok || (!p->in_tx && !PQpipelineSync(pg))) {
    if (how == 2) session_pipeline_forget(s, name);
    p->failed_send = 1;
    return crpg_push_error(L, KIND_CONNECT, PQerrorMessage(pg));
  }
  p->sent++;
  if (how) {  /* "crpg_<id>": id + 1, negative when prepared in this pipeline */
    push_names(L, pidx);
    lua_pushinteger(L, ((lua_Integer)strtol(name + 5, NULL, 10) + 1) * (how == 2 ? -1 : 1));
    lua_rawseti(L, -2, p->sent);
    lua_pop(L, 1);
  }
  return 0;
}

/* p:query(sql, ...) -> index   (the statement's place in the results)
 * Raises for bad parameters (nothing of the statement is sent). */
static int pipeline_query(lua_State *L) {
  pipeline_handle *p = to_pipeline(L, 1);
  int n = lua_gettop(L) - 2;
  luaL_checkstring(L, 2);
  if (!p->open) return luaL_error(L, "pipeline is closed");
  if (!p->conn->s) return luaL_error(L, "pipeline's connection is closed");
  if (send_one(L, 1, p, 2, 3, n < 0 ? 0 : n) != 0) return lua_error(L);
  lua_pushinteger(L, p->sent);
  return 1;
}

/* Reads the results of the p->sent statements into a new array (pushed),
 * waiting until p->deadline; leaves pipeline mode. Returns how many
 * statements the deadline cut (cancelled, or never answered). */
static int collect(lua_State *L, int pidx, pipeline_handle *p, exec_target *t, double started) {
  session *s = p->conn->s;
  PGconn *pg = s->pg;
  int i, errors = 0, res, broken = 0, names, n = p->sent, timed_out, timeouts = 0;
  PGresult **got;
  push_names(L, pidx);
  names = lua_gettop(L);
  got = lua_newuserdatauv(L, sizeof(PGresult *) * (size_t)(n > 0 ? n : 1), 0);
  memset(got, 0, sizeof(PGresult *) * (size_t)(n > 0 ? n : 1));
  s->timed_out = 0;
  s->deadline = p->deadline;
  if (p->in_tx && !PQpipelineSync(pg)) broken = 1;
  if (!broken && flush_all(s) != 0) broken = 1;
  (void)PQsetnonblocking(pg, 0);

  /* 1. read every result, in order, while in pipeline mode */
  for (i = 1; i <= n; i++) {
    PGresult *r, *prep_failed = NULL;
    ExecStatusType st;
    char name[32];              /* formatted only when a statement is forgotten */
    int prepared_here;
    lua_Integer id;
    lua_rawgeti(L, names, i);     /* -(id + 1): prepared here first; id + 1: cached; nil: unnamed */
    id = lua_tointeger(L, -1);
    lua_pop(L, 1);
    prepared_here = id < 0;
    if (prepared_here && !broken) {
      r = session_get_result(s);        /* the prepare */
      if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(name, sizeof name, "crpg_%ld", (long)-id - 1);
        session_pipeline_forget(s, name);
        prep_failed = r;
      } else {
        PQclear(r);
      }
      if (!r) {
        broken = 1;
      } else if ((r = session_get_result(s)) != NULL) { /* its NULL */
        PQclear(r);
        broken = 1;
      }
    }
    r = broken ? NULL : session_get_result(s);
    if (prep_failed) {            /* report the prepare's error, not the execute's */
      PQclear(r);
      r = prep_failed;
    }
    st = PQresultStatus(r);
    if (r && st == PGRES_FATAL_ERROR && id &&
        sqlstate_lookup(PQresultErrorField(r, PG_DIAG_SQLSTATE), PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)).stale_plan) {
      snprintf(name, sizeof name, "crpg_%ld", (long)(id < 0 ? -id : id) - 1);
      session_pipeline_forget(s, name);
    }
    got[i - 1] = r;
    if (!r) broken = 1;
    /* the NULL that ends this statement's results, then its sync */
    if (!broken) {
      PGresult *x;
      while ((x = session_get_result(s)) != NULL) {
        st = PQresultStatus(x);
        PQclear(x);
        if (st == PGRES_PIPELINE_SYNC) break;
      }
      if (!p->in_tx) {
        x = session_get_result(s);
        if (x && PQresultStatus(x) != PGRES_PIPELINE_SYNC) broken = 1;
        PQclear(x);
      }
    }
  }
  if (!broken && p->in_tx) PQclear(session_get_result(s));   /* the one sync */
  if (!PQexitPipelineMode(pg)) s->stream_open = 1;     /* leftovers: the next statement settles them */
  timed_out = s->timed_out;  /* decoding below may run type queries, which reset it */
  s->timed_out = 0;
  s->deadline = 0;

  /* 2. decode, out of pipeline mode: result.c may ask the server about types */
  lua_createtable(L, n, 1);
  res = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    PGresult *r = got[i - 1];
    ExecStatusType st = PQresultStatus(r);
    int kind = -1;
    got[i - 1] = NULL;
    if (r && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY)) {
      if (crpg_push_result(L, s, r, t->hooks) != 1) {  /* clears r; nil, err for a value it refuses */
        lua_remove(L, -2);
        kind = KIND_SERVER;
      }
    } else if (r && st == PGRES_PIPELINE_ABORTED) {
      crpg_new_error(L, KIND_SERVER, "not run: an earlier statement of the pipeline failed in its transaction");
      lua_pushliteral(L, "25P02");
      lua_setfield(L, -2, "sqlstate");
      kind = KIND_SERVER;
      PQclear(r);
    } else if (r) {
      kind = (int)crpg_push_result_error(L, r, s);
      PQclear(r);
      if (timed_out && kind == KIND_TIMEOUT) { /* cancelled by the deadline, not by someone else */
        lua_pop(L, 1);
        crpg_new_timeout_error(L, s, p->timeout);
        timeouts++;
      }
    } else if (timed_out) {
      crpg_new_timeout_error(L, s, p->timeout);
      kind = KIND_TIMEOUT;
      timeouts++;
    } else {
      crpg_new_error(L, KIND_CONNECT, session_is_broken(s) ? PQerrorMessage(pg) : "pipeline: result missing");
      kind = KIND_CONNECT;
    }
    if (kind >= 0) errors++;
    lua_rawseti(L, res, i);
    crpg_after_statement(L, t, "pipeline", 8, i == n ? (session_now() - started) * 1000.0 : -1.0, kind, 0);
  }
  lua_pushinteger(L, errors);
  lua_setfield(L, res, "errors");
  lua_replace(L, names);          /* results over the names and the scratch array */
  lua_settop(L, names);
  return timeouts;
}

/* Starts a pipeline on the executor at 1; pushes conn (at the returned index
 * - 1... ) and the pipeline object. Returns the pipeline's index, or 0 with
 * nil, err pushed. *borrowed as crpg_push_executor_conn. */
static int start(lua_State *L, int *borrowed, double timeout) {
  pipeline_handle *p;
  int conn_idx, pidx;
  session *s;
  *borrowed = crpg_push_executor_conn(L, 1);
  if (*borrowed < 0) return 0;
  conn_idx = lua_gettop(L);
  p = lua_newuserdatauv(L, sizeof *p, 1);
  memset(p, 0, sizeof *p);
  p->conn = luaL_checkudata(L, conn_idx, CRPG_CONN_MT);
  luaL_getmetatable(L, CRPG_PIPELINE_MT);
  lua_setmetatable(L, -2);
  pidx = lua_gettop(L);
  lua_createtable(L, 1, 1);
  lua_pushvalue(L, conn_idx);
  lua_rawseti(L, -2, 1);
  lua_newtable(L);
  lua_setfield(L, -2, "names");
  crpg_setuservalue(L, pidx);
  s = p->conn->s;
  if (crpg_push_if_given_up(L, s)) {
    if (*borrowed) crpg_release_conn(p->conn);
    return 0;
  }
  p->timeout = timeout >= 0 ? timeout : p->conn->timeout;
  p->deadline = p->timeout > 0 ? session_now() + p->timeout : 0;
  if (s->stream_open) session_settle(s);
  p->in_tx = PQtransactionStatus(s->pg) != PQTRANS_IDLE;
  if (!PQenterPipelineMode(s->pg) || PQsetnonblocking(s->pg, 1) != 0) {
    if (*borrowed) crpg_release_conn(p->conn);
    return crpg_push_error(L, KIND_CONNECT, PQerrorMessage(s->pg)), 0;
  }
  p->open = 1;
  return pidx;
}

/* Ends the pipeline at pidx: pushes results and returns 1, or, when the
 * deadline cut statements, nil, err (kind timeout, err.results holding every
 * statement's result or error) and returns 2. */
static int end(lua_State *L, int pidx, int borrowed) {
  pipeline_handle *p = to_pipeline(L, pidx);
  exec_target t;
  int timeouts;
  p->open = 0;
  lua_pushvalue(L, pidx - 1);
  crpg_conn_target(L, -1, &t);
  timeouts = collect(L, pidx, p, &t, session_now());
  if (timeouts) { /* made before the release: a borrowed session goes back to the pool */
    lua_pushnil(L);
    crpg_new_timeout_error(L, p->conn->s, p->timeout);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "results");
  }
  if (borrowed) crpg_release_conn(p->conn);
  return timeouts ? 2 : 1;
}

/* The options table at idx ({ timeout = seconds }), or none: the timeout,
 * -1 when not given. Raises on misuse. */
static double opt_timeout(lua_State *L, int idx) {
  double timeout = -1;
  if (lua_isnoneornil(L, idx)) return timeout;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "timeout");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0))
      luaL_error(L, "option timeout must be a number >= 0 (seconds; 0 for none)");
    timeout = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return timeout;
}

/* executor:pipeline(fn [, { timeout = s }]) -> results | nil, err
 * The timeout (else query_timeout) covers the whole pipeline; past it: nil,
 * err (kind timeout) with err.results.
 * Calls fn(p); each p:query(sql, ...) queues a statement; when fn returns the
 * results are read. A Lua error in fn is raised again once the statements
 * already queued have run (their results dropped). */
int crpg_pipeline(lua_State *L) {
  int borrowed, pidx, status;
  double timeout;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  timeout = opt_timeout(L, 3);
  lua_settop(L, 2);
  pidx = start(L, &borrowed, timeout);
  if (!pidx) return 2;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, pidx);
  status = lua_pcall(L, 1, 0, 0);
  if (status != 0) {
    int err = lua_gettop(L);
    (void)end(L, pidx, borrowed);
    lua_pushvalue(L, err);
    return lua_error(L);
  }
  return end(L, pidx, borrowed);
}

/* executor:batch({ {sql, arg1, ...}, ... } [, { timeout = s }]) -> results | nil, err
 * The timeout as for pipeline.
 * A bad entry (not a table, no SQL, a parameter that cannot be encoded)
 * returns nil, err (kind invalid_input) before anything is sent. */
int crpg_batch(lua_State *L) {
  int borrowed, pidx, i, n;
  double timeout;
  luaL_checktype(L, 2, LUA_TTABLE);
  timeout = opt_timeout(L, 3);
  lua_settop(L, 2);
  n = (int)lua_rawlen(L, 2);
  /* check every entry before sending anything */
  for (i = 1; i <= n; i++) {
    int k, m;
    param_set ps;
    char msg[96];
    lua_rawgeti(L, 2, i);
    if (!lua_istable(L, -1)) {
      snprintf(msg, sizeof msg, "batch entry %d is not a table {sql, ...}", i);
      return crpg_push_error(L, KIND_INVALID_INPUT, msg);
    }
    m = (int)lua_rawlen(L, -1);
    lua_rawgeti(L, -1, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      snprintf(msg, sizeof msg, "batch entry %d has no SQL string first", i);
      return crpg_push_error(L, KIND_INVALID_INPUT, msg);
    }
    {
      size_t len;
      const char *sql = lua_tolstring(L, -1, &len);
      if (crpg_check_param_count(L, sql, len, m > 1 ? m - 1 : 0)) return 2;
    }
    lua_pop(L, 1);
    luaL_checkstack(L, m + 8, "too many parameters");
    for (k = 2; k <= m; k++) lua_rawgeti(L, 3, k);
    if (crpg_encode_params(L, 4, m > 1 ? m - 1 : 0, &ps)) return 2;
    lua_settop(L, 2);
  }
  pidx = start(L, &borrowed, timeout);
  if (!pidx) return 2;
  for (i = 1; i <= n; i++) {
    int k, m, top = lua_gettop(L);
    pipeline_handle *p = to_pipeline(L, pidx);
    lua_rawgeti(L, 2, i);
    m = (int)lua_rawlen(L, -1);
    for (k = 1; k <= m; k++) lua_rawgeti(L, top + 1, k);
    if (send_one(L, pidx, p, top + 2, top + 3, m - 1) != 0) break;  /* broken: collect reports it */
    lua_settop(L, top);
  }
  lua_settop(L, pidx);
  return end(L, pidx, borrowed);
}

static int pipeline_tostring(lua_State *L) {
  pipeline_handle *p = to_pipeline(L, 1);
  lua_pushfstring(L, "%s (%s, %d queued)", CRPG_PIPELINE_MT, p->open ? "open" : "closed", p->sent);
  return 1;
}

void crpg_open_pipeline(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"query", pipeline_query},
    {NULL, NULL},
  };
  static const luaL_Reg metamethods[] = {
    {"__tostring", pipeline_tostring},
    {NULL, NULL},
  };
  crpg_new_type(L, CRPG_PIPELINE_MT, methods, metamethods);
}
