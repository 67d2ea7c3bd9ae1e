/* One libpq connection: connecting within a deadline, the prepared-statement
 * cache, notices, and the idle liveness check. No Lua here. */
#include "session.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "binary.h"
#include "redact.h"
#include "sqlstate.h"
#include "strbuf.h"

#define MAX_PENDING_NOTICES 256
/* After a deadline passes: how long the cancel request and the drain of the
 * cancelled statement may take before the connection is given up. */
#define CANCEL_GRACE 2.0
/* After a deadline passed: how long session_wait waits with nothing arriving
 * before it sends the cancel again (a pipeline's next statement started). */
#define CANCEL_RETRY 0.25
#define SETTLE_TIMEOUT 5.0   /* seconds to end an abandoned stream (as an abandoned transaction) */

double session_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- cancel tokens: a process-wide registry any thread may use ------------------ */

typedef struct cancel_entry {
  unsigned long long token;
  PGcancel *cancel;
  int refs;                        /* callers using cancel outside the lock */
  int closed;                      /* the session closed: free when refs drop to 0 */
  struct cancel_entry *next;
} cancel_entry;

static pthread_mutex_t cancel_mu = PTHREAD_MUTEX_INITIALIZER;
static cancel_entry *cancel_list;
static unsigned long long cancel_seq;

static unsigned long long cancel_register(PGconn *pg) {
  cancel_entry *e = calloc(1, sizeof *e);
  unsigned long long token;
  if (!e || !(e->cancel = PQgetCancel(pg))) {
    free(e);
    return 0;
  }
  pthread_mutex_lock(&cancel_mu);
  token = e->token = ++cancel_seq;
  e->next = cancel_list;
  cancel_list = e;
  pthread_mutex_unlock(&cancel_mu);
  return token;
}

/* Unlinks entry e (cancel_mu held) and frees it unless someone uses it. */
static void cancel_unlink_locked(cancel_entry *e) {
  cancel_entry **link = &cancel_list;
  while (*link && *link != e) link = &(*link)->next;
  if (*link) *link = e->next;
  e->closed = 1;
  if (e->refs == 0) {
    PQfreeCancel(e->cancel);
    free(e);
  }
}

static void cancel_unregister(unsigned long long token) {
  cancel_entry *e;
  if (!token) return;
  pthread_mutex_lock(&cancel_mu);
  for (e = cancel_list; e && e->token != token; e = e->next) {}
  if (e) cancel_unlink_locked(e);
  pthread_mutex_unlock(&cancel_mu);
}

int session_cancel_token(unsigned long long token, char *err, size_t errlen) {
  cancel_entry *e;
  int ok;
  pthread_mutex_lock(&cancel_mu);
  for (e = cancel_list; e && e->token != token; e = e->next) {}
  if (e) e->refs++;
  pthread_mutex_unlock(&cancel_mu);
  if (!e) return 0;
  err[0] = '\0';
  ok = PQcancel(e->cancel, err, (int)errlen);
  pthread_mutex_lock(&cancel_mu);
  e->refs--;
  if (e->closed && e->refs == 0) {
    PQfreeCancel(e->cancel);
    free(e);
  }
  pthread_mutex_unlock(&cancel_mu);
  if (!ok) session_one_line(err);
  return ok ? 1 : -1;
}

/* Copies libpq's message into err, trimmed, with every password it could
 * quote masked: the conninfo's password and sslpassword as libpq parsed them
 * (which is what redact_conninfo masks: session_check_conninfo refused the
 * rest), any other value that holds a password of its own, and PGPASSWORD. */
static void copy_error(char *err, size_t errlen, const char *msg, const char *conninfo) {
  PQconninfoOption *opts, *o;
  const char *secrets[64];
  int n_secrets = 0, i;
  strbuf a, b;
  size_t n;
  char *errmsg = NULL;

  opts = PQconninfoParse(conninfo, &errmsg);
  if (errmsg) PQfreemem(errmsg);
  for (o = opts; o && o->keyword && n_secrets < 60; o++) {
    if (!o->val || !o->val[0]) continue;
    if (strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0) {
      secrets[n_secrets++] = o->val;
    } else { /* a value that holds a conninfo of its own (dbname='... password=...') */
      strbuf r;
      strbuf_init(&r);
      redact_conninfo(&r, o->val);
      if (r.failed || !r.data || strcmp(r.data, o->val) != 0) secrets[n_secrets++] = o->val;
      strbuf_free(&r);
    }
  }
  if (getenv("PGPASSWORD") && getenv("PGPASSWORD")[0]) secrets[n_secrets++] = getenv("PGPASSWORD");
  strbuf_init(&a);
  strbuf_puts(&a, msg ? msg : "unknown error");
  for (i = 0; i < n_secrets; i++) {
    strbuf_init(&b);
    redact_secret(&b, a.data ? a.data : "", secrets[i]);
    strbuf_free(&a);
    a = b;
  }
  if (opts) PQconninfoFree(opts);
  n = a.failed || !a.data ? 0 : a.len;
  while (n > 0 && (a.data[n - 1] == '\n' || a.data[n - 1] == ' ')) n--;
  if (n >= errlen) n = errlen - 1;
  if (n) memcpy(err, a.data, n);
  err[n] = '\0';
  strbuf_free(&a);
  session_one_line(err);
}

