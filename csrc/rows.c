/* The rows iterator (coderunner.pg.rows): one statement whose results are
 * read a row at a time, so a million rows take the memory of one.
 * executor:rows(sql, ...) prepares and describes the query (so result.c can
 * learn its column types before the stream), runs it in libpq's single-row
 * mode and decodes each row through result.c; executor:copy_out(sql [, opts]) reads COPY ...
 * TO STDOUT line by line. module.c installs both into the conn, pool and tx
 * metatables.
 *
 * While an iterator is open its connection is busy (session.stream_open).
 * Ending it early: the iterator's close (the to-be-closed 4th value of a
 * generic for in Lua 5.4, or it:close()) cancels the statement and drains it
 * at once; an iterator dropped without close (a break on LuaJIT, a Lua error
 * in the loop, garbage collection) does no I/O: the connection's next
 * statement settles it first (session_settle), and a borrowed pool connection
 * is given back (the pool closes it, as it is mid-statement). */
#include <stdlib.h>
#include <string.h>

#include "copy_text.h"
#include "crpg.h"

enum { MODE_ROWS, MODE_COPY_OUT };

typedef struct rows_cursor {
  conn_handle *conn;      /* kept alive by the uservalue */
  PGresult *pending;      /* the first result, read by rows() */
  strbuf scratch;         /* copy_out: one field, unescaped */
  double started;
  double timeout;         /* client-side deadline per wait for the server, 0: none */
  unsigned gen;           /* the session's stream_gen when this stream began */
  int mode;
  int raw;                /* copy_out: yield lines as strings */
  int borrowed;           /* the connection came from a pool for this iterator */
  int active;             /* the stream is open and belongs to this iterator */
} rows_cursor;

static rows_cursor *to_cursor(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CRPG_ROWS_MT);
}

/* 1 when the cursor's stream is still the session's open stream. */
static int still_ours(const rows_cursor *c) {
  session *s = c->conn ? c->conn->s : NULL;
  return c->active && s && s->stream_open && s->stream_gen == c->gen;
}

/* Pushes the cursor's connection object. */
static void push_conn(lua_State *L, int cur) {
  crpg_getuservalue(L, cur);
  lua_rawgeti(L, -1, 1);
  lua_remove(L, -2);
}

/* Ends the stream after its last result (no cancel needed): reports it and
 * gives a borrowed connection back. failed_kind < 0: it succeeded. */
static void finish(lua_State *L, int cur, rows_cursor *c, int failed_kind) {
  int top = lua_gettop(L);
  if (c->pending) {
    PQclear(c->pending);
    c->pending = NULL;
  }
  if (c->conn && c->conn->s && (!c->active || still_ours(c))) {
    c->conn->s->deadline = 0;  /* a start that failed, or the stream's end */
    c->conn->s->timed_out = 0;
  }
  if (c->active && c->conn->s) {
    session *s = c->conn->s;
    if (still_ours(c)) {
      s->stream_open = 0;
      s->stream_gen++;
    }
    c->active = 0;
    {
      exec_target t;
      push_conn(L, cur);
      crpg_conn_target(L, -1, &t);
      crpg_after_statement(L, &t, c->mode == MODE_ROWS ? "rows" : "copy_out", c->mode == MODE_ROWS ? 4 : 8,
                           (session_now() - c->started) * 1000.0, failed_kind, 0);
    }
  }
  c->active = 0;
  if (c->borrowed) {
    c->borrowed = 0;
    crpg_release_conn(c->conn);
  }
  lua_settop(L, top);
}

/* Cancels and drains a stream ended early. */
static void abandon(lua_State *L, int cur, rows_cursor *c) {
  if (still_ours(c)) session_settle(c->conn->s);
  finish(L, cur, c, -1);
}

/* Starts the deadline of the next wait for the server, unless one already
 * passed (the cancel is then on its way). */
