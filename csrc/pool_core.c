/* The pool's thread-safe part (see pool_core.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool_core.h"

#define LEAK_REPORTS 16
/* Connect backoff: BACKOFF_BASE after the first failure, doubling, at most BACKOFF_CAP. */
#define BACKOFF_BASE 0.05
#define BACKOFF_CAP 2.0
/* How long DISCARD ALL before lending may take. */
#define RESET_TIMEOUT 5.0

struct pool_core {
  pthread_mutex_t mu;
  pthread_cond_t cv;           /* signalled when a session is released or closed */
  int refs;                    /* holders (Lua pool objects); see pool_core_attach */
  char *conninfo;
  int min, max, cache_size;
  double idle_timeout, connect_timeout, acquire_timeout, max_lifetime, slow_ms, query_timeout;
  int reset;                   /* POOL_RESET_* */
  session *idle;               /* most recently used first */
  int n_idle;
  int n_total;                 /* open or being opened, idle or busy */
  int n_waiting;
  int closed;
  unsigned long long queries, slow_queries, errors[KIND_COUNT], opened, closed_count,
      acquire_timeouts, cache_hits, cache_misses;
  char last_error[256];
  /* connect backoff: after n consecutive failures, no attempt before backoff_until */
  int connect_failures;
  double backoff_until;
  unsigned long long connect_attempts, resets, leaks;
  char *leak_where[LEAK_REPORTS];  /* pending leak reports (where, or NULL) */
  int n_leak_reports;
  double next_reap;            /* no idle session can expire before this (reap_locked) */
};

static void core_free(pool_core *p) {
  int i;
  for (i = 0; i < p->n_leak_reports; i++) free(p->leak_where[i]);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p->conninfo);
  free(p);
}

/* Unlocks, and frees the pool when nothing refers to it any more. */
static void unlock_and_maybe_free(pool_core *p) {
  int done = p->refs == 0 && p->n_total == 0;
  pthread_mutex_unlock(&p->mu);
  if (done) core_free(p);
}

/* Closes a session the pool counted, outside the lock. */
static void discard(pool_core *p, session *s) {
  session_close(s);
  pthread_mutex_lock(&p->mu);
  p->n_total--;
  p->closed_count++;
  pthread_cond_broadcast(&p->cv);
  unlock_and_maybe_free(p);
}

static void discard_list(pool_core *p, session *list) {
  while (list) {
    session *next = list->next;
    discard(p, list);
    list = next;
  }
}

/* Moves idle sessions past idle_timeout (while more than min are open) or past
 * max_lifetime out of the idle list; returns them for discard after unlocking. */
static session *reap_locked(pool_core *p, double now) {
  session **link = &p->idle, *doomed = NULL;
  int open = p->n_total;
  double next = 1e300;
  if (!p->closed && now < p->next_reap) return NULL; /* nothing due yet: no walk */
  while (*link) {
    session *s = *link;
    int expired = p->max_lifetime > 0 && now - s->created_at >= p->max_lifetime;
    int idle_too_long = open > p->min && now - s->idle_since >= p->idle_timeout;
    if (expired || idle_too_long || p->closed) {
      *link = s->next;
      s->next = doomed;
      doomed = s;
      p->n_idle--;
      open--;
    } else {
      /* when it may expire; one kept only for min waits for n_total to grow */
      if (p->max_lifetime > 0 && s->created_at + p->max_lifetime < next) next = s->created_at + p->max_lifetime;
      if (s->idle_since + p->idle_timeout > now && s->idle_since + p->idle_timeout < next)
        next = s->idle_since + p->idle_timeout;
      link = &s->next;
    }
  }
  p->next_reap = next;
  return doomed;
}

/* Parks s on the idle list (locked), keeping next_reap true. */
static void park_locked(pool_core *p, session *s) {
  double due = s->idle_since + p->idle_timeout;
  if (p->max_lifetime > 0 && s->created_at + p->max_lifetime < due) due = s->created_at + p->max_lifetime;
  if (due < p->next_reap) p->next_reap = due;
  s->next = p->idle;
  p->idle = s;
  p->n_idle++;
}

