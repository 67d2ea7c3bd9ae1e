/* One libpq connection with its prepared-statement cache and pending notices.
 * Pure C on libpq, no Lua: the pool shares sessions between Lua states, so a
 * session must never point into one. */
#ifndef CRPG_SESSION_H
#define CRPG_SESSION_H

#include <stddef.h>
#include <libpq-fe.h>

#include "pgtype.h"

#define SESSION_MAX_SAVEPOINTS 64
/* Seconds that cleaning what a collected transaction left may take. */
#define SESSION_SETTLE_TIMEOUT 5.0

/* A prepared statement, keyed by its SQL text and the parameter types it was
 * prepared with: the same text with other parameter types is another entry. */
typedef struct stmt_entry {
  unsigned long long hash;         /* over the text and the types */
  char *sql;
  size_t len;
  Oid *types;                      /* nparams types (0: the server infers it) */
  int nparams;
  Oid *described;                  /* the server's parameter types, once asked, else NULL */
  int result_format;               /* >0: every result column may come in binary, at this
                                    * level (BINARY_* in binary.h); 0: text; -1: not
                                    * described yet */
  unsigned long long last_used;
  unsigned id;                     /* prepared as "crpg_<id>" */
  char name[16];                   /* "crpg_<id>", formatted once */
  int dirty_sql;                   /* session_note_sql's verdict on the text; -1: not asked yet */
} stmt_entry;

typedef struct notice {
  struct notice *next;
  char severity[16];               /* NOTICE, WARNING, ... (not localized) */
  char message[1];                 /* NUL-terminated, allocated to fit */
} notice;

typedef struct session {
  PGconn *pg;
  double created_at;               /* monotonic seconds */
  double idle_since;               /* monotonic seconds, set when parked idle */
  struct session *next;            /* the pool's idle list */
  PGresult *decoding;              /* result being turned into Lua values; freed if that raised */
  /* prepared-statement cache, LRU by last_used */
  stmt_entry *cache;
  int cache_size, cache_count;
  unsigned long long tick;
  unsigned next_stmt_id;
  unsigned long long cache_hits, cache_misses, cache_replans;
  int want_binary;                 /* set by the caller: cached statements whose columns
                                    * allow it return binary results */
  unsigned long long binary_results;  /* results that came in binary */
  /* notices received since the last drain, oldest first */
  notice *notices, *notices_tail;
  int notice_count;
  int fatal_seen;                  /* a FATAL arrived while idle: the backend is gone */
  /* a statement whose results are read a piece at a time (rows iterator,
   * COPY TO STDOUT) is still open; session_settle ends it before the next use */
  int stream_open;
  unsigned stream_gen;             /* bumped each time a stream ends */
  pgtype_cache types;              /* pg_type facts for OIDs outside the built-in list */
  /* client-side deadline of the statement in flight (see session_query) */
  double deadline;                 /* monotonic seconds; 0: none */
  int timed_out;                   /* the last statement passed its deadline and was cancelled */
  double cancel_until;             /* after timed_out: end of the grace for the cancel (session_wait) */
  int broken;                      /* unusable: a cancel or a cleanup did not finish in time */
  /* transactions (tx.c): at most one open per connection, with its savepoints */
  unsigned long long tx_id;        /* the open transaction, 0 when none */
  unsigned long long tx_next;      /* last transaction id handed out */
  const void *tx_owner;            /* the coroutine (lua_State) that began it */
  int sp_top;                      /* savepoints open in it: sp_ids[1..sp_top] */
  unsigned sp_ids[SESSION_MAX_SAVEPOINTS + 1];
  unsigned sp_next;                /* savepoint names are crpg_sp_<n>, never reused */
  int abandoned;                   /* depth of a level collected while open (roll back at next use), -1 none */
  /* lending (the pool): what a borrower may have left in the session */
  int used;                        /* ran a statement since the last reset */
  int dirty;                       /* ran something that may change session state (see session_note_sql) */
  int count_at_release;            /* lent for one statement: its pool counts wait for the release */
  unsigned pend_queries, pend_slow, pend_hits;  /* those counts (pool_core_count) */
  unsigned long long cancel_token; /* for session_cancel_token (0: none) */
} session;

/* Monotonic clock in seconds. */
double session_now(void);

/* Connects (conninfo: keywords, URL, or "" for the PG* environment) within
 * timeout seconds. Returns a session, or NULL with a message in err (never
 * containing the password) and *timed_out set when the deadline passed. */
session *session_open(const char *conninfo, double timeout, int cache_size,
                      char *err, size_t errlen, int *timed_out);

/* 0 when libpq can parse conninfo and reads its password where the
 * redactor masks it; else -1 with a message in err that holds no part of the
 * password (libpq's own message has its quoted text masked). */
int session_check_conninfo(const char *conninfo, char *err, size_t errlen);

/* Closes the connection and frees everything. NULL is fine. */
void session_close(session *s);