static void arm(rows_cursor *c) {
  session *s = c->conn->s;
  if (!s->timed_out) s->deadline = c->timeout > 0 ? session_now() + c->timeout : 0;
}

/* Reads the rest of a finished statement; pushes an error object for the
 * first failure (returns its kind) or returns -1. After a passed deadline
 * the failure is kind timeout. */
static int drain(lua_State *L, rows_cursor *c, PGresult *r) {
  int kind = -1;
  session *s = c->conn->s;
  for (;;) {
    ExecStatusType st;
    if (!r) r = session_get_result(s);
    if (!r) break;
    st = PQresultStatus(r);
    if (kind < 0 && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE) {
      if (s->timed_out) {
        crpg_new_timeout_error(L, s, c->timeout);
        kind = KIND_TIMEOUT;
      } else {
        kind = (int)crpg_push_result_error(L, r, s);
      }
    }
    PQclear(r);
    r = NULL;
  }
  if (kind < 0 && s->timed_out && s->broken) { /* the cancel went unanswered: given up */
    crpg_new_timeout_error(L, s, c->timeout);
    kind = KIND_TIMEOUT;
  }
  return kind;
}

/* Reads and drops what is left of a COPY TO STDOUT (within the deadline). */
static void drop_copy_data(session *s) {
  for (;;) {
    char *line = NULL;
    int n = PQgetCopyData(s->pg, &line, 1);
    if (n > 0) {
      PQfreemem(line);
    } else if (n == 0) {
      if (session_wait(s, 0) != 0) break;
    } else {
      break;
    }
  }
}

/* Sends what libpq holds of the statement just sent (non-blocking), within
 * the deadline. */
static void flush_out(session *s) {
  while (PQflush(s->pg) > 0)
    if (session_wait(s, 1) != 0) break;
}

typedef struct split_ctx {
  lua_State *L;
  int n;
} split_ctx;

static int add_field(void *ctx, const char *s, size_t len, int is_null) {
  split_ctx *x = ctx;
  if (is_null) crpg_push_null(x->L);
  else lua_pushlstring(x->L, s, len);
  lua_rawseti(x->L, -2, ++x->n);
  return 0;
}

/* The iterator function: it(cursor) -> row | nil at the end. A server error
 * in the middle of the stream raises the error object. */
static int rows_next(lua_State *L) {
  rows_cursor *c = to_cursor(L, 1);
  session *s;
  lua_settop(L, 1);
  if (!c->active) return 0;
  if (!still_ours(c)) {
    finish(L, 1, c, -1);
    return luaL_error(L, "rows iterator ended: its connection ran another statement or was closed");
  }
  s = c->conn->s;
  if (c->mode == MODE_ROWS) {
    PGresult *r;
    ExecStatusType st;
    int kind;
    arm(c);
    r = c->pending ? c->pending : session_get_result(s);
    s->deadline = 0;  /* armed again for the next wait */
    c->pending = NULL;
    st = PQresultStatus(r);
    if (r && st == PGRES_SINGLE_TUPLE) {
      int hooks;
      crpg_getuservalue(L, 1);
      lua_rawgeti(L, -1, 2);
      hooks = lua_gettop(L);
      if (crpg_push_result_rows(L, s, r, hooks) != 1) {  /* clears r; a value result.c refuses */
        int err = lua_gettop(L);
        abandon(L, 1, c);
        lua_pushvalue(L, err);
        return lua_error(L);
      }
      lua_rawgeti(L, -1, 1);
      return 1;
    }
    kind = drain(L, c, r);
    finish(L, 1, c, kind);
    if (kind >= 0) return lua_error(L);
    return 0;
  } else {
    char *line = NULL;
    int n, kind;
    arm(c);
    while ((n = PQgetCopyData(s->pg, &line, 1)) == 0)
      if (session_wait(s, 0) != 0) break;
    s->deadline = 0;  /* armed again for the next wait */
    if (n > 0) {
      if (c->raw) {
        lua_pushlstring(L, line, (size_t)n);
      } else {
        split_ctx x;
        int rc;
        x.L = L;
        x.n = 0;
        lua_newtable(L);
        rc = copy_text_split(line, (size_t)n, &c->scratch, add_field, &x);
        if (rc != 0) {
          PQfreemem(line);
          abandon(L, 1, c);
          return luaL_error(L, "out of memory");
        }
      }
      PQfreemem(line);
      return 1;
    }
    if (line) PQfreemem(line);
    kind = drain(L, c, NULL);
    finish(L, 1, c, kind);
    if (kind >= 0) return lua_error(L);
    return 0;
  }
}

