/* pool_core and sqlstate without a server: config checks, the stats snapshot,
 * a connect failure counted, a closed pool refusing acquire, and the SQLSTATE
 * table. The connect attempt goes to a Unix socket directory that does not
 * exist, so it fails at once. */
#include <string.h>

#include "pool_core.h"
#include "sqlstate.h"
#include "test.h"

#define NOWHERE "host=/nonexistent/coderunner-test port=1 dbname=x user=x"

static void test_config(void)
{
  pool_config c;
  char err[256];

  pool_config_defaults(&c);
  CHECK_INT(pool_config_check(&c, err, sizeof err), 0);
  CHECK_INT(c.min, 2);
  CHECK_INT(c.max, 10);

  c.min = 11;
  CHECK_INT(pool_config_check(&c, err, sizeof err), -1);
  CHECK_STR(err, "pool option min must not exceed max");
  CHECK(pool_core_new(&c, err, sizeof err) == NULL);

  pool_config_defaults(&c);
  c.max = 0;
  c.min = 0;
  CHECK_INT(pool_config_check(&c, err, sizeof err), -1);
  CHECK_STR(err, "pool option max must be a number >= 1");

  pool_config_defaults(&c);
  c.max = 10001;
  CHECK_INT(pool_config_check(&c, err, sizeof err), -1);
  CHECK_STR(err, "pool option max or statement_cache is too large");

  pool_config_defaults(&c);
  c.connect_timeout = 0;
  CHECK_INT(pool_config_check(&c, err, sizeof err), -1);

  pool_config_defaults(&c);
  c.conninfo = NULL;
  CHECK_INT(pool_config_check(&c, err, sizeof err), -1);
}

static void test_lifecycle(void)
{
  pool_config c;
  pool_stats st;
  pool_core *p;
  session *s = NULL;
  char err[256];

  pool_config_defaults(&c);
  c.conninfo = NOWHERE;
  c.min = 0;
  c.max = 3;
  c.connect_timeout = 1;
  p = pool_core_new(&c, err, sizeof err);
  CHECK(p != NULL);
  if (!p)
    return;
  CHECK_STR(pool_core_conninfo(p), NOWHERE);
  CHECK(pool_core_slow_ms(p) == 1000);

  pool_core_stats(p, &st);
  CHECK_INT(st.total, 0);
  CHECK_INT(st.idle, 0);
  CHECK_INT(st.min, 0);
  CHECK_INT(st.max, 3);
  CHECK_INT(st.queries, 0);
  CHECK_STR(st.last_error, "");

  /* no server there: the failure is counted and remembered */
  CHECK_INT(pool_core_acquire(p, &s, err, sizeof err), KIND_CONNECT);
  CHECK(s == NULL);
  pool_core_stats(p, &st);
  CHECK_INT(st.errors[KIND_CONNECT], 1);
  CHECK_INT(st.total, 0);
  CHECK(st.last_error[0] != '\0');
  CHECK(strstr(st.last_error, "password") == NULL);

  pool_core_count_query(p, KIND_SERVER, 1, 0);
  pool_core_count_query(p, -1, 0, 1);
  pool_core_count_query(p, KIND_COUNT + 3, 0, 1); /* a registered kind: not counted */
  pool_core_stats(p, &st);
  CHECK_INT(st.queries, 3);
  CHECK_INT(st.slow_queries, 1);
  CHECK_INT(st.errors[KIND_SERVER], 1);
  CHECK_INT(st.cache_hits, 2);
  CHECK_INT(st.cache_misses, 1);

  /* a second holder keeps the struct alive past the first one's detach */
  pool_core_attach(p);
  CHECK_INT(pool_core_close(p, 0), 0);
  CHECK_INT(pool_core_close(p, 0), 0); /* idempotent */
  pool_core_detach(p);
  CHECK_INT(pool_core_acquire(p, &s, err, sizeof err), KIND_CLOSED);
  CHECK_STR(err, "the pool is closed");
  pool_core_stats(p, &st);
  CHECK_INT(st.errors[KIND_CLOSED], 1);
  pool_core_maintain(p); /* a closed pool opens nothing */
  pool_core_stats(p, &st);
  CHECK_INT(st.total, 0);
  pool_core_detach(p); /* the last reference: freed (ASan reports a leak otherwise) */
}

static void test_sqlstates(void)
{
  CHECK_INT(sqlstate_lookup(NULL, NULL).kind, KIND_SERVER);
  CHECK_INT(sqlstate_lookup("23505", NULL).kind, KIND_CONFLICT);
  CHECK_INT(sqlstate_lookup("57014", NULL).kind, KIND_TIMEOUT);
  CHECK_INT(sqlstate_lookup("55P03", NULL).kind, KIND_TIMEOUT);
  CHECK_INT(sqlstate_lookup("08006", NULL).kind, KIND_CLOSED);
  CHECK_INT(sqlstate_lookup("57P01", NULL).kind, KIND_CLOSED);
  CHECK_INT(sqlstate_lookup("2350", NULL).kind, KIND_SERVER);
  CHECK_INT(sqlstate_lookup("235050", NULL).kind, KIND_SERVER);
  CHECK_INT(sqlstate_lookup("40001", NULL).retryable, 1);
  CHECK_INT(sqlstate_lookup("40P01", NULL).retryable, 1);
  CHECK_INT(sqlstate_lookup("40000", NULL).retryable, 0);
  CHECK_INT(sqlstate_lookup("26000", NULL).stale_plan, 1);
  CHECK_INT(sqlstate_lookup("0A000", "cached plan must not change result type").stale_plan, 1);
  CHECK_INT(sqlstate_lookup("0A000", "something else").stale_plan, 0);
  CHECK_INT(sqlstate_lookup("0A000", NULL).stale_plan, 0);
  CHECK_INT(sqlstate_lookup("XX000", "cache lookup failed for type 1").stale_plan, 1);
  CHECK_INT(sqlstate_lookup("23514", NULL).rejects_value, 1);
  CHECK_INT(sqlstate_lookup("23505", NULL).rejects_value, 0);
  CHECK_STR(sqlstate_kind_names[KIND_CONFLICT], "conflict");
}

void test_pool_core(void)
{
  test_config();
  test_lifecycle();
  test_sqlstates();
}
