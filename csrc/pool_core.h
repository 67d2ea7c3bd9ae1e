/* The pool's thread-safe part: sessions behind a mutex, opened lazily up to
 * max, min kept warm by maintenance, idle ones above min closed after
 * idle_timeout, any older than max_lifetime retired, a dead idle one replaced
 * before anything runs on it; counters. Pure C on session.h, no Lua: one
 * pool_core may serve several Lua states of a process.
 *
 * Lifetime: a pool_core is reference counted. pool_core_new returns it with
 * one reference; each further holder calls pool_core_attach and, when done,
 * pool_core_detach. Every session it lent out also keeps it alive, so the
 * struct is freed when the last reference is dropped and no session is open.
 * All fields are guarded by one mutex; conninfo and the numeric settings are
 * immutable after pool_core_new. */
#ifndef CRPG_POOL_CORE_H
#define CRPG_POOL_CORE_H

#include <stddef.h>

#include "session.h"
#include "sqlstate.h"

/* What is reset before a session is lent again (pool_config.reset). */
enum { POOL_RESET_AUTO, POOL_RESET_ALWAYS, POOL_RESET_NEVER };

typedef struct pool_config {
  const char *conninfo;        /* keywords, URL, or "" for the PG* environment; copied */
  int min, max, cache_size;
  double idle_timeout, connect_timeout, acquire_timeout, max_lifetime;
  double slow_ms;              /* slow-query threshold, < 0 for none */
  double query_timeout;        /* client-side deadline per statement, 0 for none */
  int reset;                   /* POOL_RESET_*: DISCARD ALL before lending a session that
                                  ran anything that may change session state (auto), that
                                  ran anything (always), or never */
} pool_config;

/* A consistent snapshot of a pool's counters. */
typedef struct pool_stats {
  int total, idle, waiting, min, max;
  unsigned long long queries, slow_queries, errors[KIND_COUNT], opened, closed,
      acquire_timeouts, cache_hits, cache_misses;
  char last_error[256];        /* the last failure to connect, or "" */
  unsigned long long resets, leaks, connect_attempts;
  int connect_failures;        /* consecutive failures to connect */
  double connect_backoff;      /* seconds until the next connect attempt, 0 when none waits */
} pool_stats;

typedef struct pool_core pool_core;

/* The defaults of pg.pool{}. */
void pool_config_defaults(pool_config *c);

/* 0 when c is usable, else -1 with the reason in err. */
int pool_config_check(const pool_config *c, char *err, size_t errlen);

/* A new pool holding one reference, with min connections opened (failures
 * to connect are remembered in last_error, not fatal). NULL with err filled
 * when the config is invalid or memory ran out. */
pool_core *pool_core_new(const pool_config *c, char *err, size_t errlen);

/* Takes a reference. */
void pool_core_attach(pool_core *p);

/* Drops a reference; frees the pool once none is left and no session is open. */
void pool_core_detach(pool_core *p);

/* Takes a session: an idle one (checked alive), a new one while fewer than max
 * are open, or one released within acquire_timeout. Returns KIND_COUNT on
 * success, else the error kind (counted in the stats) with err filled in. */
error_kind pool_core_acquire(pool_core *p, session **out, char *err, size_t errlen);

/* The same within timeout seconds (infinite: wait as long as it takes);
 * count = 0 leaves a pool timeout uncounted (the caller tries again). */
error_kind pool_core_acquire_for(pool_core *p, double timeout, int count, session **out, char *err,
                                 size_t errlen);

/* Gives a session back: rolled back (bounded in time) if a transaction is
 * open, closed if it is broken, too old, or the pool is closed. A session
 * marked abandoned (from a finalizer) is parked without any I/O and rolled
 * back before it is lent again. Then, while fewer than min are open and no
 * connect backoff is running, opens one more: the pool refills by itself. */
void pool_core_release(pool_core *p, session *s);

/* The same from a finalizer: no network I/O (an open transaction is marked
 * for the rollback before the next lending; no refill). */
void pool_core_release_quiet(pool_core *p, session *s);

/* A lent session was collected without release: counts it and keeps where
 * it was taken (malloc'd, or NULL; the pool frees it) for the next report. */
void pool_core_note_leak(pool_core *p, char *where);

/* Takes one pending leak report: returns 1 and sets *where (malloc'd, the
 * caller frees it; NULL when not recorded), or 0 when none is pending. */
int pool_core_take_leak(pool_core *p, char **where);

/* Closes expired idle sessions, then opens sessions up to min. */
void pool_core_maintain(pool_core *p);

/* Marks the pool closed (acquire then fails with KIND_CLOSED), closes idle
 * sessions, and waits up to timeout seconds for busy ones to come back.
 * Returns how many are still open. Idempotent. */
int pool_core_close(pool_core *p, double timeout);

/* Counts one statement: failed_kind < 0 when it succeeded; kinds outside the
 * core's (>= KIND_COUNT) are not counted. */
void pool_core_count_query(pool_core *p, int failed_kind, int slow, int cache_hit);

/* pool_core_count_query for a statement run on s: when s is lent for that one
 * statement (s->count_at_release) and it succeeded, the counts are kept in s
 * and added under the release's lock, not a lock of their own. */
void pool_core_count(pool_core *p, session *s, int failed_kind, int slow, int cache_hit);

/* Fills out with a snapshot taken under the lock. */
void pool_core_stats(pool_core *p, pool_stats *out);

/* Immutable settings. */
double pool_core_slow_ms(const pool_core *p);
double pool_core_query_timeout(const pool_core *p);
const char *pool_core_conninfo(const pool_core *p);

#endif