/* it:close(): ends the stream now (cancelling what is left of it). Idempotent. */
static int rows_close(lua_State *L) {
  rows_cursor *c = to_cursor(L, 1);
  lua_settop(L, 1);
  if (c->active) abandon(L, 1, c);
  else if (c->borrowed) finish(L, 1, c, -1);
  return 0;
}

/* Collected: no I/O. The stream stays marked on the session, which settles it
 * before its next statement; a borrowed connection goes back to the pool. */
static int rows_gc(lua_State *L) {
  rows_cursor *c = to_cursor(L, 1);
  if (c->pending) {
    PQclear(c->pending);
    c->pending = NULL;
  }
  strbuf_free(&c->scratch);
  c->active = 0;
  if (c->borrowed) {
    c->borrowed = 0;
    crpg_abandon_conn(c->conn); /* no rollback, no refill connect from a finalizer */
  }
  return 0;
}

static int rows_tostring(lua_State *L) {
  rows_cursor *c = to_cursor(L, 1);
  lua_pushfstring(L, "%s (%s)", CRPG_ROWS_MT, c->active ? "open" : "ended");
  return 1;
}

/* Starts a stream on the executor at 1: creates the cursor (pushed), takes
 * the connection. Returns the cursor's stack index, or 0 with nil, err pushed. */
static int new_cursor(lua_State *L, int mode) {
  rows_cursor *c;
  int borrowed = crpg_push_executor_conn(L, 1), conn_idx, cur;
  if (borrowed < 0) return 0;
  conn_idx = lua_gettop(L);
  c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  strbuf_init(&c->scratch);
  c->mode = mode;
  c->conn = luaL_checkudata(L, conn_idx, CRPG_CONN_MT);
  c->borrowed = borrowed;
  luaL_getmetatable(L, CRPG_ROWS_MT);
  lua_setmetatable(L, -2);
  cur = lua_gettop(L);
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, conn_idx);
  lua_rawseti(L, -2, 1);
  crpg_getuservalue(L, conn_idx);   /* the connection's hooks: registered decoders */
  lua_rawseti(L, -2, 2);
  crpg_setuservalue(L, cur);
  if (crpg_push_if_given_up(L, c->conn->s)) { /* nil, err pushed */
    int err = lua_gettop(L);
    finish(L, cur, c, KIND_CLOSED);
    lua_settop(L, err);
    return 0;
  }
  if (c->conn->s->stream_open) session_settle(c->conn->s);
  if (c->conn->s->decoding) {
    PQclear(c->conn->s->decoding);
    c->conn->s->decoding = NULL;
  }
  return cur;
}

/* Marks the stream open, owned by the cursor at cur. */
static void open_stream(rows_cursor *c) {
  session *s = c->conn->s;
  s->stream_open = 1;
  c->gen = s->stream_gen;
  c->active = 1;
}

/* Pushes the iterator triple plus the closing value: it, cursor, nil, cursor. */
static int push_iterator(lua_State *L, int cur) {
  lua_pushcfunction(L, rows_next);
  lua_pushvalue(L, cur);
  lua_pushnil(L);
  lua_pushvalue(L, cur);
  return 4;
}

/* Reports a failure to start: nil, err with the error at top; ends the cursor. */
static int start_failed(lua_State *L, int cur, rows_cursor *c, int kind) {
  int err = lua_gettop(L);
  finish(L, cur, c, kind);
  lua_pushnil(L);
  lua_pushvalue(L, err);
  return 2;
}

