/* COPY ... FROM STDIN: executor:copy_in(sql, rows), installed into the conn,
 * pool and tx metatables by module.c. Rows are encoded by params.c (the same
 * rules as query parameters) into COPY's text format (copy_text.c) and sent in
 * chunks. The first chunk is encoded before the COPY statement is sent,
 * so a bad row in it (the whole input, for small loads) writes nothing and
 * sends nothing; a bad row later aborts the COPY (PQputCopyEnd with the
 * reason), which writes nothing either. The first chunk is 256 KiB, the
 * later ones 64 KiB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy_text.h"
#include "crpg.h"

#define FIRST_CHUNK (256 * 1024)  /* encoded before the COPY starts */
#define COPY_CHUNK (64 * 1024)

typedef struct copy_state {
  exec_target t;
  strbuf buf;
  strbuf json;            /* scratch for one JSON value */
  int src;                /* stack index of the rows table or iterator function */
  int is_fn;
  long long rows;         /* rows encoded */
  int ncols;              /* columns of the first row */
  double timeout;         /* client-side deadline per wait on the server, 0: none */
  int started;            /* the COPY statement is running: COPY_IN state */
  int done;               /* the input is exhausted */
} copy_state;

/* Pushes the next row (a table) or nothing at the end; raises on a Lua error
 * in the iterator. Returns 1 when a row was pushed. */
static int next_row(lua_State *L, copy_state *c) {
  if (c->is_fn) {
    lua_pushvalue(L, c->src);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      return 0;
    }
    return 1;
  }
  lua_rawgeti(L, c->src, (int)(c->rows + 1));
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* Pushes nil, err (kind invalid_input) naming the row. Returns 2. */
static int bad_row(lua_State *L, copy_state *c, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "copy_in row %lld: %s", c->rows + 1, what);
  return crpg_push_error(L, KIND_INVALID_INPUT, msg);
}

/* Appends the value at idx as one COPY field. The plain cases (NULL,
 * booleans, integers, strings, plain tables as JSON) are written straight
 * into the buffer, by the same rules as params.c; everything else (floats,
 * pg.json, pg.array, pg.bytea, values params.c may learn later) goes through
 * crpg_encode_params. Returns 0, or -1 with a message in err. */
static int encode_value(lua_State *L, copy_state *c, int idx, char *err, size_t errlen) {
  long long iv;
  size_t len;
  const char *str;
  param_set ps;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      strbuf_append(&c->buf, "\\N", 2);
      return 0;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) strbuf_append(&c->buf, "true", 4);
      else strbuf_append(&c->buf, "false", 5);
      return 0;
    case LUA_TNUMBER:
      if (!crpg_isinteger(L, idx, &iv)) break;
      strbuf_put_int(&c->buf, iv);
      return 0;
    case LUA_TSTRING:
      str = lua_tolstring(L, idx, &len);
      if (memchr(str, 0, len)) break;   /* params.c words the error */
      copy_text_escape(&c->buf, str, len);
      return 0;
    case LUA_TTABLE:
      if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        break;
      }
      strbuf_reset(&c->json);
      if (crpg_json_encode(L, idx, &c->json, err, errlen) != 0) return -1;
      if (c->json.failed) break;
      copy_text_escape(&c->buf, c->json.data ? c->json.data : "", c->json.len);
      return 0;
    default:
      if (crpg_is_null(L, idx)) {
        strbuf_append(&c->buf, "\\N", 2);
        return 0;
      }
      break;
  }
  lua_pushvalue(L, idx);
  if (crpg_encode_params(L, lua_gettop(L), 1, &ps) != 0) {
    lua_getfield(L, -1, "message");
    snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "cannot encode the value");
    return -1;
  }
  if (!ps.values[0]) strbuf_append(&c->buf, "\\N", 2);
  else if (ps.formats[0] == 1) copy_text_bytea(&c->buf, ps.values[0], (size_t)ps.lengths[0]);
  else copy_text_escape(&c->buf, ps.values[0], strlen(ps.values[0]));
  return 0;
}

