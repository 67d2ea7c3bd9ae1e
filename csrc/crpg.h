/* Declarations shared by the Lua-facing files of coderunner.pg (the C core's
 * Lua side): metatable names, the handle types, and the functions one file
 * offers another. Files call one way, each only files listed above it:
 *   pure C:  strbuf, array_literal, bytea, redact, json, sql_split, sqlstate, copy_text,
 *            binary, conninfo, pgtype, session, pool_core, pool_registry
 *   Lua:     auxlib, error, json_value, params, result, exec, conn, pool, tx,
 *            copy, rows, pipeline, notify,
 *            module (the opener; nothing calls it)
 * `make lint` checks this on the object files (scripts/callgraph.py). */
#ifndef CRPG_CRPG_H
#define CRPG_CRPG_H

#include <libpq-fe.h>

#include "auxlib.h"
#include "compat.h"
#include "pool_core.h"
#include "session.h"
#include "sqlstate.h"
#include "strbuf.h"

#define CRPG_CONN_MT       "coderunner.pg.conn"
#define CRPG_POOL_MT       "coderunner.pg.pool"
#define CRPG_TX_MT         "coderunner.pg.tx"
#define CRPG_ERROR_MT      "coderunner.pg.error"
#define CRPG_JSON_MT       "coderunner.pg.json"        /* pg.json(v) parameter wrapper */
#define CRPG_ARRAY_MT      "coderunner.pg.array"       /* pg.array(t) parameter wrapper */
#define CRPG_BYTEA_MT      "coderunner.pg.bytea"       /* pg.bytea(s) parameter wrapper */
#define CRPG_JSON_ARRAY_MT "coderunner.pg.json_array"  /* marks decoded JSON arrays */
#define CRPG_ROWS_MT       "coderunner.pg.rows"
#define CRPG_PIPELINE_MT   "coderunner.pg.pipeline"
#define CRPG_TYPES_KEY     "coderunner.pg.types"       /* registry: pg.register_type decoders */

/* A Lua connection object: owns its session, or borrows one from a pool. */
typedef struct conn_handle {
  session *s;           /* NULL once closed or released */
  pool_core *pool;      /* set when borrowed from a pool */
  double slow_ms;       /* slow-query threshold, < 0 for none */
  double timeout;       /* query_timeout in seconds, 0 for none */
  char *acquired_at;    /* borrowed with leak_traceback: where (malloc'd), else NULL */
  int lent_to_tx;       /* borrowed by pool:begin/transaction for its transaction */
} conn_handle;         /* released to its pool: s == NULL && pool != NULL */

/* Where a statement runs and whom it reports to. */
typedef struct exec_target {
  session *s;
  pool_core *pool;      /* counters, or NULL */
  double slow_ms;
  double timeout;       /* client-side deadline per statement in seconds, 0 for none */
  int hooks;            /* stack index of the hooks table (logger, on_slow_query), or 0 */
} exec_target;

/* error.c */
int crpg_push_error(lua_State *L, error_kind kind, const char *message);        /* pushes nil, err; returns 2 */
void crpg_new_error(lua_State *L, error_kind kind, const char *message);        /* pushes err */
error_kind crpg_push_result_error(lua_State *L, const PGresult *r, const session *s); /* pushes err */
void crpg_open_error(lua_State *L);                                            /* module table on top */

/* params.c: encodes the n Lua values from index first. On success fills the
 * arrays and returns 0; on bad input pushes nil, err and returns -1. Up to
 * PARAMS_INLINE parameters live in the struct itself (no allocation on the hot
 * path); more live in a userdata left on the stack. Encoded strings stay on
 * the stack too, so the pointers hold until the caller's frame returns. */
#define PARAMS_INLINE 12
#define PARAM_NUMBUF 40
typedef struct param_set {
  int n;
  int arrays;                 /* how many are pg.array values */
  const char **values;
  int *lengths;
  int *formats;
  Oid *types;
  char (*numbers)[PARAM_NUMBUF];
  const char *inline_values[PARAMS_INLINE];
  int inline_lengths[PARAMS_INLINE], inline_formats[PARAMS_INLINE];
  Oid inline_types[PARAMS_INLINE];
  char inline_numbers[PARAMS_INLINE][PARAM_NUMBUF];
} param_set;
int crpg_encode_params(lua_State *L, int first, int n, param_set *ps);
/* 0 when sql uses exactly $1..$n; else pushes nil, err (invalid_input), -1. */
int crpg_check_param_count(lua_State *L, const char *sql, size_t len, int n);
/* Re-encodes the pg.array parameters whose element type (as the server
 * infers it for sql) separates elements with something else than ',' (box
 * uses ';'). 0, or -1 with nil, err pushed. */
int crpg_fix_array_delims(lua_State *L, session *s, const char *sql, size_t len, int first, param_set *ps);

/* json_value.c */
int crpg_json_encode(lua_State *L, int idx, strbuf *b, char *err, size_t errlen); /* 0 or -1 */
int crpg_json_decode(lua_State *L, const char *text, size_t len);               /* pushes value; 0 or -1 */

