/* Named, process-wide pools and their maintenance threads (see pool_registry.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool_registry.h"

struct pool_entry {
  pool_entry *next;            /* in the registry (named, open pools only) */
  char *name;                  /* NULL for a private pool */
  pool_config config;          /* as opened; config.conninfo points at conninfo */
  char *conninfo;
  pool_core *core;             /* one reference, dropped when the entry is freed */
  int holders;                 /* guarded by registry_mu */
  int closed;                  /* written under registry_mu and mu, read under either */
  /* the maintenance thread */
  pthread_mutex_t mu;
  pthread_cond_t cv;           /* signalled to stop it */
  pthread_t thread;
  int has_thread;              /* guarded by mu */
  int stop;                    /* guarded by mu */
  pid_t owner;                 /* the process that started it (threads do not survive fork) */
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pool_entry *registry;   /* named pools that are open */

/* ---- the maintenance thread ------------------------------------------------------ */

/* Seconds between rounds: a quarter of the shortest timeout it enforces,
 * between 50 ms and 1 s. */
static double tick(const pool_config *c) {
  double t = c->idle_timeout / 4;
  if (c->max_lifetime > 0 && c->max_lifetime / 4 < t) t = c->max_lifetime / 4;
  if (t < 0.05) t = 0.05;
  if (t > 1) t = 1;
  return t;
}

static void deadline_after(struct timespec *ts, double seconds) {
  long long ns;
  clock_gettime(CLOCK_MONOTONIC, ts);
  ns = (long long)ts->tv_nsec + (long long)(seconds * 1e9);
  ts->tv_sec += (time_t)(ns / 1000000000LL);
  ts->tv_nsec = (long)(ns % 1000000000LL);
}

/* Every tick: reap expired idle sessions, open up to min. While the server
 * cannot be reached, wait longer between tries (doubling, up to 10 s). */