int session_check_conninfo(const char *conninfo, char *err, size_t errlen) {
  char *perr = NULL;
  PQconninfoOption *opts;
  strbuf b;

  if (!conninfo) return 0;
  strbuf_init(&b);
  if (redact_ambiguous(conninfo)) {
    strbuf_puts(&b, "invalid conninfo: the URL's user:password@ has a raw '@' or '/' "
                    "(libpq would read part of the password as the host): percent-encode "
                    "them as %40 and %2F: ");
    redact_conninfo(&b, conninfo);
  } else if ((opts = PQconninfoParse(conninfo, &perr)) == NULL) {
    size_t n;
    /* libpq quotes the offending text, which may be part of the password */
    strbuf_puts(&b, "invalid conninfo (");
    redact_quoted(&b, perr ? perr : "out of memory");
    n = b.len;
    while (n > 0 && b.data && (b.data[n - 1] == '\n' || b.data[n - 1] == ' ')) n--;
    b.len = n;
    strbuf_puts(&b, "): ");
    redact_conninfo(&b, conninfo);
    if (perr) PQfreemem(perr);
  } else {
    PQconninfoFree(opts);
    strbuf_free(&b);
    return 0;
  }
  snprintf(err, errlen, "%s", b.failed || !b.data ? "invalid conninfo" : b.data);
  strbuf_free(&b);
  session_one_line(err);
  return -1;
}

void session_one_line(char *msg) {
  /* "\nX" becomes "; X" (one byte longer): build a copy, then write back what fits */
  size_t cap = strlen(msg) + 1;
  char *copy = malloc(cap * 2), *out;
  const char *in = msg;
  if (!copy) return;
  out = copy;
  while (*in) {
    if (*in == '\n' || *in == '\r') {
      while (*in == '\n' || *in == '\r') in++;
      if (!*in) break;
      if (*in == ' ' || *in == '\t') {
        while (*in == ' ' || *in == '\t') in++;
        *out++ = ' ';
      } else {
        *out++ = ';';
        *out++ = ' ';
      }
      continue;
    }
    *out++ = *in++;
  }
  while (out > copy && (out[-1] == ' ' || out[-1] == ';')) out--;
  *out = '\0';
  if ((size_t)(out - copy) >= cap) copy[cap - 1] = '\0';
  memcpy(msg, copy, strlen(copy) + 1);
  free(copy);
}

/* libpq calls this for every NoticeResponse, including a FATAL that arrives
 * while the connection is idle (the backend was terminated). */
static void on_notice(void *arg, const PGresult *res) {
  session *s = arg;
  const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  notice *n;
  size_t len;

  if (!sev) sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
  if (!sev) sev = "NOTICE";
  if (!msg) msg = PQresultErrorMessage(res);
  if (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0) s->fatal_seen = 1;
  if (s->notice_count >= MAX_PENDING_NOTICES) return;
  len = strlen(msg);
  n = malloc(sizeof(notice) + len);
  if (!n) return;
  n->next = NULL;
  snprintf(n->severity, sizeof n->severity, "%s", sev);
  memcpy(n->message, msg, len + 1);
  if (s->notices_tail) s->notices_tail->next = n; else s->notices = n;
  s->notices_tail = n;
  s->notice_count++;
}

/* Waits until the socket is ready for events or the deadline passes.
 * Returns 1 ready, 0 timed out, -1 error. */
static int wait_socket(int fd, short events, double deadline) {
  for (;;) {
    struct pollfd p;
    double left = deadline - session_now();
    int r;
    if (left <= 0) return 0;
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    r = poll(&p, 1, (int)(left * 1000.0) + 1);
    if (r > 0) return 1;
    if (r == 0) continue; /* re-check the clock */
    if (errno != EINTR) return -1;
  }
}