/* Encodes the row on top of the stack (popped) into c->buf. Returns 0, or 2
 * with nil, err pushed. */
static int encode_row(lua_State *L, copy_state *c) {
  int row = lua_gettop(L), n, i;
  if (!lua_istable(L, row)) {
    lua_settop(L, row - 1);
    return bad_row(L, c, "is not an array of values");
  }
  n = (int)lua_rawlen(L, row);
  if (c->ncols == 0) c->ncols = n;
  if (n == 0 || n != c->ncols) {
    char what[96];
    lua_settop(L, row - 1);
    snprintf(what, sizeof what, "has %d values, the first row %d", n, c->ncols);
    return bad_row(L, c, n == 0 ? "is empty" : what);
  }
  for (i = 1; i <= n; i++) {
    char err[160], msg[200];
    lua_rawgeti(L, row, i);
    if (i > 1) strbuf_putc(&c->buf, '\t');
    if (encode_value(L, c, row + 1, err, sizeof err) != 0) {
      const char *at = strstr(err, "parameter $1: ");
      snprintf(msg, sizeof msg, "column %d: %s", i, at ? at + 14 : err);
      lua_settop(L, row - 1);
      return bad_row(L, c, msg);
    }
    lua_settop(L, row);
  }
  strbuf_putc(&c->buf, '\n');
  lua_settop(L, row - 1);
  c->rows++;
  return 0;
}

/* Fills c->buf up to a chunk. Returns 0, or 2 with nil, err pushed. */
static int fill(lua_State *L, copy_state *c) {
  size_t chunk = c->rows == 0 ? FIRST_CHUNK : COPY_CHUNK;
  strbuf_reset(&c->buf);
  while (!c->done && c->buf.len < chunk) {
    if (!next_row(L, c)) {
      c->done = 1;
      break;
    }
    if (encode_row(L, c) != 0) return 2;
  }
  if (c->buf.failed) return crpg_push_error(L, KIND_INVALID_INPUT, "copy_in: out of memory");
  return 0;
}

/* ---- waits on the server, each within c->timeout (session_wait) ------------ */

/* Starts the deadline of the next wait, unless one already passed. */
static void arm(copy_state *c) {
  session *s = c->t.s;
  if (!s->timed_out) s->deadline = c->timeout > 0 ? session_now() + c->timeout : 0;
}

/* Sends what libpq holds. 0, or -1 (connection lost or given up). */
static int flush_out(session *s) {
  int f;
  while ((f = PQflush(s->pg)) > 0)
    if (session_wait(s, 1) != 0) return -1;
  return f < 0 ? -1 : 0;
}

/* PQputCopyData on the non-blocking connection. 0, or -1 (the COPY ended:
 * the server reported an error, or the connection is lost). */
static int put_data(session *s, const char *data, int len) {
  int rc;
  while ((rc = PQputCopyData(s->pg, data, len)) == 0)
    if (session_wait(s, 1) != 0) return -1;
  return rc == 1 ? 0 : -1;
}

/* PQputCopyEnd (errmsg: abort with that reason), then sends it. */
static int put_end(session *s, const char *errmsg) {
  int rc;
  while ((rc = PQputCopyEnd(s->pg, errmsg)) == 0)
    if (session_wait(s, 1) != 0) return -1;
  return rc == 1 ? flush_out(s) : -1;
}

/* Drops the results left after the COPY ended. */
static void drop_results(session *s) {
  PGresult *r;
  while ((r = session_get_result(s)) != NULL) PQclear(r);
}

/* Reads the results after the COPY ended; pushes the first error (returns 2)
 * or leaves the stack as it was (returns 0, the count in *count). A COPY
 * that passed its deadline and was cancelled reports kind timeout; one that
 * completed before the cancel reached it keeps its count. */
