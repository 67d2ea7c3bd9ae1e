/* Transactions (coderunner.pg.tx): BEGIN ... COMMIT on a connection, nested
 * ones as savepoints, the callback form with rollback on failure and retries
 * on serialization failures and deadlocks, and the manual form. */
#include <stdio.h>
#include <string.h>

#include "crpg.h"

typedef enum { TX_ACTIVE, TX_COMMITTED, TX_ROLLED_BACK } tx_state;

static const char *const state_names[] = {"active", "committed", "rolled_back"};

typedef struct tx_handle {
  conn_handle *conn;   /* kept alive by the uservalue's "conn" field */
  int depth;           /* 0: BEGIN/COMMIT; n > 0: the n-th savepoint level */
  int state;
  int owns_conn;       /* borrowed from a pool for this transaction: released at the end */
  unsigned long long id; /* the connection's transaction this handle belongs to */
  unsigned sp;         /* depth > 0: the savepoint's number (crpg_sp_<sp>) */
} tx_handle;

static tx_handle *to_tx(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CRPG_TX_MT);
}

/* 1 when tx's level is still open on its connection: same transaction, its
 * savepoint still on the connection's stack, nothing at or above it abandoned. */
static int is_live(const tx_handle *tx) {
  const session *s = tx->conn->s;
  if (tx->state != TX_ACTIVE || !s || s->tx_id != tx->id) return 0;
  if (s->abandoned >= 0 && tx->depth >= s->abandoned) return 0;
  return tx->depth == 0 || (tx->depth <= s->sp_top && s->sp_ids[tx->depth] == tx->sp);
}

/* Raises unless the tx at idx is open; first cleans what a collected inner
 * level left (bounded in time). */
static tx_handle *check_active(lua_State *L, int idx) {
  tx_handle *tx = to_tx(L, idx);
  session *s;
  if (tx->state != TX_ACTIVE) luaL_error(L, "transaction is already %s", state_names[tx->state]);
  s = tx->conn->s;
  if (!s) luaL_error(L, "transaction's connection is closed");
  if (!is_live(tx))
    luaL_error(L, tx->depth ? "savepoint is no longer open: an enclosing level ended it"
                            : "transaction is no longer open on its connection");
  if (s->abandoned >= 0) (void)session_settle_tx(s, SESSION_SETTLE_TIMEOUT); /* a failure marks s broken */
  return tx;
}

/* check_active, and the server must still be inside the transaction (a
 * COMMIT or ROLLBACK sent as SQL would let statements run outside it). */
static tx_handle *check_usable(lua_State *L, int idx) {
  tx_handle *tx = check_active(L, idx);
  if (PQtransactionStatus(tx->conn->s->pg) == PQTRANS_IDLE && !session_is_broken(tx->conn->s))
    luaL_error(L, "transaction was ended by a COMMIT or ROLLBACK sent as SQL; use tx:commit() or tx:rollback()");
  return tx;
}

/* Fills t for statements on the tx at idx; pushes the hooks table. */
static void tx_target(lua_State *L, int idx, tx_handle *tx, exec_target *t) {
  t->s = tx->conn->s;
  t->pool = tx->conn->pool;
  t->slow_ms = tx->conn->slow_ms;
  t->timeout = tx->conn->timeout;
  crpg_getuservalue(L, idx);      /* { conn =, parent = } */
  lua_getfield(L, -1, "conn");
  crpg_getuservalue(L, -1);       /* the connection's hooks */
  lua_replace(L, -3);
  lua_pop(L, 1);
  t->hooks = lua_gettop(L);
}

/* Runs a control statement (no parameters) on the tx; 0 (the result's
 * command tag copied into tag when given), or -1 with err pushed. */