session *session_open(const char *conninfo, double timeout, int cache_size,
                      char *err, size_t errlen, int *timed_out) {
  /* Defaults the conninfo (expanded last, from dbname) may override: TCP
   * keepalives find a dead peer in about a minute instead of hours. */
  static const char *const keywords[] = {"client_encoding", "fallback_application_name",
                                         "keepalives", "keepalives_idle", "keepalives_interval",
                                         "keepalives_count", "dbname", NULL};
  const char *values[8];
  PGconn *pg;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  double deadline = session_now() + (timeout > 0 ? timeout : 3600.0);
  session *s;

  *timed_out = 0;
  if (session_check_conninfo(conninfo, err, errlen)) return NULL;
  /* UTF8 unless the caller chose: a client_encoding in the conninfo (it comes
   * later, so it wins) or PGCLIENTENCODING (which an explicit value would hide) */
  values[0] = getenv("PGCLIENTENCODING") && getenv("PGCLIENTENCODING")[0] ? NULL : "UTF8";
  values[1] = "coderunner-db";
  values[2] = "1";
  values[3] = "30";
  values[4] = "10";
  values[5] = "3";
  values[6] = conninfo ? conninfo : "";
  values[7] = NULL;
  pg = PQconnectStartParams(keywords, values, 1);
  if (!pg) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (PQstatus(pg) == CONNECTION_BAD) {
    copy_error(err, errlen, PQerrorMessage(pg), values[6]);
    PQfinish(pg);
    return NULL;
  }
  while (st != PGRES_POLLING_OK) {
    int ready;
    if (st == PGRES_POLLING_FAILED) {
      copy_error(err, errlen, PQerrorMessage(pg), values[6]);
      PQfinish(pg);
      return NULL;
    }
    ready = wait_socket(PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
    if (ready <= 0) {
      if (ready == 0) {
        *timed_out = 1;
        snprintf(err, errlen, "connection timed out after %g s", timeout);
      } else {
        snprintf(err, errlen, "connection failed: %s", strerror(errno));
      }
      PQfinish(pg);
      return NULL;
    }
    st = PQconnectPoll(pg);
  }

  s = calloc(1, sizeof *s);
  if (!s || (cache_size > 0 && !(s->cache = calloc((size_t)cache_size, sizeof(stmt_entry))))) {
    free(s);
    PQfinish(pg);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->pg = pg;
  s->cache_size = cache_size > 0 ? cache_size : 0;
  s->created_at = s->idle_since = session_now();
  s->abandoned = -1;
  s->cancel_token = cancel_register(pg);
  PQsetNoticeReceiver(pg, on_notice, s);
  return s;
}

static void free_notices(notice *n) {
  while (n) {
    notice *next = n->next;
    free(n);
    n = next;
  }
}

static void entry_free(stmt_entry *e) {
  free(e->sql);
  free(e->types);
  free(e->described);
}

void session_cache_clear(session *s) {
  int i;
  for (i = 0; i < s->cache_count; i++) entry_free(&s->cache[i]);
  s->cache_count = 0;
}

void session_close(session *s) {
  if (!s) return;
  if (s->decoding) PQclear(s->decoding);
  cancel_unregister(s->cancel_token);
  if (s->pg) PQfinish(s->pg);
  session_cache_clear(s);
  free(s->cache);
  pgtype_cache_free(&s->types);
  free_notices(s->notices);
  free(s);
}

notice *session_take_notices(session *s) {
  notice *n = s->notices;
  s->notices = s->notices_tail = NULL;
  s->notice_count = 0;
  return n;
}

int session_is_broken(const session *s) {
  return !s->pg || s->broken || PQstatus(s->pg) != CONNECTION_OK;
}

/* ---- statements within a deadline ------------------------------------------- */

/* poll() on fd until an event, the deadline (0: none) or an error.
 * Returns revents (> 0), 0 when the deadline passed, -1 on error. */
static int wait_io(int fd, short events, double deadline) {
  for (;;) {
    struct pollfd p;
    int r, ms = -1;
    if (deadline > 0) {
      double left = deadline - session_now();
      if (left <= 0) return 0;
      ms = left > 86400.0 ? 86400000 : (int)(left * 1000.0) + 1;
    }
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    r = poll(&p, 1, ms);
    if (r > 0) return p.revents;
    if (r < 0 && errno != EINTR) return -1;
  }
}

/* A cancel request runs in its own thread, so that a server that does not
 * answer (a black-holed network) costs the caller at most the grace period;
 * the thread frees the job when the caller stopped waiting for it. */
typedef struct cancel_job {
  PGcancel *cancel;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, abandoned;
} cancel_job;

static void cancel_job_free(cancel_job *j) {
  PQfreeCancel(j->cancel);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  free(j);
}

static void *cancel_thread(void *arg) {
  cancel_job *j = arg;
  char err[256];
  int abandoned;
  (void)PQcancel(j->cancel, err, sizeof err);
  pthread_mutex_lock(&j->mu);
  j->done = 1;
  abandoned = j->abandoned;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
  if (abandoned) cancel_job_free(j);
  return NULL;
}

/* Asks the server to cancel what pg is running; waits up to deadline.
 * Returns 0 when the request was delivered in time. The helper thread is
 * joined when it finished in time (so none is left exiting in the background,
 * e.g. at process exit), and detached only when it is abandoned. */
static int send_cancel(PGconn *pg, double deadline) {
  cancel_job *j = calloc(1, sizeof *j);
  pthread_t t;
  pthread_condattr_t ca;
  int done;
  if (!j || !(j->cancel = PQgetCancel(pg))) {
    free(j);
    return -1;
  }
  pthread_mutex_init(&j->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&j->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&t, NULL, cancel_thread, j) != 0) {
    char err[256];
    done = PQcancel(j->cancel, err, sizeof err); /* no thread: blocking, as libpq does */
    cancel_job_free(j);
    return done ? 0 : -1;
  }
  pthread_mutex_lock(&j->mu);
  while (!j->done) {
    struct timespec ts;
    double whole = (double)(long long)deadline;
    ts.tv_sec = (time_t)whole;
    ts.tv_nsec = (long)((deadline - whole) * 1e9);
    if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT) break;
  }
  done = j->done;
  if (!done) j->abandoned = 1;
  pthread_mutex_unlock(&j->mu);
  if (done) {
    pthread_join(t, NULL);
    cancel_job_free(j);
  } else {
    pthread_detach(t); /* it frees the job when PQcancel returns */
  }
  return done ? 0 : -1;
}