static int finish_results(lua_State *L, copy_state *c, long long *count, int *kind) {
  PGresult *r;
  session *s = c->t.s;
  int failed = 0, done = 0;
  while ((r = session_get_result(s)) != NULL) {
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK) {
      const char *n = PQcmdTuples(r);
      *count = n && *n ? strtoll(n, NULL, 10) : c->rows;
      done = 1;
    } else if (!failed) {
      failed = 1;
      lua_pushnil(L);
      if (s->timed_out) {
        crpg_new_timeout_error(L, s, c->timeout);
        *kind = KIND_TIMEOUT;
      } else {
        *kind = (int)crpg_push_result_error(L, r, s);
      }
    }
    PQclear(r);
  }
  if (!failed && !done) { /* no result: the connection was given up or lost */
    failed = 1;
    lua_pushnil(L);
    if (s->timed_out) {
      crpg_new_timeout_error(L, s, c->timeout);
      *kind = KIND_TIMEOUT;
    } else {
      crpg_new_error(L, KIND_CONNECT, PQerrorMessage(s->pg));
      *kind = KIND_CONNECT;
    }
  }
  return failed ? 2 : 0;
}

/* 1 when sql's first word is COPY (after blanks and comments). */
static int starts_with_copy(const char *sql) {
  for (;;) {
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' || *sql == '(') sql++;
    if (sql[0] == '-' && sql[1] == '-') {
      while (*sql && *sql != '\n') sql++;
      continue;
    }
    if (sql[0] == '/' && sql[1] == '*') {
      const char *end = strstr(sql + 2, "*/");
      if (!end) return 0;
      sql = end + 2;
      continue;
    }
    break;
  }
  return (sql[0] | 0x20) == 'c' && (sql[1] | 0x20) == 'o' && (sql[2] | 0x20) == 'p' &&
         (sql[3] | 0x20) == 'y' && (sql[4] == ' ' || sql[4] == '\t' || sql[4] == '\n' || sql[4] == '\r');
}

/* The body, run protected: stack 1 lightuserdata(copy_state), 2 sql, 3 the
 * rows table or iterator. Returns count or nil, err. */
static int copy_body(lua_State *L) {
  copy_state *c = lua_touserdata(L, 1);
  session *s = c->t.s;
  size_t sql_len;
  const char *sql = lua_tolstring(L, 2, &sql_len);
  PGresult *r;
  ExecStatusType st;
  long long count = 0;
  double started;
  int failed_kind = -1;

  if (fill(L, c) != 0) return 2;   /* nothing sent yet */
  started = session_now();
  arm(c);
  (void)PQsetnonblocking(s->pg, 1);  /* crpg_copy_in sets it back */
  r = session_finish(s, PQsendQueryParams(s->pg, sql, 0, NULL, NULL, NULL, NULL, 0));
  st = PQresultStatus(r);
  if (st != PGRES_COPY_IN) {
    lua_pushnil(L);
    if (s->timed_out) {
      /* cancelled before the server asked for data (a lock, say); if it got
       * to COPY_IN as the cancel arrived, end that COPY too */
      PQclear(r);
      r = NULL;
      (void)put_end(s, "cancelled: client-side timeout");
      drop_results(s);
      crpg_new_timeout_error(L, s, c->timeout);
      failed_kind = KIND_TIMEOUT;
    } else if (st == PGRES_COPY_OUT || st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      char *row;
      if (st == PGRES_COPY_OUT) while (PQgetCopyData(s->pg, &row, 0) > 0) PQfreemem(row);
      crpg_new_error(L, KIND_INVALID_INPUT, "copy_in needs a COPY ... FROM STDIN statement");
      failed_kind = KIND_INVALID_INPUT;
    } else {
      failed_kind = (int)crpg_push_result_error(L, r, s);
    }
    PQclear(r);
    drop_results(s);
    crpg_after_statement(L, &c->t, sql, sql_len, (session_now() - started) * 1000.0, failed_kind, 0);
    return 2;
  }
  PQclear(r);
  c->started = 1;
  for (;;) {
    arm(c);
    if (c->buf.len > 0 && put_data(s, c->buf.data, (int)c->buf.len) != 0) break;
    if (c->done) break;
    if (fill(L, c) != 0) {
      /* a bad row: abort the COPY with the reason; the server writes nothing */
      int err = lua_gettop(L);
      lua_getfield(L, err, "message");
      arm(c);
      (void)put_end(s, lua_tostring(L, -1));
      lua_pop(L, 1);
      c->started = 0;
      drop_results(s);
      crpg_after_statement(L, &c->t, sql, sql_len, (session_now() - started) * 1000.0, KIND_INVALID_INPUT, 0);
      return 2;
    }
  }
  arm(c);
  (void)put_end(s, NULL);
  c->started = 0;
  if (finish_results(L, c, &count, &failed_kind) != 0) {
    crpg_after_statement(L, &c->t, sql, sql_len, (session_now() - started) * 1000.0, failed_kind, 0);
    return 2;
  }
  crpg_after_statement(L, &c->t, sql, sql_len, (session_now() - started) * 1000.0, -1, 0);
  crpg_pushint64(L, count);
  return 1;
}

/* executor:copy_in(sql, rows) -> count | nil, err
 * sql may be { sql = "COPY ...", timeout = s }: a deadline (else the
 * connection's query_timeout) on each wait for the server; past it the COPY
 * is cancelled and nil, err (kind timeout) returned.
 * sql: COPY table [(columns)] FROM STDIN (text format, the default).
 * rows: an array of row arrays, or an iterator function returning a row
 * array per call and nil at the end. Values encode as query parameters do
 * (pg.null for NULL; booleans, numbers, strings; tables and pg.json as JSON;
 * pg.array; pg.bytea). A bad row (a value that cannot be encoded, a row that
 * is not an array or has another length than the first) ends the COPY with
 * nothing written and nil, err (kind invalid_input); a server error returns
 * the server's error. */
int crpg_copy_in(lua_State *L) {
  copy_state c;
  int borrowed, conn_idx, status, nres;
  size_t sql_len;
  double timeout = -1;
  const char *sql = crpg_statement(L, 2, &sql_len, &timeout); /* raises on misuse */

  if (!lua_istable(L, 3) && !lua_isfunction(L, 3))
    return luaL_argerror(L, 3, "expected an array of rows or an iterator function");
  lua_settop(L, 3);
  if (memchr(sql, 0, sql_len)) return crpg_push_error(L, KIND_INVALID_INPUT, "SQL text contains a NUL byte");
  if (!starts_with_copy(sql))
    return crpg_push_error(L, KIND_INVALID_INPUT, "copy_in needs a COPY ... FROM STDIN statement");
  borrowed = crpg_push_executor_conn(L, 1);
  if (borrowed < 0) return 2;
  conn_idx = lua_gettop(L);
  memset(&c, 0, sizeof c);
  crpg_conn_target(L, conn_idx, &c.t);         /* hooks at conn_idx + 1 */
  if (crpg_push_if_given_up(L, c.t.s)) {
    if (borrowed) crpg_release_conn(luaL_checkudata(L, conn_idx, CRPG_CONN_MT));
    return 2;
  }
  if (c.t.s->stream_open) session_settle(c.t.s);
  c.timeout = timeout >= 0 ? timeout : c.t.timeout;
  c.src = 3;  /* in copy_body's frame */
  c.is_fn = lua_isfunction(L, 3);
  strbuf_init(&c.buf);
  strbuf_init(&c.json);

  lua_pushcfunction(L, copy_body);
  lua_pushlightuserdata(L, &c);
  lua_pushlstring(L, sql, sql_len);
  lua_pushvalue(L, 3);
  status = lua_pcall(L, 3, LUA_MULTRET, 0);
  if (status != 0 && c.started) {
    arm(&c);
    (void)put_end(c.t.s, "copy_in: the row iterator raised an error");
    drop_results(c.t.s);
  }
  (void)PQsetnonblocking(c.t.s->pg, 0);
  c.t.s->deadline = 0;
  c.t.s->timed_out = 0;
  strbuf_free(&c.buf);
  strbuf_free(&c.json);
  if (borrowed) crpg_release_conn(luaL_checkudata(L, conn_idx, CRPG_CONN_MT));
  if (status != 0) return lua_error(L);
  nres = lua_gettop(L) - (conn_idx + 1);
  return nres;
}