static int run_control(lua_State *L, int idx, tx_handle *tx, const char *sql, char *tag, size_t taglen) {
  exec_target t;
  int top = lua_gettop(L), n;
  if (session_is_broken(tx->conn->s)) {
    crpg_new_error(L, KIND_CLOSED, "connection was given up: a cancel or cleanup did not finish in time");
    return -1;
  }
  tx_target(L, idx, tx, &t);
  lua_pushstring(L, sql);
  n = crpg_run(L, &t, lua_gettop(L), 0, 0, 1);
  if (n == 1) {
    if (tag) {
      lua_getfield(L, -1, "command");
      snprintf(tag, taglen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
    }
    lua_settop(L, top);
    return 0;
  }
  lua_replace(L, top + 1);  /* the error object */
  lua_settop(L, top + 1);
  return -1;
}

/* Pushes a server-kind error with sqlstate state. */
static void new_tx_error(lua_State *L, const char *state, const char *message) {
  crpg_new_error(L, KIND_SERVER, message);
  lua_pushstring(L, state);
  lua_setfield(L, -2, "sqlstate");
}

/* Marks tx ended and gives a connection borrowed for it back to its pool. */
static void tx_done(tx_handle *tx, int state) {
  tx->state = state;
  if (tx->owns_conn) crpg_release_conn(tx->conn); /* rolls back whatever is left open */
}

/* Ends the transaction at idx. Returns 0, or -1 with an error object pushed.
 * COMMIT succeeds only when the server says it committed this transaction. */
static int tx_end(lua_State *L, int idx, int commit) {
  tx_handle *tx = check_active(L, idx);
  session *s = tx->conn->s;
  char sql[160], name[32], tag[32] = "";
  int rc;
  PGTransactionStatusType ts = PQtransactionStatus(s->pg);

  if (ts == PQTRANS_IDLE && !session_is_broken(s)) {
    /* someone sent COMMIT or ROLLBACK as SQL: this handle cannot vouch for it */
    session_tx_reset(s);
    tx_done(tx, TX_ROLLED_BACK);
    new_tx_error(L, "25P01", "transaction was already ended by a COMMIT or ROLLBACK sent as SQL");
    return -1;
  }
  if (commit && ts == PQTRANS_INERROR) {
    /* COMMIT would quietly roll back: say so instead */
    if (tx_end(L, idx, 0) != 0) return -1;
    new_tx_error(L, "25P02", "transaction rolled back: a statement in it failed");
    return -1;
  }
  if (tx->depth == 0) {
    snprintf(sql, sizeof sql, commit ? "COMMIT" : "ROLLBACK");
  } else {
    session_savepoint_name(name, sizeof name, tx->sp);
    if (commit) snprintf(sql, sizeof sql, "RELEASE SAVEPOINT %s", name);
    else snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT %s; RELEASE SAVEPOINT %s", name, name);
  }
  rc = run_control(L, idx, tx, sql, tag, sizeof tag);
  if (rc == 0 && commit && tx->depth == 0 && strcmp(tag, "COMMIT") != 0) {
    /* the server answered ROLLBACK: nothing was stored */
    new_tx_error(L, "25P02", "transaction rolled back by the server instead of committing");
    rc = -1;
  }
  if (tx->depth == 0) session_tx_reset(s);
  else if (s->sp_top >= tx->depth) s->sp_top = tx->depth - 1; /* inner levels end with it */
  tx_done(tx, commit && rc == 0 ? TX_COMMITTED : TX_ROLLED_BACK);
  return rc;
}

static const char *isolation_sql(lua_State *L, int opts) {
  static const char *const names[] = {"read committed", "repeatable read", "serializable",
                                      "read uncommitted", NULL};
  static const char *const sql[] = {" ISOLATION LEVEL READ COMMITTED", " ISOLATION LEVEL REPEATABLE READ",
                                    " ISOLATION LEVEL SERIALIZABLE", " ISOLATION LEVEL READ UNCOMMITTED"};
  const char *v;
  int i;
  lua_getfield(L, opts, "isolation");
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return ""; }
  v = lua_tostring(L, -1);
  for (i = 0; v && names[i]; i++) {
    char alt[32];
    size_t k;
    snprintf(alt, sizeof alt, "%s", names[i]);
    for (k = 0; alt[k]; k++) if (alt[k] == ' ') alt[k] = '_';
    if (strcmp(v, names[i]) == 0 || strcmp(v, alt) == 0) { lua_pop(L, 1); return sql[i]; }
  }
  luaL_error(L, "unknown isolation level (use \"read committed\", \"repeatable read\" or \"serializable\")");
  return "";
}