/* executor:rows(sql, ...) -> iterator, cursor, nil, cursor | nil, err
 * sql may be { sql = "...", timeout = s }: a deadline (else query_timeout) on
 * each wait for the server (the start, then each next row); past it the
 * statement is cancelled and the timeout reported as any error.
 *   for row in assert(conn:rows("select ...", a, b)) do ... end
 * Runs sql with the parameters in single-row mode; each step decodes one row
 * (as query would). An error before the first row returns nil, err; an error
 * in the middle of the stream raises the error object from the loop. From a
 * pool, a connection is held until the iterator ends (or is closed). */
int crpg_rows(lua_State *L) {
  int n = lua_gettop(L) - 2, cur, kind;
  size_t sql_len;
  double timeout = -1;
  const char *sql = crpg_statement(L, 2, &sql_len, &timeout); /* raises on misuse */
  param_set ps;
  rows_cursor *c;
  session *s;
  PGresult *r;
  ExecStatusType st;

  if (n < 0) n = 0;
  if (memchr(sql, 0, sql_len)) return crpg_push_error(L, KIND_INVALID_INPUT, "SQL text contains a NUL byte");
  if (crpg_check_param_count(L, sql, sql_len, n) || crpg_encode_params(L, 3, n, &ps)) return 2;
  cur = new_cursor(L, MODE_ROWS);
  if (!cur) return 2;
  c = to_cursor(L, cur);
  s = c->conn->s;
  c->started = session_now();
  c->timeout = timeout >= 0 ? timeout : c->conn->timeout;
  if (crpg_fix_array_delims(L, s, sql, sql_len, 3, &ps)) return start_failed(L, cur, c, KIND_INVALID_INPUT);
  /* Prepared and described first: result.c learns the column types (pg_type
   * queries, registered decoders) now, while the connection may still run
   * queries; in the middle of the stream it could not. The deadline runs
   * from here to the first row. */
  arm(c);
  (void)PQsetnonblocking(s->pg, 1);
  r = session_finish(s, PQsendPrepare(s->pg, "", sql, ps.n, ps.types));
  if (PQresultStatus(r) == PGRES_COMMAND_OK && !s->timed_out) {
    PQclear(r);
    r = session_finish(s, PQsendDescribePrepared(s->pg, ""));
  }
  (void)PQsetnonblocking(s->pg, 0);
  if (s->timed_out) {
    PQclear(r);
    crpg_new_timeout_error(L, s, c->timeout);
    return start_failed(L, cur, c, KIND_TIMEOUT);
  }
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    kind = (int)crpg_push_result_error(L, r, s);
    PQclear(r);
    return start_failed(L, cur, c, kind);
  }
  {
    int top = lua_gettop(L), hooks;
    crpg_getuservalue(L, cur);
    lua_rawgeti(L, -1, 2);
    hooks = lua_gettop(L);
    kind = crpg_push_result(L, s, r, hooks) == 1 ? -1 : KIND_SERVER;  /* no rows: types only; clears r */
    if (kind >= 0) return start_failed(L, cur, c, kind);
    lua_settop(L, top);
  }
  /* sent whole again: the type queries above may have replaced the unnamed statement */
  if (s->timed_out) { /* a type query passed the deadline */
    crpg_new_timeout_error(L, s, c->timeout);
    return start_failed(L, cur, c, KIND_TIMEOUT);
  }
  (void)PQsetnonblocking(s->pg, 1);
  if (!PQsendQueryParams(s->pg, sql, ps.n, ps.types, ps.values, ps.lengths, ps.formats, 0)) {
    (void)PQsetnonblocking(s->pg, 0);
    crpg_new_error(L, session_is_broken(s) ? KIND_CONNECT : KIND_SERVER, PQerrorMessage(s->pg));
    return start_failed(L, cur, c, session_is_broken(s) ? KIND_CONNECT : KIND_SERVER);
  }
  (void)PQsetSingleRowMode(s->pg);
  open_stream(c);
  flush_out(s);
  (void)PQsetnonblocking(s->pg, 0);
  r = session_get_result(s);
  s->deadline = 0;
  st = PQresultStatus(r);
  if (r && st == PGRES_SINGLE_TUPLE) {
    c->pending = r;
    return push_iterator(L, cur);
  }
  kind = drain(L, c, r);
  if (kind >= 0) return start_failed(L, cur, c, kind);
  finish(L, cur, c, -1);  /* no rows: an iterator that ends at once */
  return push_iterator(L, cur);
}

