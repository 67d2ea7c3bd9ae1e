/* The statement engine below the executor types: crpg_run, the one path every
 * statement takes (encode parameters, execute, decode, count, deliver notices,
 * log, report slow queries). conn.c, pool.c and tx.c call it; it calls none
 * of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crpg.h"

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

/* Reads the statement at sql_idx: a string, or { sql = "...", timeout = s }
 * (a per-call deadline overriding the executor's). Raises on misuse. */
const char *crpg_statement(lua_State *L, int sql_idx, size_t *len, double *timeout) {
  const char *sql;
  if (!lua_istable(L, sql_idx)) return luaL_checklstring(L, sql_idx, len);
  lua_getfield(L, sql_idx, "timeout");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0))
      luaL_error(L, "statement option timeout must be a number >= 0 (seconds; 0 for none)");
    *timeout = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  lua_getfield(L, sql_idx, "sql");
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "statement table needs sql = \"...\"");
  sql = lua_tolstring(L, -1, len);
  lua_pop(L, 1); /* the table keeps the string alive */
  return sql;
}

int crpg_encode_statement(lua_State *L, int sql_idx, int first, int n, param_set *ps) {
  size_t sql_len;
  double timeout = 0;
  const char *sql = crpg_statement(L, sql_idx, &sql_len, &timeout); /* raises on misuse */
  if (crpg_check_param_count(L, sql, sql_len, n) || crpg_encode_params(L, first, n, ps)) return -1;
  return 0;
}

int crpg_run(lua_State *L, exec_target *t, int sql_idx, int first, int n, int simple) {
  param_set ps;
  if (simple) {
    size_t sql_len;
    double timeout = 0;
    (void)crpg_statement(L, sql_idx, &sql_len, &timeout); /* raises on misuse */
    memset(&ps, 0, sizeof ps); /* no parameters */
  } else if (crpg_encode_statement(L, sql_idx, first, n, &ps)) {
    return 2;
  }
  return crpg_run_encoded(L, t, sql_idx, first, &ps, simple);
}

int crpg_run_encoded(lua_State *L, exec_target *t, int sql_idx, int first, param_set *ps, int simple) {
  size_t sql_len;
  double timeout = t->timeout;
  const char *sql = crpg_statement(L, sql_idx, &sql_len, &timeout);
  session *s = t->s;
  PGresult *r;
  ExecStatusType st;
  double started, ms;
  int hit = 0, ok;
  error_kind kind = KIND_COUNT;

  if (memchr(sql, 0, sql_len)) return crpg_push_error(L, KIND_INVALID_INPUT, "SQL text contains a NUL byte");
  if (s->stream_open) session_settle(s); /* an abandoned rows iterator or COPY (bounded) */
  if (s->broken)
    return crpg_push_error(L, KIND_CLOSED, "connection was given up: a statement passed its deadline "
                                           "or an abandoned stream did not end in time");
  if (!simple && crpg_fix_array_delims(L, s, sql, sql_len, first, ps)) return 2;
  if (s->decoding) { /* a previous decode raised (out of memory) */
    PQclear(s->decoding);
    s->decoding = NULL;
  }
  if (simple) session_note_sql(s, sql, sql_len); /* session_exec notes its own */

  started = session_now();
  s->deadline = timeout > 0 ? started + timeout : 0;
  if (simple) {
    r = session_query(s, sql);
  } else {
    s->want_binary = !crpg_decoders_registered(L, t->hooks); /* registered decoders read text */
    r = session_exec(s, sql, sql_len, ps->n, ps->types, ps->values, ps->lengths, ps->formats, &hit);
  }
  s->deadline = 0;
  ms = (session_now() - started) * 1000.0;

  st = PQresultStatus(r);
  ok = r && !s->timed_out && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY);
  if (ok) {
    if (crpg_push_result(L, s, r, t->hooks) != 1) {
      ok = 0; /* a value that cannot be decoded: nil, err naming the column */
      kind = KIND_SERVER;
    }
  } else if (s->timed_out) {
    PQclear(r);
    s->timed_out = 0;
    lua_pushnil(L);
    crpg_new_timeout_error(L, s, timeout);
    kind = KIND_TIMEOUT;
  } else {
    if (r && (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)) {
      char *row;
      PQclear(r);
      if (st == PGRES_COPY_OUT) while (PQgetCopyData(s->pg, &row, 0) > 0) PQfreemem(row);
      else PQputCopyEnd(s->pg, "COPY is not supported by coderunner.pg");
      while ((r = PQgetResult(s->pg)) != NULL) PQclear(r);
      lua_pushnil(L);
      crpg_new_error(L, KIND_INVALID_INPUT, "COPY is not supported by query/exec");
      kind = KIND_INVALID_INPUT;
    } else {
      lua_pushnil(L);
      kind = crpg_push_result_error(L, r, s);
      PQclear(r);
    }
  }
  crpg_after_statement(L, t, sql, sql_len, ms, ok ? -1 : (int)kind, hit);
  return ok ? 1 : 2;
}

int crpg_push_if_given_up(lua_State *L, const session *s) {
  if (!s->broken) return 0;
  return crpg_push_error(L, KIND_CLOSED, "connection was given up: a statement passed its deadline "
                                         "and the server did not answer the cancel");
}

void crpg_new_timeout_error(lua_State *L, const session *s, double timeout) {
  char msg[160];
  snprintf(msg, sizeof msg, "statement cancelled after %g s (client-side timeout)%s", timeout,
           s->broken ? "; the server did not answer the cancel: connection given up" : "");
  crpg_new_error(L, KIND_TIMEOUT, msg);
}

void crpg_after_statement(lua_State *L, exec_target *t, const char *sql, size_t sql_len, double ms,
                          int failed_kind, int hit) {
  int top = lua_gettop(L);
  int slow = t->slow_ms >= 0 && ms >= t->slow_ms;
  if (t->pool) pool_core_count(t->pool, t->s, failed_kind, slow, hit);
  if (t->s->notices) deliver_notices(L, t);
  if (slow) report_slow(L, t, sql, sql_len, ms);
  lua_settop(L, top);
}