/* n_total grew: an idle session kept only for min may now be due. */
static void grew_locked(pool_core *p) { p->next_reap = 0; }

static void deadline_ts(struct timespec *ts, double deadline) {
  double whole = (double)(long long)deadline;
  ts->tv_sec = (time_t)whole;
  ts->tv_nsec = (long)((deadline - whole) * 1e9);
}

/* Waits on cv (mu held) until signalled or the deadline (monotonic seconds)
 * passes; a deadline that is infinite (or absurdly far) waits untimed, so a
 * huge timeout never overflows the timespec. Returns ETIMEDOUT once the
 * deadline passed; never EINVAL (which would make callers spin). */
static int wait_until(pool_core *p, double deadline) {
  struct timespec ts;
  int rc;
  if (!(deadline < session_now() + 1e9)) return pthread_cond_wait(&p->cv, &p->mu);
  deadline_ts(&ts, deadline);
  rc = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
  return rc == EINVAL ? ETIMEDOUT : rc;
}

/* Records the outcome of a connect attempt (mu held). */
static void note_connect_locked(pool_core *p, session *s, const char *msg) {
  p->connect_attempts++;
  if (s) {
    p->opened++;
    p->connect_failures = 0;
    p->backoff_until = 0;
  } else {
    double delay = BACKOFF_BASE;
    int i;
    for (i = 1; i < p->connect_failures && delay < BACKOFF_CAP; i++) delay *= 2;
    p->connect_failures++;
    p->backoff_until = session_now() + (delay < BACKOFF_CAP ? delay : BACKOFF_CAP);
    snprintf(p->last_error, sizeof p->last_error, "%s", msg);
  }
  pthread_cond_broadcast(&p->cv);
}

/* Opens one session for a slot already reserved (n_total counts it) and
 * parks it idle; a failure gives the slot back. 0 or -1. */