static int opt_flag(lua_State *L, int opts, const char *key) {
  int v;
  lua_getfield(L, opts, key);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Raises unless opts.settings is absent or maps strings to strings, numbers
 * or booleans. */
static void check_settings(lua_State *L, int opts) {
  lua_getfield(L, opts, "settings");
  if (!lua_isnil(L, -1)) {
    int t = lua_gettop(L);
    if (!lua_istable(L, t)) luaL_error(L, "transaction option settings must be a table");
    lua_pushnil(L);
    while (lua_next(L, t)) {
      int vt = lua_type(L, -1);
      if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "settings keys must be strings");
      if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN)
        luaL_error(L, "settings values must be strings, numbers or booleans");
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* Applies opts.settings with set_config(name, value, true). 0 or -1 with err pushed. */
static int apply_settings(lua_State *L, int tx_idx, tx_handle *tx, int opts) {
  int top = lua_gettop(L);
  lua_getfield(L, opts, "settings");
  if (lua_isnil(L, -1)) { lua_settop(L, top); return 0; }
  lua_pushnil(L);
  while (lua_next(L, top + 1)) {
    exec_target t;
    int base = lua_gettop(L);     /* key at base - 1, value at base */
    tx_target(L, tx_idx, tx, &t);
    lua_pushliteral(L, "SELECT set_config($1, $2, true)");
    lua_pushvalue(L, base - 1);
    if (lua_type(L, base) == LUA_TBOOLEAN) {
      lua_pushstring(L, lua_toboolean(L, base) ? "on" : "off");
    } else {
      lua_pushvalue(L, base);
      lua_tostring(L, -1); /* a number becomes its text */
    }
    if (crpg_run(L, &t, base + 2, base + 3, 2, 0) != 1) {
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      return -1;
    }
    lua_settop(L, base - 1);
  }
  lua_settop(L, top);
  return 0;
}

/* Starts a transaction on the executor at self (pool, conn or tx) with the
 * options table at opts (or 0). Pushes the tx (returns 1) or nil, err (2).
 * A connection holds at most one transaction: a second begin raises. */
static int start(lua_State *L, int self, int opts) {
  tx_handle *parent = luaL_testudata(L, self, CRPG_TX_MT);
  int top = lua_gettop(L), conn_idx, tx_idx;
  char sql[160], name[32];
  unsigned sp = 0;
  tx_handle *tx;
  session *s;

  if (parent) {
    s = check_usable(L, self)->conn->s;
    if (parent->depth != s->sp_top) luaL_error(L, "a savepoint is already open inside this transaction level");
    if (s->sp_top >= SESSION_MAX_SAVEPOINTS) luaL_error(L, "savepoints nested too deeply");
    sp = ++s->sp_next;
    session_savepoint_name(name, sizeof name, sp);
    snprintf(sql, sizeof sql, "SAVEPOINT %s", name);
  } else {
    /* options are checked (and may raise) before a connection is taken */
    snprintf(sql, sizeof sql, "BEGIN%s%s%s", opts ? isolation_sql(L, opts) : "",
             opts && opt_flag(L, opts, "read_only") ? " READ ONLY" : "",
             opts && opt_flag(L, opts, "deferrable") ? " DEFERRABLE" : "");
    if (opts) check_settings(L, opts);
  }
  if (parent) {
    crpg_getuservalue(L, self);
    lua_getfield(L, -1, "conn");
    lua_remove(L, -2);
  } else if (luaL_testudata(L, self, CRPG_POOL_MT)) {
    if (crpg_pool_push_conn(L, self) != 1) return 2;
  } else {
    s = crpg_check_conn(L, self)->s;
    if (s->abandoned >= 0 && session_settle_tx(s, SESSION_SETTLE_TIMEOUT) != 0)
      return crpg_push_error(L, KIND_CLOSED, "connection was given up: cleaning a collected transaction did not finish in time");
    if (s->tx_id)
      luaL_error(L, s->tx_owner == (const void *)L
                        ? "connection already has an open transaction (one transaction per connection)"
                        : "connection is busy in a transaction of another coroutine");
    if (PQtransactionStatus(s->pg) == PQTRANS_INTRANS || PQtransactionStatus(s->pg) == PQTRANS_INERROR)
      luaL_error(L, "connection is inside a transaction begun with SQL; end it first");
    lua_pushvalue(L, self);
  }
  conn_idx = lua_gettop(L);

  tx = lua_newuserdatauv(L, sizeof *tx, 1);
  tx->conn = luaL_checkudata(L, conn_idx, CRPG_CONN_MT);
  tx->depth = parent ? parent->depth + 1 : 0;
  tx->state = TX_ROLLED_BACK; /* until BEGIN succeeds */
  tx->owns_conn = !parent && luaL_testudata(L, self, CRPG_POOL_MT) != NULL;
  if (tx->owns_conn) tx->conn->lent_to_tx = 1;
  tx->id = parent ? parent->id : 0;
  tx->sp = sp;
  luaL_getmetatable(L, CRPG_TX_MT);
  lua_setmetatable(L, -2);
  tx_idx = lua_gettop(L);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, conn_idx);
  lua_setfield(L, -2, "conn");
  if (parent) {
    lua_pushvalue(L, self);
    lua_setfield(L, -2, "parent");
  }
  crpg_setuservalue(L, tx_idx);

  if (run_control(L, tx_idx, tx, sql, NULL, 0) != 0) {
    if (tx->owns_conn) crpg_release_conn(tx->conn);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  s = tx->conn->s;
  if (parent) {
    s->sp_ids[++s->sp_top] = sp;
  } else {
    session_tx_reset(s);
    s->tx_id = tx->id = ++s->tx_next;
    s->tx_owner = L;
  }
  tx->state = TX_ACTIVE;
  if (opts && apply_settings(L, tx_idx, tx, opts) != 0) {
    int err = lua_gettop(L);
    if (tx_end(L, tx_idx, 0) != 0) lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushvalue(L, err);
    return 2;
  }
  lua_settop(L, tx_idx);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 1;
}

/* True when the value at idx is an error object for a serialization failure
 * or a deadlock: the whole transaction may succeed if run again. */
static int retryable(lua_State *L, int idx) {
  int yes;
  if (!lua_istable(L, idx)) return 0;
  lua_getfield(L, idx, "sqlstate");
  yes = lua_type(L, -1) == LUA_TSTRING && sqlstate_lookup(lua_tostring(L, -1), NULL).retryable;
  lua_pop(L, 1);
  return yes;
}

/* executor:transaction(fn [, opts]) -> fn's results (true when none) | nil, err
 * Runs fn(tx) inside BEGIN/COMMIT (a SAVEPOINT when executor is a tx). Rolls
 * back when fn raises or returns nil, err, and returns nil, err. opts:
 * isolation, read_only, deferrable, settings, retries (re-run on 40001/40P01). */
int crpg_transaction(lua_State *L) {
  int opts = lua_isnoneornil(L, 3) ? 0 : 3, attempt, retries = 0;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (opts) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "retries");
    retries = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
  }
  if (luaL_testudata(L, 1, CRPG_TX_MT)) retries = 0; /* a savepoint cannot be retried alone */
  for (attempt = 0;; attempt++) {
    int tx_idx, status, nres, err = 0;
    tx_handle *tx;
    lua_settop(L, 3);
    if (start(L, 1, opts) != 1) return 2;
    tx_idx = lua_gettop(L);
    tx = to_tx(L, tx_idx);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, tx_idx);
    status = lua_pcall(L, 1, LUA_MULTRET, 0);
    nres = lua_gettop(L) - tx_idx;
    if (status != 0) err = tx_idx + 1;
    else if (nres >= 2 && lua_isnil(L, tx_idx + 1) && !lua_isnil(L, tx_idx + 2)) err = tx_idx + 2;
    if (err) {
      if (is_live(tx)) {
        if (tx_end(L, tx_idx, 0) != 0) lua_pop(L, 1);
      } else if (tx->state == TX_ACTIVE) {
        tx_done(tx, TX_ROLLED_BACK);
      }
      if (attempt < retries && retryable(L, err)) continue;
      lua_pushnil(L);
      lua_pushvalue(L, err);
      return 2;
    }
    if (tx->state == TX_ACTIVE && !is_live(tx)) {
      /* fn ended an enclosing level (or the connection): nothing to commit here */
      tx_done(tx, TX_ROLLED_BACK);
      lua_pushnil(L);
      new_tx_error(L, "25P01", tx->depth ? "savepoint was ended by an enclosing level before fn returned"
                                         : "transaction was ended before fn returned");
      return 2;
    }
    if (tx->state == TX_ACTIVE && tx_end(L, tx_idx, 1) != 0) {
      if (attempt < retries && retryable(L, -1)) continue;
      lua_pushnil(L);
      lua_insert(L, -2);
      return 2;
    }
    if (nres == 0) {
      lua_pushboolean(L, 1);
      return 1;
    }
    return nres;
  }
}