/* result.c: pushes the rows of r (with columns, affected_rows, command) and
 * returns 1, or pushes nil, err and returns 2 when a value cannot be decoded.
 * hooks: stack index of the executor's hooks table, or 0. Clears r. */
int crpg_push_result(lua_State *L, session *s, PGresult *r, int hooks);
/* The same without res.columns, affected_rows and command: for rows streamed
 * one result at a time (rows.c). */
int crpg_push_result_rows(lua_State *L, session *s, PGresult *r, int hooks);
/* 1 when a decoder is registered (for the executor whose hooks table is at
 * hooks, or 0, or for the module): results then stay in text. */
int crpg_decoders_registered(lua_State *L, int hooks);
void crpg_open_result(lua_State *L);        /* pg.register_type */

/* exec.c: runs one statement (params from index first, n of them; simple = 1
 * runs sql as a multi-statement script without parameters): encode, execute,
 * decode, count, notices, log, slow-query report. Pushes res or nil, err. */
int crpg_run(lua_State *L, exec_target *t, int sql_idx, int first, int n, int simple);
/* crpg_run in two steps, so that pool.c checks the parameters before it
 * takes a connection: encode_statement checks and encodes the n parameters
 * from first (0, or -1 with nil, err pushed); run_encoded runs them. */
int crpg_encode_statement(lua_State *L, int sql_idx, int first, int n, param_set *ps);
int crpg_run_encoded(lua_State *L, exec_target *t, int sql_idx, int first, param_set *ps, int simple);
/* When a passed deadline made the session give up (s->broken): pushes nil,
 * err (kind closed) and returns 2; else returns 0. */
int crpg_push_if_given_up(lua_State *L, const session *s);
/* Pushes the error object (kind timeout) for a statement cancelled after
 * timeout seconds by its client-side deadline (s->timed_out). */
void crpg_new_timeout_error(lua_State *L, const session *s, double timeout);
/* The statement at sql_idx: a string, or { sql = "...", timeout = seconds }
 * (timeout then overrides *timeout). Raises on misuse. */
const char *crpg_statement(lua_State *L, int sql_idx, size_t *len, double *timeout);
/* The bookkeeping after a statement that did not go through crpg_run (COPY,
 * pipelines, streams): counts it in the pool (failed_kind < 0: succeeded),
 * delivers notices, reports it when slow. Leaves the stack as it was. */
void crpg_after_statement(lua_State *L, exec_target *t, const char *sql, size_t sql_len, double ms,
                          int failed_kind, int hit);

/* conn.c */
conn_handle *crpg_check_conn(lua_State *L, int idx);
/* Pushes a new connection object borrowing s from pool; hooks (a stack index,
 * or 0) becomes its hooks table. */
conn_handle *crpg_push_borrowed_conn(lua_State *L, session *s, pool_core *pool, double slow_ms, int hooks);
void crpg_release_conn(conn_handle *h);     /* back to its pool, or closed */
void crpg_abandon_conn(conn_handle *h);     /* the same from a finalizer: no network wait */
void crpg_open_conn(lua_State *L);
/* Fills t for the open connection at idx; pushes its hooks table. */
void crpg_conn_target(lua_State *L, int idx, exec_target *t);

/* pool.c */
int crpg_pool_push_conn(lua_State *L, int idx);     /* pushes a borrowed conn (1) or nil, err (2) */
void crpg_open_pool(lua_State *L);

/* tx.c: module.c installs transaction and begin into the conn, pool and tx
 * metatables, so the executor types never name tx.c. */
int crpg_transaction(lua_State *L);         /* executor:transaction(fn, opts) */
int crpg_begin(lua_State *L);               /* executor:begin(opts) */
void crpg_open_tx(lua_State *L);
/* Pushes the connection object an executor (conn, pool or active tx at idx)
 * runs on. Returns 0 (its own or its transaction's connection), 1 (borrowed
 * from the pool for the caller, who releases it with crpg_release_conn), or
 * -1 with nil, err pushed instead (the pool could not lend one). */
int crpg_push_executor_conn(lua_State *L, int idx);

/* copy.c: executor:copy_in(sql, rows) */
int crpg_copy_in(lua_State *L);

/* rows.c: the rows iterator (coderunner.pg.rows): executor:rows(sql, ...),
 * executor:copy_out(sql [, opts]) */
int crpg_rows(lua_State *L);
int crpg_copy_out(lua_State *L);
void crpg_open_rows(lua_State *L);

/* pipeline.c: the pipeline (coderunner.pg.pipeline): executor:pipeline(fn),
 * executor:batch(list) */
int crpg_pipeline(lua_State *L);
int crpg_batch(lua_State *L);
void crpg_open_pipeline(lua_State *L);

/* notify.c: conn:listen(channel), conn:unlisten(channel), conn:wait_notification(timeout) */
void crpg_open_notify(lua_State *L);

#endif