/* Collects the results of the statement in flight as PQexec does (the last
 * one; COPY stops it), waiting on the socket until s->deadline. Returns NULL
 * with *late set when the deadline passed first. */
static PGresult *collect(session *s, double deadline, int *late) {
  PGconn *pg = s->pg;
  PGresult *last = NULL, *r;
  int fd = PQsocket(pg);
  *late = 0;
  for (;;) { /* send what libpq still holds */
    int f = PQflush(pg), ev;
    if (f <= 0) break;
    ev = wait_io(fd, POLLIN | POLLOUT, deadline);
    if (ev == 0) { *late = 1; return NULL; }
    if (ev < 0) break;
    if ((ev & POLLIN) && !PQconsumeInput(pg)) break;
  }
  for (;;) {
    ExecStatusType st;
    while (PQisBusy(pg)) {
      int ev = wait_io(fd, POLLIN, deadline);
      if (ev == 0) {
        PQclear(last);
        *late = 1;
        return NULL;
      }
      if (ev < 0 || !PQconsumeInput(pg)) break; /* lost: PQgetResult reports it */
    }
    r = PQgetResult(pg);
    if (!r) break;
    PQclear(last);
    last = r;
    st = PQresultStatus(r);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH ||
        PQstatus(pg) == CONNECTION_BAD)
      break;
  }
  return last;
}

/* Waits for the statement just sent (sent: PQsend*'s result). On a passed
 * deadline: cancel, drain within the grace, flag timed_out (or broken). A
 * statement that completed before the cancel reached it returns its result:
 * a write is never reported as timed out after it committed. */
static PGresult *finish(session *s, int sent) {
  PGresult *r;
  int late;
  if (!sent) return PQmakeEmptyPGresult(s->pg, PGRES_FATAL_ERROR);
  r = collect(s, s->deadline, &late);
  if (!late) return r;
  s->timed_out = 1;
  {
    double grace = session_now() + CANCEL_GRACE;
    if (send_cancel(s->pg, grace) != 0) {
      s->broken = 1;
    } else {
      r = collect(s, grace, &late);
      if (late) {
        s->broken = 1;
      } else if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) {
        s->timed_out = 0; /* it finished before the cancel arrived: that is its answer */
        return r;
      }
      PQclear(r);
    }
  }
  return PQmakeEmptyPGresult(s->pg, PGRES_FATAL_ERROR);
}

/* While a statement is sent and awaited the connection is non-blocking, so
 * that a send to a server that stopped reading waits on the socket (with the
 * deadline) instead of in the kernel; COPY and pipelines set their own mode. */
static void nonblocking(session *s, int on) {
  if (s->pg) (void)PQsetnonblocking(s->pg, on);
}

PGresult *session_query(session *s, const char *sql) {
  PGresult *r;
  s->timed_out = 0;
  nonblocking(s, 1);
  r = finish(s, PQsendQuery(s->pg, sql));
  nonblocking(s, 0);
  return r;
}

int session_wait(session *s, int writing) {
  int fd = PQsocket(s->pg);
  for (;;) {
    double until = s->deadline, now;
    int ev;
    if (s->broken) return -1;
    if (s->timed_out) {
      until = session_now() + CANCEL_RETRY;
      if (until > s->cancel_until) until = s->cancel_until;
    }
    ev = wait_io(fd, writing ? POLLIN | POLLOUT : POLLIN, until);
    if (ev < 0) return -1;
    if (ev > 0) return (ev & ~POLLOUT) && !PQconsumeInput(s->pg) ? -1 : 0;
    now = session_now();
    if (!s->timed_out) {
      s->timed_out = 1;
      s->cancel_until = now + CANCEL_GRACE;
    } else if (now >= s->cancel_until) {
      s->broken = 1;
      return -1;
    }
    if (send_cancel(s->pg, s->cancel_until) != 0) {
      s->broken = 1;
      return -1;
    }
  }
}

PGresult *session_get_result(session *s) {
  while (PQisBusy(s->pg))
    if (session_wait(s, 0) != 0) return s->broken ? NULL : PQgetResult(s->pg); /* lost: libpq reports it */
  return PQgetResult(s->pg);
}

PGresult *session_finish(session *s, int sent) {
  return finish(s, sent);
}