/* executor:begin([opts]) -> tx | nil, err   (tx:commit() / tx:rollback() end it) */
int crpg_begin(lua_State *L) {
  int opts = lua_isnoneornil(L, 2) ? 0 : 2;
  if (opts) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  return start(L, 1, opts);
}

int crpg_push_executor_conn(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (luaL_testudata(L, idx, CRPG_TX_MT)) {
    check_active(L, idx);
    crpg_getuservalue(L, idx);
    lua_getfield(L, -1, "conn");
    lua_remove(L, -2);
    return 0;
  }
  if (luaL_testudata(L, idx, CRPG_POOL_MT)) return crpg_pool_push_conn(L, idx) == 1 ? 1 : -1;
  crpg_check_conn(L, idx);
  lua_pushvalue(L, idx);
  return 0;
}

/* tx:query(sql, ...) -> res | nil, err */
static int tx_query(lua_State *L) {
  tx_handle *tx = check_usable(L, 1);
  int n = lua_gettop(L) - 2;
  exec_target t;
  tx_target(L, 1, tx, &t); /* hooks pushed above the parameters */
  return crpg_run(L, &t, 2, 3, n < 0 ? 0 : n, 0);
}

/* tx:exec(script) -> res | nil, err */
static int tx_exec(lua_State *L) {
  tx_handle *tx = check_usable(L, 1);
  exec_target t;
  lua_settop(L, 2);
  tx_target(L, 1, tx, &t);
  return crpg_run(L, &t, 2, 0, 0, 1);
}