static int open_idle(pool_core *p) {
  int timed_out;
  char msg[256];
  session *s = session_open(p->conninfo, p->connect_timeout, p->cache_size, msg, sizeof msg, &timed_out);
  pthread_mutex_lock(&p->mu);
  note_connect_locked(p, s, msg);
  if (!s) {
    p->n_total--;
    pthread_mutex_unlock(&p->mu);
    return -1;
  }
  s->idle_since = session_now();
  park_locked(p, s);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

void pool_config_defaults(pool_config *c) {
  c->conninfo = "";
  c->min = 2;
  c->max = 10;
  c->cache_size = 100;
  c->idle_timeout = 30;
  c->connect_timeout = 2;
  c->acquire_timeout = 5;
  c->max_lifetime = 0;
  c->slow_ms = 1000;
  c->query_timeout = 0;
  c->reset = POOL_RESET_AUTO;
}

int pool_config_check(const pool_config *c, char *err, size_t errlen) {
  const char *bad = NULL;
  if (!c->conninfo) bad = "pool option conninfo must be a string";
  else if (c->min < 0) bad = "pool option min must be a number >= 0";
  else if (c->max < 1) bad = "pool option max must be a number >= 1";
  else if (!(c->idle_timeout >= 0)) bad = "pool option idle_timeout must be a number >= 0";
  else if (!(c->connect_timeout >= 0.001)) bad = "pool option connect_timeout must be a number >= 0.001";
  else if (!(c->acquire_timeout >= 0)) bad = "pool option acquire_timeout must be a number >= 0";
  else if (!(c->max_lifetime >= 0)) bad = "pool option max_lifetime must be a number >= 0";
  else if (c->cache_size < 0) bad = "pool option statement_cache must be a number >= 0";
  else if (!(c->slow_ms >= -1)) bad = "pool option slow_query_ms must be a number >= -1";
  else if (!(c->query_timeout >= 0)) bad = "pool option query_timeout must be a number >= 0";
  else if (c->reset < POOL_RESET_AUTO || c->reset > POOL_RESET_NEVER) bad = "pool option reset is unknown";
  else if (c->min > c->max) bad = "pool option min must not exceed max";
  else if (c->max > 10000 || c->cache_size > 100000) bad = "pool option max or statement_cache is too large";
  if (!bad) return 0;
  snprintf(err, errlen, "%s", bad);
  return -1;
}

pool_core *pool_core_new(const pool_config *c, char *err, size_t errlen) {
  pool_core *p;
  pthread_condattr_t attr;
  if (pool_config_check(c, err, errlen) != 0) return NULL;
  p = calloc(1, sizeof *p);
  if (!p || !(p->conninfo = strdup(c->conninfo))) {
    free(p);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &attr);
  pthread_condattr_destroy(&attr);
  p->refs = 1;
  p->min = c->min;
  p->max = c->max;
  p->cache_size = c->cache_size;
  p->idle_timeout = c->idle_timeout;
  p->connect_timeout = c->connect_timeout;
  p->acquire_timeout = c->acquire_timeout;
  p->max_lifetime = c->max_lifetime;
  p->slow_ms = c->slow_ms;
  p->query_timeout = c->query_timeout;
  p->reset = c->reset;
  pool_core_maintain(p);
  return p;
}

void pool_core_attach(pool_core *p) {
  pthread_mutex_lock(&p->mu);
  p->refs++;
  pthread_mutex_unlock(&p->mu);
}

void pool_core_detach(pool_core *p) {
  pthread_mutex_lock(&p->mu);
  p->refs--;
  unlock_and_maybe_free(p);
}

static error_kind fail(pool_core *p, error_kind kind) {
  pthread_mutex_lock(&p->mu);
  p->errors[kind]++;
  pthread_mutex_unlock(&p->mu);
  return kind;
}

static void release(pool_core *p, session *s, int may_io);

error_kind pool_core_acquire(pool_core *p, session **out, char *err, size_t errlen) {
  return pool_core_acquire_for(p, p->acquire_timeout, 1, out, err, errlen);
}

/* 1 when s must be reset before it is lent again. */
static int needs_reset(const pool_core *p, const session *s) {
  if (p->reset == POOL_RESET_ALWAYS) return s->used;
  if (p->reset == POOL_RESET_AUTO) return s->dirty;
  return 0;
}

error_kind pool_core_acquire_for(pool_core *p, double timeout, int count, session **out, char *err,
                                 size_t errlen) {
  double deadline = session_now() + timeout; /* infinite stays infinite */
  for (;;) {
    session *doomed, *s = NULL;
    int open_new = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
      double now;
      if (p->closed) {
        pthread_mutex_unlock(&p->mu);
        snprintf(err, errlen, "the pool is closed");
        return fail(p, KIND_CLOSED);
      }
      if (p->idle) break;
      now = session_now();
      if (p->n_total < p->max) {
        if (now >= p->backoff_until) break;
        if (p->backoff_until > deadline) {
          /* the server keeps refusing: fail now rather than hammer it */
          snprintf(err, errlen, "cannot connect (%d failures in a row, next attempt in %.2f s): %s",
                   p->connect_failures, p->backoff_until - now, p->last_error);
          pthread_mutex_unlock(&p->mu);
          return fail(p, KIND_CONNECT);
        }
        p->n_waiting++;
        (void)wait_until(p, p->backoff_until); /* a release may wake us first */
        p->n_waiting--;
        continue;
      }
      if (now >= deadline) {
        if (count) p->acquire_timeouts++;
        pthread_mutex_unlock(&p->mu);
        snprintf(err, errlen, "no connection free within %g s (all %d busy)", timeout, p->max);
        return count ? fail(p, KIND_POOL_TIMEOUT) : KIND_POOL_TIMEOUT;
      }
      p->n_waiting++;
      (void)wait_until(p, deadline);
      p->n_waiting--;
    }
    doomed = reap_locked(p, session_now());
    if (p->idle) {
      s = p->idle;
      p->idle = s->next;
      s->next = NULL;
      p->n_idle--;
    } else if (p->n_total < p->max) {
      p->n_total++; /* reserve the slot while connecting unlocked */
      grew_locked(p);
      open_new = 1;
    }
    pthread_mutex_unlock(&p->mu);
    discard_list(p, doomed);

    if (s) {
      int ok = session_check_idle(s) == 0;
      /* a transaction abandoned by a finalizer: roll it back now, bounded */
      if (ok && s->abandoned >= 0) ok = session_settle_tx(s, SESSION_SETTLE_TIMEOUT) == 0;
      /* nothing the previous borrower changed reaches the next one */
      if (ok && needs_reset(p, s)) {
        ok = session_reset(s, RESET_TIMEOUT) == 0;
        if (ok) {
          pthread_mutex_lock(&p->mu);
          p->resets++;
          pthread_mutex_unlock(&p->mu);
        }
      }
      if (ok) {
        *out = s;
        return KIND_COUNT;
      }
      discard(p, s); /* died while idle, or could not be cleaned: replace it */
      continue;
    }
    if (open_new) {
      int timed_out;
      char msg[256];
      s = session_open(p->conninfo, p->connect_timeout, p->cache_size, msg, sizeof msg, &timed_out);
      pthread_mutex_lock(&p->mu);
      note_connect_locked(p, s, msg);
      if (!s) p->n_total--;
      pthread_mutex_unlock(&p->mu);
      if (!s) {
        snprintf(err, errlen, "%s", msg);
        return fail(p, timed_out ? KIND_TIMEOUT : KIND_CONNECT);
      }
      *out = s;
      return KIND_COUNT;
    }
  }
}