void session_savepoint_name(char *buf, size_t n, unsigned id) {
  snprintf(buf, n, "crpg_sp_%u", id);
}

void session_tx_reset(session *s) {
  s->tx_id = 0;
  s->tx_owner = NULL;
  s->sp_top = 0;
  s->abandoned = -1;
}

int session_settle_tx(session *s, double timeout) {
  char sql[160];
  PGresult *r;
  int depth = s->abandoned, ok;
  double saved = s->deadline;
  if (depth < 0) return 0;
  if (session_is_broken(s)) return -1;
  if (depth == 0 || depth > s->sp_top) {
    snprintf(sql, sizeof sql, "ROLLBACK");
  } else {
    char name[32];
    session_savepoint_name(name, sizeof name, s->sp_ids[depth]);
    snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT %s; RELEASE SAVEPOINT %s", name, name);
  }
  s->deadline = session_now() + timeout;
  r = session_query(s, sql);
  s->deadline = saved;
  ok = PQresultStatus(r) == PGRES_COMMAND_OK && !s->timed_out;
  PQclear(r);
  s->timed_out = 0;
  if (!ok) {
    s->broken = 1;
    return -1;
  }
  if (depth == 0 || depth > s->sp_top) session_tx_reset(s);
  else {
    s->sp_top = depth - 1;
    s->abandoned = -1;
  }
  return 0;
}

int session_check_idle(session *s) {
  struct pollfd p;
  PGnotify *note;
  int r;

  if (session_is_broken(s) || s->fatal_seen) return -1;
  p.fd = PQsocket(s->pg);
  p.events = POLLIN;
  p.revents = 0;
  r = poll(&p, 1, 0);
  if (r == 0) return 0;
  if (r < 0) return errno == EINTR ? 0 : -1;
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return -1;
  /* Something arrived while idle: a FATAL (terminated), EOF, or harmless
   * NOTIFY / ParameterStatus traffic. Let libpq read and sort it. */
  if (!PQconsumeInput(s->pg) || session_is_broken(s)) return -1;
  (void)PQisBusy(s->pg); /* parses what was read; an idle-time error reaches on_notice */
  if (s->fatal_seen || session_is_broken(s)) return -1;
  while ((note = PQnotifies(s->pg)) != NULL) PQfreemem(note);
  return 0;
}

void session_settle(session *s) {
  PGresult *r;
  long empty = 0;
  if (!s->stream_open) return;
  s->stream_open = 0;
  s->stream_gen++;
  s->timed_out = 0;
  if (!s->pg || PQstatus(s->pg) != CONNECTION_OK) {
    s->deadline = 0;
    return;
  }
  /* Bounded in time, like an abandoned transaction's rollback: the cancel
   * goes out within CANCEL_GRACE and what is left of the stream must drain
   * within SETTLE_TIMEOUT (session_wait re-sends the cancel); a server that
   * does not answer costs the connection (broken), never a hang. */
  s->deadline = session_now() + SETTLE_TIMEOUT;
  if (PQconsumeInput(s->pg) && PQisBusy(s->pg) && send_cancel(s->pg, session_now() + CANCEL_GRACE) != 0)
    s->broken = 1;
  if (!s->broken && PQpipelineStatus(s->pg) != PQ_PIPELINE_OFF) (void)PQpipelineSync(s->pg);
  while (!s->broken) {
    ExecStatusType st;
    r = session_get_result(s);
    if (s->broken) {
      PQclear(r);
      break;
    }
    if (!r) {
      if (PQpipelineStatus(s->pg) == PQ_PIPELINE_OFF || PQexitPipelineMode(s->pg)) break;
      if (++empty > 100000) break;  /* never spin on a broken pipeline */
      continue;  /* results of later pipelined statements remain */
    }
    st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_COPY_OUT) {
      char *row;
      int n;
      while ((n = PQgetCopyData(s->pg, &row, 1)) != -1) {
        if (n > 0) PQfreemem(row);
        else if (n == -2 || session_wait(s, 0) != 0) break;
      }
    } else if (st == PGRES_COPY_IN) {
      (void)PQputCopyEnd(s->pg, "abandoned by the client");
    } else if (st == PGRES_FATAL_ERROR && PQstatus(s->pg) != CONNECTION_OK) {
      break;
    }
  }
  s->deadline = 0;
  s->timed_out = 0;
}

/* FNV-1a over the SQL text and the parameter types. */
static unsigned long long hash_sql(const char *sql, size_t len, int nparams, const Oid *types) {
  unsigned long long h = 1469598103934665603ULL;
  size_t i;
  for (i = 0; i < len; i++) {
    h ^= (unsigned char)sql[i];
    h *= 1099511628211ULL;
  }
  for (i = 0; i < (size_t)nparams; i++) {
    h ^= (unsigned long long)(types ? types[i] : 0) + 0x9e37U;
    h *= 1099511628211ULL;
  }
  return h;
}