static int finish(lua_State *L, int commit) {
  lua_settop(L, 1);
  if (tx_end(L, 1, commit) != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* tx:commit() -> true | nil, err */
static int tx_commit(lua_State *L) { return finish(L, 1); }

/* tx:rollback() -> true | nil, err */
static int tx_rollback(lua_State *L) { return finish(L, 0); }

/* tx:status() -> "active" | "committed" | "rolled_back" | "ended"
 * ("ended": an enclosing level or the connection ended it first) */
static int tx_status(lua_State *L) {
  tx_handle *tx = to_tx(L, 1);
  lua_pushstring(L, tx->state == TX_ACTIVE && !is_live(tx) ? "ended" : state_names[tx->state]);
  return 1;
}

/* Collected while open: no network I/O here (any allocation may run the GC,
 * and a server that does not answer would freeze it). The level is marked
 * abandoned on its connection, which rolls it back, bounded in time, at its
 * next use; a connection borrowed for it goes back to its pool, which rolls
 * back or discards it before lending it again. */
static int tx_gc(lua_State *L) {
  tx_handle *tx = to_tx(L, 1);
  session *s = tx->conn->s;
  if (tx->state != TX_ACTIVE) return 0;
  if (is_live(tx) && (s->abandoned < 0 || tx->depth < s->abandoned)) s->abandoned = tx->depth;
  tx->state = TX_ROLLED_BACK;
  if (tx->owns_conn) crpg_abandon_conn(tx->conn);
  return 0;
}

/* <close> (Lua 5.4): a transaction still open at the end of its block rolls back. */
static int tx_close(lua_State *L) {
  tx_handle *tx = to_tx(L, 1);
  lua_settop(L, 1);
  if (is_live(tx)) {
    if (tx_end(L, 1, 0) != 0) lua_pop(L, 1);
  } else if (tx->state == TX_ACTIVE) {
    tx_done(tx, TX_ROLLED_BACK);
  }
  return 0;
}

static int tx_tostring(lua_State *L) {
  tx_handle *tx = to_tx(L, 1);
  if (tx->depth) {
    char name[32];
    session_savepoint_name(name, sizeof name, tx->sp);
    lua_pushfstring(L, "%s (%s, depth %d, savepoint %s)", CRPG_TX_MT, state_names[tx->state], tx->depth, name);
  } else {
    lua_pushfstring(L, "%s (%s, depth %d)", CRPG_TX_MT, state_names[tx->state], tx->depth);
  }
  return 1;
}

void crpg_open_tx(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"query", tx_query},
    {"exec", tx_exec},
    {"commit", tx_commit},
    {"rollback", tx_rollback},
    {"status", tx_status},
    {NULL, NULL},
  };
  static const luaL_Reg metamethods[] = {
    {"__gc", tx_gc},
    {"__close", tx_close},
    {"__tostring", tx_tostring},
    {NULL, NULL},
  };
  crpg_new_type(L, CRPG_TX_MT, methods, metamethods);
}
