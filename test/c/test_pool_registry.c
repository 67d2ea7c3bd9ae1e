/* pool_registry without a server (min = 0, so nothing connects): one pool per
 * name, options that disagree refused with the option named, close for every
 * holder, the last release frees, private pools stay out of the registry, the
 * maintenance thread starts and stops, and threads asking for one new name at
 * once get one pool. */
#include <pthread.h>
#include <string.h>

#include "pool_registry.h"
#include "test.h"

#define NOWHERE "host=/nonexistent/coderunner-test port=1 dbname=x user=x"

static void config(pool_config *c)
{
  pool_config_defaults(c);
  c->conninfo = NOWHERE;
  c->min = 0;
  c->max = 4;
}

static void test_named(void)
{
  pool_config c;
  pool_entry *a, *b;
  int created = -1;
  char err[256];

  config(&c);
  a = pool_entry_open("reg-a", &c, POOL_OPT_CONNINFO | POOL_OPT_MIN | POOL_OPT_MAX, &created, err, sizeof err);
  CHECK(a != NULL);
  CHECK_INT(created, 1);
  CHECK_INT(pool_registry_count(), 1);
  CHECK_STR(pool_entry_name(a), "reg-a");
  CHECK_INT(pool_entry_has_thread(a), 1);

  /* the same options, or none given: the same pool */
  b = pool_entry_open("reg-a", &c, POOL_OPT_MAX, &created, err, sizeof err);
  CHECK(b == a);
  CHECK_INT(created, 0);
  pool_config_defaults(&c); /* max 10, min 2: not given, so they do not count */
  b = pool_entry_open("reg-a", &c, 0, &created, err, sizeof err);
  CHECK(b == a);

  /* options that disagree: refused, naming the option */
  config(&c);
  c.max = 5;
  CHECK(pool_entry_open("reg-a", &c, POOL_OPT_MAX, &created, err, sizeof err) == NULL);
  CHECK_STR(err, "pool \"reg-a\" is already open with max = 4, not 5");
  config(&c);
  c.idle_timeout = 1.5;
  CHECK(pool_entry_open("reg-a", &c, POOL_OPT_IDLE_TIMEOUT, &created, err, sizeof err) == NULL);
  CHECK_STR(err, "pool \"reg-a\" is already open with idle_timeout = 30, not 1.5");
  config(&c);
  c.conninfo = "host=/nonexistent/other password=secret";
  CHECK(pool_entry_open("reg-a", &c, POOL_OPT_CONNINFO, &created, err, sizeof err) == NULL);
  CHECK_STR(err, "pool \"reg-a\" is already open with another conninfo");

  /* another name: another pool */
  config(&c);
  b = pool_entry_open("reg-b", &c, 0, &created, err, sizeof err);
  CHECK(b != NULL && b != a);
  CHECK_INT(pool_registry_count(), 2);
  pool_entry_release(b);
  CHECK_INT(pool_registry_count(), 1);

  /* close: closed for every holder, out of the registry, the thread stopped */
  CHECK_INT(pool_entry_close(a, 0), 0);
  CHECK_INT(pool_entry_is_closed(a), 1);
  CHECK_INT(pool_entry_has_thread(a), 0);
  CHECK_INT(pool_registry_count(), 0);
  {
    session *s;
    CHECK_INT(pool_core_acquire(pool_entry_core(a), &s, err, sizeof err), KIND_CLOSED);
  }
  CHECK_INT(pool_entry_close(a, 0), 0); /* idempotent */

  /* the name is free again: a new pool, while the old one's holders drain */
  b = pool_entry_open("reg-a", &c, 0, &created, err, sizeof err);
  CHECK(b != NULL && b != a);
  CHECK_INT(created, 1);
  CHECK_INT(pool_entry_is_closed(b), 0);
  pool_entry_release(a); /* three holds on the old one */
  pool_entry_release(a);
  pool_entry_release(a);
  pool_entry_release(b);  /* the last hold closes and frees */
  CHECK_INT(pool_registry_count(), 0);
}

static void test_private(void)
{
  pool_config c;
  pool_entry *a, *b;
  int created;
  char err[256];

  config(&c);
  a = pool_entry_open(NULL, &c, 0, &created, err, sizeof err);
  b = pool_entry_open("", &c, 0, &created, err, sizeof err);
  CHECK(a != NULL && b != NULL && a != b);
  CHECK(pool_entry_name(a) == NULL);
  CHECK_INT(pool_registry_count(), 0);
  CHECK_INT(pool_entry_has_thread(a), 1);
  pool_entry_release(a);
  pool_entry_release(b);

  c.max = 0;
  CHECK(pool_entry_open("reg-bad", &c, 0, &created, err, sizeof err) == NULL);
  CHECK_STR(err, "pool option max must be a number >= 1");
  CHECK_INT(pool_registry_count(), 0);
}

static void *open_shared(void *arg)
{
  pool_config c;
  int created;
  char err[256];
  config(&c);
  *(pool_entry **)arg = pool_entry_open("reg-race", &c, POOL_OPT_MAX, &created, err, sizeof err);
  return NULL;
}

static void test_threads(void)
{
  pthread_t t[8];
  pool_entry *got[8];
  int i;
  for (i = 0; i < 8; i++) pthread_create(&t[i], NULL, open_shared, &got[i]);
  for (i = 0; i < 8; i++) pthread_join(t[i], NULL);
  for (i = 0; i < 8; i++) CHECK(got[i] != NULL && got[i] == got[0]);
  CHECK_INT(pool_registry_count(), 1);
  for (i = 0; i < 8; i++) pool_entry_release(got[i]);
  CHECK_INT(pool_registry_count(), 0);
}

void test_pool_registry(void)
{
  test_named();
  test_private();
  test_threads();
}