static int same_types(const stmt_entry *e, int nparams, const Oid *types) {
  int i;
  if (e->nparams != nparams) return 0;
  for (i = 0; i < nparams; i++)
    if (e->types[i] != (types ? types[i] : 0)) return 0;
  return 1;
}

static stmt_entry *cache_find(session *s, unsigned long long h, const char *sql, size_t len,
                              int nparams, const Oid *types) {
  int i;
  for (i = 0; i < s->cache_count; i++) {
    stmt_entry *e = &s->cache[i];
    if (e->hash == h && e->len == len && memcmp(e->sql, sql, len) == 0 && same_types(e, nparams, types))
      return e;
  }
  return NULL;
}

static void stmt_name(char *buf, size_t n, unsigned id) {
  snprintf(buf, n, "crpg_%u", id);
}

/* Copies the entry's name into buf (n bytes, cut to fit). */
static void copy_name(char *buf, size_t n, const stmt_entry *e) {
  size_t len = strlen(e->name);
  if (n == 0) return;
  if (len >= n) len = n - 1;
  memcpy(buf, e->name, len);
  buf[len] = '\0';
}

/* Removes entry e; tells the server to deallocate it when that cannot fail
 * (not inside an aborted transaction). Names are never reused, so a statement
 * the server still holds cannot collide with a new one. */
static void cache_drop(session *s, stmt_entry *e, int deallocate) {
  if (deallocate && PQtransactionStatus(s->pg) != PQTRANS_INERROR) {
    char sql[48];
    PGresult *r;
    snprintf(sql, sizeof sql, "DEALLOCATE crpg_%u", e->id);
    r = finish(s, PQsendQuery(s->pg, sql));
    PQclear(r);
  }
  entry_free(e);
  *e = s->cache[--s->cache_count];
}

/* True when the server says the cached statement can no longer be used as
 * prepared: changed result type, dropped object, or gone from the session. */
static int is_stale_plan(const PGresult *r) {
  return sqlstate_lookup(PQresultErrorField(r, PG_DIAG_SQLSTATE),
                         PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)).stale_plan;
}

/* Learns (once per entry) whether every result column of the prepared
 * statement may come in binary, and at what level (binary.h: dates need an
 * ISO DateStyle, timestamptz a fixed-offset TimeZone, checked at each run).
 * A failed describe leaves it unknown (text). */
static int result_format(session *s, stmt_entry *e, const char *name) {
  if (e->result_format < 0) {
    PGresult *r = PQdescribePrepared(s->pg, name);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
      int i, n = PQnfields(r), level = n > 0 ? BINARY_YES : BINARY_NO;
      for (i = 0; i < n && level != BINARY_NO; i++) {
        int col = binary_eligible(PQftype(r, i));
        level = col == BINARY_NO ? BINARY_NO : col > level ? col : level;
      }
      e->result_format = level;
    }
    PQclear(r);
  }
  return e->result_format > 0 &&
         binary_session_allows(e->result_format, PQparameterStatus(s->pg, "DateStyle"),
                               PQparameterStatus(s->pg, "TimeZone"),
                               PQparameterStatus(s->pg, "integer_datetimes"));
}

static PGresult *exec_prepared(session *s, stmt_entry *e, int nparams, const char *const *values,
                               const int *lengths, const int *formats) {
  int binary;
  e->last_used = ++s->tick;
  binary = s->want_binary && result_format(s, e, e->name);
  if (binary) s->binary_results++;
  return finish(s, PQsendQueryPrepared(s->pg, e->name, nparams, values, lengths, formats, binary));
}

/* Copies a statement's text (NUL-terminated) and parameter types for a cache
 * entry. 0, or -1 when out of memory (nothing is left allocated). */
static int copy_statement(const char *sql, size_t len, int nparams, const Oid *types,
                          char **copy, Oid **typecopy) {
  int i;
  *copy = malloc(len + 1);
  *typecopy = malloc(sizeof(Oid) * (size_t)(nparams > 0 ? nparams : 1));
  if (!*copy || !*typecopy) {
    free(*copy);
    free(*typecopy);
    return -1;
  }
  for (i = 0; i < nparams; i++) (*typecopy)[i] = types ? types[i] : 0;
  memcpy(*copy, sql, len);
  (*copy)[len] = '\0';
  return 0;
}

/* Adds an entry named crpg_<id> owning copy and typecopy (a free slot must exist). */
static stmt_entry *cache_insert(session *s, unsigned long long h, char *copy, size_t len,
                                Oid *typecopy, int nparams, unsigned id) {
  stmt_entry *e = &s->cache[s->cache_count++];
  e->hash = h;
  e->sql = copy;
  e->len = len;
  e->types = typecopy;
  e->nparams = nparams;
  e->described = NULL;
  e->result_format = -1;
  e->id = id;
  stmt_name(e->name, sizeof e->name, id);
  e->dirty_sql = -1;
  e->last_used = 0;
  return e;
}

/* Prepares sql under a new name, evicting the least recently used entry when
 * the cache is full. Returns NULL on success, else the failed result. */