void pool_core_release(pool_core *p, session *s) { release(p, s, 1); }

void pool_core_release_quiet(pool_core *p, session *s) { release(p, s, 0); }

/* may_io = 0 (from a finalizer): no statement, no connect. */
static void release(pool_core *p, session *s, int may_io) {
  int keep = !session_is_broken(s) && !s->fatal_seen, refill;
  session *doomed;
  notice *n;
  double now = session_now();

  if (s->decoding) {
    PQclear(s->decoding);
    s->decoding = NULL;
  }
  /* a statement still in flight (an abandoned stream): discard, never wait on it */
  if (keep && (s->stream_open || PQtransactionStatus(s->pg) == PQTRANS_ACTIVE)) keep = 0;
  if (keep && !may_io && PQtransactionStatus(s->pg) != PQTRANS_IDLE && s->abandoned < 0) s->abandoned = 0;
  if (keep && s->abandoned < 0) { /* abandoned: rolled back before the next lending, not here */
    PGTransactionStatusType ts = PQtransactionStatus(s->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
      PGresult *r;
      s->deadline = now + SESSION_SETTLE_TIMEOUT;
      r = session_query(s, "ROLLBACK");
      s->deadline = 0;
      keep = PQresultStatus(r) == PGRES_COMMAND_OK && !s->timed_out;
      s->timed_out = 0;
      PQclear(r);
    } else if (ts != PQTRANS_IDLE) {
      keep = 0;
    }
  }
  n = session_take_notices(s);
  while (n) {
    notice *next = n->next;
    free(n);
    n = next;
  }
  if (keep && p->max_lifetime > 0 && now - s->created_at >= p->max_lifetime) keep = 0;

  pthread_mutex_lock(&p->mu);
  if (s->pend_queries) { /* pool_core_count's, folded into this lock */
    p->queries += s->pend_queries;
    p->slow_queries += s->pend_slow;
    p->cache_hits += s->pend_hits;
    p->cache_misses += s->pend_queries - s->pend_hits;
    s->pend_queries = s->pend_slow = s->pend_hits = 0;
  }
  s->count_at_release = 0;
  if (!keep || p->closed) {
    pthread_mutex_unlock(&p->mu);
    discard(p, s);
    return;
  }
  s->idle_since = now;
  park_locked(p, s);
  doomed = reap_locked(p, now);
  refill = may_io && p->n_total < p->min && now >= p->backoff_until;
  if (refill) {
    p->n_total++;
    grew_locked(p);
  }
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  discard_list(p, doomed);
  if (refill) (void)open_idle(p);
}

void pool_core_note_leak(pool_core *p, char *where) {
  pthread_mutex_lock(&p->mu);
  p->leaks++;
  if (p->n_leak_reports < LEAK_REPORTS) {
    p->leak_where[p->n_leak_reports] = where;
    __atomic_store_n(&p->n_leak_reports, p->n_leak_reports + 1, __ATOMIC_RELEASE);
    where = NULL;
  }
  pthread_mutex_unlock(&p->mu);
  free(where);
}