static void *maintenance(void *arg) {
  pool_entry *e = arg;
  double base = tick(&e->config), wait = base;
  pthread_mutex_lock(&e->mu);
  while (!e->stop) {
    struct timespec ts;
    int rc = 0;
    deadline_after(&ts, wait);
    while (!e->stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    if (e->stop) break;
    pthread_mutex_unlock(&e->mu);
    pool_core_maintain(e->core);
    {
      pool_stats st;
      pool_core_stats(e->core, &st);
      wait = st.total < st.min ? (wait * 2 > 10 ? 10 : wait * 2) : base;
    }
    pthread_mutex_lock(&e->mu);
  }
  pthread_mutex_unlock(&e->mu);
  return NULL;
}

/* Starts the thread with every signal blocked (it must not take the signals
 * of the program that loaded us, nginx's for one). Without a thread the pool
 * still works: reaping then happens when it is used. */
static void start_thread(pool_entry *e) {
  sigset_t all, old;
  e->owner = getpid();
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  e->has_thread = pthread_create(&e->thread, NULL, maintenance, e) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Stops and joins the thread. Called once per entry, never from the thread. */
static void stop_thread(pool_entry *e) {
  int joinable;
  pthread_mutex_lock(&e->mu);
  e->stop = 1;
  joinable = e->has_thread && e->owner == getpid(); /* a forked child has no such thread */
  e->has_thread = 0;
  pthread_cond_signal(&e->cv);
  pthread_mutex_unlock(&e->mu);
  if (joinable) pthread_join(e->thread, NULL);
}

/* ---- the registry ----------------------------------------------------------------- */

/* 0 when every option in `given` equals the living pool's; else -1 with the
 * first that differs named in err (never the conninfo itself: it may hold a
 * password). */
static int agree(const pool_entry *e, const pool_config *c, unsigned given, char *err, size_t errlen) {
  const pool_config *have = &e->config;
  const char *opt = NULL;
  double was = 0, asked = 0;
  if ((given & POOL_OPT_CONNINFO) && strcmp(have->conninfo, c->conninfo) != 0) {
    snprintf(err, errlen, "pool \"%s\" is already open with another conninfo", e->name);
    return -1;
  }
#define DIFFERS(bit, field, label)                                          \
  if (!opt && (given & (bit)) && have->field != c->field) {                 \
    opt = label; was = (double)have->field; asked = (double)c->field;      \
  }
  DIFFERS(POOL_OPT_MIN, min, "min")
  DIFFERS(POOL_OPT_MAX, max, "max")
  DIFFERS(POOL_OPT_CACHE_SIZE, cache_size, "statement_cache")
  DIFFERS(POOL_OPT_IDLE_TIMEOUT, idle_timeout, "idle_timeout")
  DIFFERS(POOL_OPT_CONNECT_TIMEOUT, connect_timeout, "connect_timeout")
  DIFFERS(POOL_OPT_ACQUIRE_TIMEOUT, acquire_timeout, "acquire_timeout")
  DIFFERS(POOL_OPT_MAX_LIFETIME, max_lifetime, "max_lifetime")
  DIFFERS(POOL_OPT_SLOW_MS, slow_ms, "slow_query_ms")
  DIFFERS(POOL_OPT_QUERY_TIMEOUT, query_timeout, "query_timeout")
  DIFFERS(POOL_OPT_RESET, reset, "reset (0 auto, 1 always, 2 never)")
#undef DIFFERS
  if (!opt) return 0;
  snprintf(err, errlen, "pool \"%s\" is already open with %s = %g, not %g", e->name, opt, was, asked);
  return -1;
}

static pool_entry *find_locked(const char *name) {
  pool_entry *e;
  for (e = registry; e; e = e->next)
    if (strcmp(e->name, name) == 0) return e;
  return NULL;
}

static void unlink_locked(pool_entry *e) {
  pool_entry **link = &registry;
  while (*link && *link != e) link = &(*link)->next;
  if (*link) *link = e->next;
  e->next = NULL;
}

static void entry_free(pool_entry *e) {
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cv);
  free(e->name);
  free(e->conninfo);
  free(e);
}

/* A new entry with its pool and thread, holding one hold; NULL with err. */
static pool_entry *entry_new(const char *name, const pool_config *c, char *err, size_t errlen) {
  pool_entry *e = calloc(1, sizeof *e);
  if (!e || !(e->conninfo = strdup(c->conninfo)) || (name && !(e->name = strdup(name)))) {
    if (e) free(e->conninfo);
    free(e);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  e->config = *c;
  e->config.conninfo = e->conninfo;
  pthread_mutex_init(&e->mu, NULL);
  {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &attr);
    pthread_condattr_destroy(&attr);
  }
  e->core = pool_core_new(&e->config, err, errlen);
  if (!e->core) {
    entry_free(e);
    return NULL;
  }
  e->holders = 1;
  start_thread(e);
  return e;
}

pool_entry *pool_entry_open(const char *name, const pool_config *c, unsigned given, int *created, char *err,
                            size_t errlen) {
  pool_entry *e;
  *created = 0;
  if (!name || !*name) {
    e = entry_new(NULL, c, err, errlen);
    if (e) *created = 1;
    return e;
  }
  if (pool_config_check(c, err, errlen) != 0) return NULL;
  /* Held while a new pool opens its first sessions, so that two states
   * asking for the same new name at once get one pool. */
  pthread_mutex_lock(&registry_mu);
  e = find_locked(name);
  if (e) {
    if (agree(e, c, given, err, errlen) != 0) {
      e = NULL;
    } else {
      e->holders++;
    }
  } else {
    e = entry_new(name, c, err, errlen);
    if (e) {
      e->next = registry;
      registry = e;
      *created = 1;
    }
  }
  pthread_mutex_unlock(&registry_mu);
  return e;
}

pool_core *pool_entry_core(const pool_entry *e) { return e->core; }

const char *pool_entry_name(const pool_entry *e) { return e->name; }

int pool_entry_is_closed(pool_entry *e) {
  int closed;
  pthread_mutex_lock(&e->mu); /* not registry_mu: a new named pool may hold it while it connects */
  closed = e->closed;
  pthread_mutex_unlock(&e->mu);
  return closed;
}

int pool_entry_has_thread(pool_entry *e) {
  int has;
  pthread_mutex_lock(&e->mu);
  has = e->has_thread;
  pthread_mutex_unlock(&e->mu);
  return has;
}

/* With registry_mu held: marks e closed and takes it out of the registry;
 * 1 when this call did it. */
static int mark_closed_locked(pool_entry *e) {
  if (e->closed) return 0;
  pthread_mutex_lock(&e->mu);
  e->closed = 1;
  pthread_mutex_unlock(&e->mu);
  if (e->name) unlink_locked(e);
  return 1;
}

int pool_entry_close(pool_entry *e, double timeout) {
  int first;
  pthread_mutex_lock(&registry_mu);
  first = mark_closed_locked(e);
  pthread_mutex_unlock(&registry_mu);
  if (first) stop_thread(e);
  return pool_core_close(e->core, timeout);
}

void pool_entry_release(pool_entry *e) {
  int last;
  pthread_mutex_lock(&registry_mu);
  last = --e->holders == 0;
  if (last && mark_closed_locked(e)) {
    /* out of the registry under the same lock: no open() can find it now */
    pthread_mutex_unlock(&registry_mu);
    stop_thread(e);
    pool_core_close(e->core, 0);
  } else {
    pthread_mutex_unlock(&registry_mu);
  }
  if (!last) return;
  pool_core_detach(e->core);
  entry_free(e);
}

int pool_registry_count(void) {
  int n = 0;
  pool_entry *e;
  pthread_mutex_lock(&registry_mu);
  for (e = registry; e; e = e->next) n++;
  pthread_mutex_unlock(&registry_mu);
  return n;
}