static PGresult *prepare(session *s, const char *sql, size_t len, unsigned long long h,
                         int nparams, const Oid *types, stmt_entry **out) {
  char name[32];
  PGresult *r;
  char *copy;
  Oid *typecopy;
  int i;
  unsigned id;

  if (s->cache_count == s->cache_size) {
    int lru = 0;
    for (i = 1; i < s->cache_count; i++)
      if (s->cache[i].last_used < s->cache[lru].last_used) lru = i;
    cache_drop(s, &s->cache[lru], 1);
    if (s->timed_out) return PQmakeEmptyPGresult(s->pg, PGRES_FATAL_ERROR);
  }
  if (copy_statement(sql, len, nparams, types, &copy, &typecopy) != 0)
    return PQmakeEmptyPGresult(s->pg, PGRES_FATAL_ERROR);
  /* the name is used up even when preparing fails or is cancelled midway */
  id = s->next_stmt_id++;
  stmt_name(name, sizeof name, id);
  r = finish(s, PQsendPrepare(s->pg, name, copy, nparams, types));
  if (PQresultStatus(r) != PGRES_COMMAND_OK || s->timed_out) {
    free(copy);
    free(typecopy);
    return r;
  }
  PQclear(r);
  *out = cache_insert(s, h, copy, len, typecopy, nparams, id);
  return NULL;
}

static PGresult *exec_cached(session *s, const char *sql, size_t sql_len, int nparams,
                             const Oid *types, const char *const *values,
                             const int *lengths, const int *formats, int *cache_hit);
static void note_entry(session *s, stmt_entry *e);

PGresult *session_exec(session *s, const char *sql, size_t sql_len, int nparams,
                       const Oid *types, const char *const *values,
                       const int *lengths, const int *formats, int *cache_hit) {
  PGresult *r;
  nonblocking(s, 1);
  r = exec_cached(s, sql, sql_len, nparams, types, values, lengths, formats, cache_hit);
  nonblocking(s, 0);
  return r;
}

static PGresult *exec_cached(session *s, const char *sql, size_t sql_len, int nparams,
                             const Oid *types, const char *const *values,
                             const int *lengths, const int *formats, int *cache_hit) {
  unsigned long long h;
  stmt_entry *e;
  PGresult *r;
  int was_idle;

  *cache_hit = 0;
  s->timed_out = 0;
  if (s->cache_size == 0) {
    session_note_sql(s, sql, sql_len);
    return finish(s, PQsendQueryParams(s->pg, sql, nparams, types, values, lengths, formats, 0));
  }

  was_idle = PQtransactionStatus(s->pg) == PQTRANS_IDLE;
  h = hash_sql(sql, sql_len, nparams, types);
  e = cache_find(s, h, sql, sql_len, nparams, types);
  if (e) {
    note_entry(s, e);
    s->cache_hits++;
    *cache_hit = 1;
    r = exec_prepared(s, e, nparams, values, lengths, formats);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || s->timed_out || !is_stale_plan(r)) return r;
    /* Stale: forget it. Outside a transaction nothing ran, so prepare again;
     * inside one the transaction is aborted and the caller sees the error. */
    cache_drop(s, e, was_idle);
    if (!was_idle) return r;
    PQclear(r);
    *cache_hit = 0;
    s->cache_hits--;
    s->cache_misses++;
    s->cache_replans++;
  } else {
    session_note_sql(s, sql, sql_len);
    s->cache_misses++;
  }
  r = prepare(s, sql, sql_len, h, nparams, types, &e);
  if (r) return r;
  return exec_prepared(s, e, nparams, values, lengths, formats);
}

/* ---- what a borrower may leave behind --------------------------------------- */

