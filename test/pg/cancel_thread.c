/* pg.cancel(token) from another OS thread, at the C level it rests on:
 * session_cancel_token, called from a second pthread while the first waits in
 * session_query on pg_sleep, stops the statement (SQLSTATE 57014); the
 * connection is usable afterwards; a closed session's token names nothing.
 * Needs a server (the PG* environment); spec/pg_cancel_thread_spec.lua builds
 * and runs it. Prints one line; exits 0 when every check held. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "session.h"

static unsigned long long token;
static int sent = -2;

static void *canceller(void *arg)
{
  struct timespec ts = {0, 300000000};
  char err[256];
  (void)arg;
  nanosleep(&ts, NULL);
  sent = session_cancel_token(token, err, sizeof err);
  return NULL;
}

int main(void)
{
  char err[512];
  int timed_out, ok;
  double started, took;
  const char *state;
  pthread_t t;
  PGresult *r;
  session *s = session_open("", 10, 0, err, sizeof err, &timed_out);

  if (!s) {
    fprintf(stderr, "cancel_thread: cannot connect: %s\n", err);
    return 2;
  }
  token = s->cancel_token;
  if (pthread_create(&t, NULL, canceller, NULL) != 0) return 2;
  started = session_now();
  r = session_query(s, "select pg_sleep(10)");
  took = session_now() - started;
  pthread_join(t, NULL);
  state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  ok = token != 0 && sent == 1 && state && strcmp(state, "57014") == 0 && took < 5;
  printf("cancel_thread: token=%llu sent=%d sqlstate=%s took=%.2fs", token, sent, state ? state : "-", took);
  PQclear(r);
  r = session_query(s, "select 1");
  ok = ok && PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  session_close(s);
  ok = ok && session_cancel_token(token, err, sizeof err) == 0;
  printf(" %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