/* executor:copy_out(sql [, opts]) -> iterator, cursor, nil, cursor | nil, err
 * sql may be { sql = "...", timeout = s }, with the deadline as for rows.
 *   for row in assert(conn:copy_out("COPY t TO STDOUT")) do ... end
 * sql: COPY ... TO STDOUT in text format. Each step yields a row as an array
 * of strings (COPY's text unescaped; NULL as pg.null); opts.raw = true yields
 * each line as it came (with its newline). */
int crpg_copy_out(lua_State *L) {
  size_t sql_len;
  double timeout = -1;
  const char *sql = crpg_statement(L, 2, &sql_len, &timeout); /* raises on misuse */
  int raw = 0, cur, kind;
  rows_cursor *c;
  session *s;
  PGresult *r;
  ExecStatusType st;

  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "raw");
    raw = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  if (memchr(sql, 0, sql_len)) return crpg_push_error(L, KIND_INVALID_INPUT, "SQL text contains a NUL byte");
  cur = new_cursor(L, MODE_COPY_OUT);
  if (!cur) return 2;
  c = to_cursor(L, cur);
  c->raw = raw;
  s = c->conn->s;
  c->started = session_now();
  c->timeout = timeout >= 0 ? timeout : c->conn->timeout;
  arm(c);
  (void)PQsetnonblocking(s->pg, 1);
  r = session_finish(s, PQsendQueryParams(s->pg, sql, 0, NULL, NULL, NULL, NULL, 0));
  (void)PQsetnonblocking(s->pg, 0);
  s->deadline = 0;
  st = PQresultStatus(r);
  if (r && st == PGRES_COPY_OUT && !s->timed_out) {
    PQclear(r);
    open_stream(c);
    return push_iterator(L, cur);
  }
  open_stream(c);
  if (s->timed_out) { /* cancelled before the first row; it may have reached COPY_OUT meanwhile */
    PQclear(r);
    drop_copy_data(s);
    while ((r = session_get_result(s)) != NULL) PQclear(r);
    crpg_new_timeout_error(L, s, c->timeout);
    return start_failed(L, cur, c, KIND_TIMEOUT);
  }
  if (r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN)) {
    if (st == PGRES_COPY_IN) (void)PQputCopyEnd(s->pg, "copy_out needs COPY ... TO STDOUT");
    PQclear(r);
    while ((r = PQgetResult(s->pg)) != NULL) PQclear(r);
    crpg_new_error(L, KIND_INVALID_INPUT, "copy_out needs a COPY ... TO STDOUT statement");
    return start_failed(L, cur, c, KIND_INVALID_INPUT);
  }
  kind = drain(L, c, r);
  if (kind < 0) {
    crpg_new_error(L, KIND_SERVER, "copy_out: no result");
    kind = KIND_SERVER;
  }
  return start_failed(L, cur, c, kind);
}

void crpg_open_rows(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", rows_close},
    {NULL, NULL},
  };
  static const luaL_Reg metamethods[] = {
    {"__gc", rows_gc},
    {"__close", rows_close},
    {"__call", rows_next},
    {"__tostring", rows_tostring},
    {NULL, NULL},
  };
  crpg_new_type(L, CRPG_ROWS_MT, methods, metamethods);
}