static int ident_char(unsigned char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Case-insensitive: does the word at p (n bytes) equal w, or (prefix) start with it? */
static int word_is(const char *p, size_t n, const char *w, int prefix) {
  size_t i, wl = strlen(w);
  if (prefix ? n < wl : n != wl) return 0;
  for (i = 0; i < wl; i++) {
    char c = p[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != w[i]) return 0;
  }
  return 1;
}

/* True when sql may leave session state behind (SET, LISTEN, temp tables,
 * advisory locks, ...): the keyword scan behind reset = "auto". */
static int sql_is_dirty(const char *sql, size_t len) {
  static const char *const first[] = {"set", "reset", "listen", "prepare", "declare", "load",
                                      "discard", "do", "call", NULL};
  static const char *const anywhere[] = {"set_config", "temp", "temporary", "dblink_connect",
                                         "dblink_connect_u", NULL};
  static const char *const prefixes[] = {"pg_advisory_lock", "pg_try_advisory_lock", NULL};
  size_t i = 0;
  int at_start = 1;
  while (i < len) {
    unsigned char c = (unsigned char)sql[i];
    if (ident_char(c) && !(c >= '0' && c <= '9')) {
      size_t st = i;
      int k;
      while (i < len && ident_char((unsigned char)sql[i])) i++;
      if (at_start)
        for (k = 0; first[k]; k++)
          if (word_is(sql + st, i - st, first[k], 0)) return 1;
      for (k = 0; anywhere[k]; k++)
        if (word_is(sql + st, i - st, anywhere[k], 0)) return 1;
      for (k = 0; prefixes[k]; k++)
        if (word_is(sql + st, i - st, prefixes[k], 1)) return 1;
      at_start = 0;
      continue;
    }
    if (c == '-' && i + 1 < len && sql[i + 1] == '-') { /* comments keep at_start */
      while (i < len && sql[i] != '\n') i++;
      continue;
    }
    if (c == '/' && i + 1 < len && sql[i + 1] == '*') {
      i += 2;
      while (i + 1 < len && !(sql[i] == '*' && sql[i + 1] == '/')) i++;
      i += 2;
      continue;
    }
    if (c == ';') at_start = 1;
    else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') at_start = 0;
    i++;
  }
  return 0;
}

void session_note_sql(session *s, const char *sql, size_t len) {
  s->used = 1;
  if (!s->dirty && sql_is_dirty(sql, len)) s->dirty = 1;
}

/* session_note_sql for a cached statement: the scan runs once per entry. */
static void note_entry(session *s, stmt_entry *e) {
  s->used = 1;
  if (s->dirty) return;
  if (e->dirty_sql < 0) e->dirty_sql = sql_is_dirty(e->sql, e->len);
  s->dirty = e->dirty_sql;
}

int session_reset(session *s, double timeout) {
  PGresult *r;
  int ok;
  double saved = s->deadline;
  if (session_is_broken(s)) return -1;
  s->deadline = session_now() + timeout;
  r = session_query(s, "DISCARD ALL");
  s->deadline = saved;
  ok = PQresultStatus(r) == PGRES_COMMAND_OK && !s->timed_out;
  PQclear(r);
  s->timed_out = 0;
  session_cache_clear(s);   /* DISCARD ALL deallocated them */
  if (!ok) {
    s->broken = 1;
    return -1;
  }
  s->used = s->dirty = 0;
  return 0;
}


int session_pipeline_name(session *s, const char *sql, size_t len, int nparams, const Oid *types,
                          char *name, size_t namelen) {
  unsigned long long h;
  stmt_entry *e;
  char *copy;
  Oid *typecopy;
  if (s->cache_size == 0) return 0;
  h = hash_sql(sql, len, nparams, types);
  e = cache_find(s, h, sql, len, nparams, types);
  if (e) {
    s->cache_hits++;
    e->last_used = ++s->tick;
    copy_name(name, namelen, e);
    return 1;
  }
  if (s->cache_count == s->cache_size) return 0;  /* evicting would need a round trip */
  if (copy_statement(sql, len, nparams, types, &copy, &typecopy) != 0) return 0;
  s->cache_misses++;
  e = cache_insert(s, h, copy, len, typecopy, nparams, s->next_stmt_id++);
  e->last_used = ++s->tick;
  copy_name(name, namelen, e);
  return 2;
}

void session_pipeline_forget(session *s, const char *name) {
  int i;
  for (i = 0; i < s->cache_count; i++) {
    if (strcmp(s->cache[i].name, name) == 0) {
      cache_drop(s, &s->cache[i], 0);
      return;
    }
  }
}

/* Copies the parameter types of a described statement into out. */
static PGresult *describe(session *s, const char *name, int nparams, Oid *out) {
  PGresult *r = PQdescribePrepared(s->pg, name);
  int i;
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return r;
  for (i = 0; i < nparams; i++) out[i] = i < PQnparams(r) ? PQparamtype(r, i) : 0;
  PQclear(r);
  return NULL;
}

PGresult *session_param_types(session *s, const char *sql, size_t sql_len, int nparams,
                              const Oid *types, Oid *out) {
  unsigned long long h;
  stmt_entry *e;
  PGresult *r;

  if (s->cache_size == 0) { /* the unnamed statement, replaced by the next one */
    r = PQprepare(s->pg, "", sql, nparams, types);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) return r;
    PQclear(r);
    return describe(s, "", nparams, out);
  }
  h = hash_sql(sql, sql_len, nparams, types);
  e = cache_find(s, h, sql, sql_len, nparams, types);
  if (!e) {
    s->cache_misses++;
    if ((r = prepare(s, sql, sql_len, h, nparams, types, &e)) != NULL) return r;
    e->last_used = ++s->tick;
  }
  if (!e->described) {
    Oid *d = malloc(sizeof(Oid) * (size_t)(nparams > 0 ? nparams : 1));
    if (!d) return PQmakeEmptyPGresult(s->pg, PGRES_FATAL_ERROR);
    if ((r = describe(s, e->name, nparams, d)) != NULL) {
      free(d);
      if (is_stale_plan(r)) cache_drop(s, e, 0);
      return r;
    }
    e->described = d;
  }
  memcpy(out, e->described, sizeof(Oid) * (size_t)nparams);
  return NULL;
}