int pool_core_take_leak(pool_core *p, char **where) {
  int found;
  /* the common case, no report pending, without the lock */
  if (__atomic_load_n(&p->n_leak_reports, __ATOMIC_ACQUIRE) == 0) return 0;
  pthread_mutex_lock(&p->mu);
  found = p->n_leak_reports > 0;
  if (found) {
    int i;
    *where = p->leak_where[0];
    for (i = 1; i < p->n_leak_reports; i++) p->leak_where[i - 1] = p->leak_where[i];
    __atomic_store_n(&p->n_leak_reports, p->n_leak_reports - 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&p->mu);
  return found;
}

void pool_core_maintain(pool_core *p) {
  session *doomed;
  int need;
  pthread_mutex_lock(&p->mu);
  doomed = reap_locked(p, session_now());
  need = p->closed || session_now() < p->backoff_until ? 0 : p->min - p->n_total;
  if (need > 0) {
    p->n_total += need;
    grew_locked(p);
  }
  pthread_mutex_unlock(&p->mu);
  discard_list(p, doomed);
  while (need > 0) {
    need--;
    if (open_idle(p) != 0) {
      pthread_mutex_lock(&p->mu);
      p->n_total -= need; /* give back the slots not tried */
      pthread_cond_broadcast(&p->cv);
      pthread_mutex_unlock(&p->mu);
      return;
    }
  }
}

int pool_core_close(pool_core *p, double timeout) {
  session *idle;
  int left;
  double deadline = session_now() + timeout;
  pthread_mutex_lock(&p->mu);
  p->closed = 1;
  idle = p->idle;
  p->idle = NULL;
  p->n_idle = 0;
  p->refs++; /* hold the struct while discarding */
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  discard_list(p, idle);
  pthread_mutex_lock(&p->mu);
  while (p->n_total > 0 && session_now() < deadline) (void)wait_until(p, deadline);
  left = p->n_total;
  p->refs--;
  pthread_mutex_unlock(&p->mu);
  return left;
}

void pool_core_count_query(pool_core *p, int failed_kind, int slow, int cache_hit) {
  pthread_mutex_lock(&p->mu);
  p->queries++;
  if (slow) p->slow_queries++;
  if (failed_kind >= 0 && failed_kind < KIND_COUNT) p->errors[failed_kind]++;
  if (cache_hit) p->cache_hits++; else p->cache_misses++;
  pthread_mutex_unlock(&p->mu);
}

void pool_core_count(pool_core *p, session *s, int failed_kind, int slow, int cache_hit) {
  if (s && s->count_at_release && failed_kind < 0) {
    s->pend_queries++;
    s->pend_slow += slow != 0;
    s->pend_hits += cache_hit != 0;
    return;
  }
  pool_core_count_query(p, failed_kind, slow, cache_hit);
}

void pool_core_stats(pool_core *p, pool_stats *out) {
  pthread_mutex_lock(&p->mu);
  out->total = p->n_total;
  out->idle = p->n_idle;
  out->waiting = p->n_waiting;
  out->min = p->min;
  out->max = p->max;
  out->queries = p->queries;
  out->slow_queries = p->slow_queries;
  memcpy(out->errors, p->errors, sizeof out->errors);
  out->opened = p->opened;
  out->closed = p->closed_count;
  out->acquire_timeouts = p->acquire_timeouts;
  out->cache_hits = p->cache_hits;
  out->cache_misses = p->cache_misses;
  memcpy(out->last_error, p->last_error, sizeof out->last_error);
  out->resets = p->resets;
  out->leaks = p->leaks;
  out->connect_attempts = p->connect_attempts;
  out->connect_failures = p->connect_failures;
  out->connect_backoff = p->backoff_until > session_now() ? p->backoff_until - session_now() : 0;
  pthread_mutex_unlock(&p->mu);
}

double pool_core_slow_ms(const pool_core *p) { return p->slow_ms; }

double pool_core_query_timeout(const pool_core *p) { return p->query_timeout; }

const char *pool_core_conninfo(const pool_core *p) { return p->conninfo; }