/* Runs sql with text (or, where formats[i] is 1, binary) parameters through
 * the statement cache, re-preparing once when the server reports a stale or
 * missing plan and no transaction was open. Returns libpq's result (NULL only
 * when out of memory); *cache_hit tells whether a cached statement was used.
 * Notes the SQL as session_note_sql does (scanning a cached text only once). */
PGresult *session_exec(session *s, const char *sql, size_t sql_len, int nparams,
                       const Oid *types, const char *const *values,
                       const int *lengths, const int *formats, int *cache_hit);

/* Runs sql (one or several statements, no parameters) as PQexec does, but
 * within s->deadline: when it passes, the server's work is cancelled, the
 * result drained, s->timed_out set, and a FATAL_ERROR result returned (the
 * connection is then usable, or marked broken when the cancel did not finish
 * within a grace period). Returns NULL only when out of memory. */
PGresult *session_query(session *s, const char *sql);

/* For statements whose results are read piece by piece (rows, COPY,
 * pipelines): waits until the socket is readable (writing: or writable),
 * then reads what arrived, within s->deadline (0: none). When the deadline
 * passes, sets s->timed_out and asks the server to cancel (again each
 * quarter second while nothing arrives, for a pipeline's next statement),
 * and keeps waiting until a grace period ends; then gives the connection up
 * (s->broken). Returns 0 when something can be read (or written), -1 when
 * the connection is given up or lost. */
int session_wait(session *s, int writing);

/* PQgetResult that waits with session_wait first: NULL at the end of the
 * statement's results, or when the connection was given up or lost
 * (session_is_broken tells). */
PGresult *session_get_result(session *s);

/* Collects the results of a statement just sent (sent: PQsend*'s result)
 * as session_query does, within s->deadline. The caller sent it in
 * non-blocking mode. */
PGresult *session_finish(session *s, int sent);

/* Name of savepoint number id ("crpg_sp_<id>"). */
void session_savepoint_name(char *buf, size_t n, unsigned id);

/* Forgets the transaction bookkeeping (after the transaction ended). */
void session_tx_reset(session *s);

/* Cleans what an abandoned transaction left (ROLLBACK, or ROLLBACK TO the
 * abandoned savepoint) within timeout seconds. 0 when the connection is clean
 * (or was), -1 when the cleanup failed: the connection is then broken. */
int session_settle_tx(session *s, double timeout);

/* Folds a libpq message to one line in place: trailing newlines go, a
 * continuation line ("\n\tIs the server running...") joins with a space,
 * another line with "; ". */
void session_one_line(char *msg);

/* Notes that sql is about to run: sets s->used, and s->dirty when it may
 * leave session state behind (SET, RESET, LISTEN, PREPARE, DECLARE, LOAD,
 * DISCARD, DO, CALL as a statement; set_config, session advisory locks,
 * temporary tables, dblink anywhere). Conservative and cheap: a scan of the
 * text, no parsing. */
void session_note_sql(session *s, const char *sql, size_t len);

/* DISCARD ALL within timeout seconds (outside a transaction), then forgets
 * the statement cache (the server dropped those statements). 0, or -1 when it
 * failed: the connection is then broken. */
int session_reset(session *s, double timeout);

/* Asks the server to cancel what the connection with this token runs; safe
 * from any thread, after the session closed too. Returns 1 when the request
 * was delivered, 0 when no open connection has that token, -1 on failure
 * (err filled in). */
int session_cancel_token(unsigned long long token, char *err, size_t errlen);

/* For a statement sent in pipeline mode, where nothing may wait for a
 * round trip: writes the cached statement's name for sql into name and
 * returns 1; or adds a new entry, writes its name and returns 2 (the caller
 * sends PQsendPrepare(name, ...) before executing it); or returns 0 when the
 * statement must run unnamed (cache off, or full: evicting would need a
 * DEALLOCATE round trip). */
int session_pipeline_name(session *s, const char *sql, size_t len, int nparams, const Oid *types,
                          char *name, size_t namelen);

/* Forgets the cache entry called name without telling the server (its
 * pipelined prepare failed, or its plan went stale). */
void session_pipeline_forget(session *s, const char *name);

/* The types the server gives the parameters of sql prepared with types
 * (prepares it through the cache like session_exec, and asks once per entry).
 * Fills out[0..nparams). Returns NULL, or the failed result (the caller
 * clears it). */
PGresult *session_param_types(session *s, const char *sql, size_t sql_len, int nparams,
                              const Oid *types, Oid *out);

/* Liveness check for an idle connection, without a round trip: 0 when usable,
 * -1 when the server already closed or terminated it. */
int session_check_idle(session *s);

/* 1 when libpq considers the connection lost. */
int session_is_broken(const session *s);

/* Detaches and returns the pending notices (the caller frees each with free). */
notice *session_take_notices(session *s);

/* Ends an open stream (stream_open) so the connection can run the next
 * statement: reads what already arrived; if the statement is still running,
 * asks the server to cancel it (PQcancel, on its own short connection), then
 * reads and drops the remaining results, and leaves COPY or pipeline mode. */
void session_settle(session *s);

/* Forgets every cached statement (after DISCARD ALL, say). */
void session_cache_clear(session *s);

#endif
