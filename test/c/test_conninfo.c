/* conninfo: deriving a keyword conninfo from any form, with changes on top;
 * errors that never echo a password. */
#include <libpq-fe.h>
#include <string.h>

#include "conninfo.h"
#include "test.h"

/* The value libpq reads for key from s, or NULL. */
static char value[256];
static const char *parsed(const char *s, const char *key)
{
  char *msg = NULL;
  PQconninfoOption *opts, *o;
  const char *found = NULL;

  if (s == NULL)
    return "(no result)";
  opts = PQconninfoParse(s, &msg);

  if (opts == NULL) {
    if (msg)
      PQfreemem(msg);
    return "(unparsable)";
  }
  for (o = opts; o->keyword != NULL; o++)
    if (strcmp(o->keyword, key) == 0 && o->val != NULL) {
      strncpy(value, o->val, sizeof value - 1);
      value[sizeof value - 1] = '\0';
      found = value;
    }
  PQconninfoFree(opts);
  return found;
}

static int derive(strbuf *b, const char *in, const char *key, const char *val, char *err)
{
  conninfo_change c;
  c.key = key;
  c.value = val;
  strbuf_init(b);
  return conninfo_with(b, in, &c, key ? 1 : 0, err, 200);
}

static void test_forms(void)
{
  strbuf b;
  char err[200];

  /* the snag from the issue: a URL cannot take an appended "dbname=" */
  CHECK_INT(derive(&b, "postgres://eco:s3cret@db.example:6543/eco?sslmode=disable", "dbname", "other", err), 0);
  CHECK_STR(parsed(b.data, "dbname"), "other");
  CHECK_STR(parsed(b.data, "user"), "eco");
  CHECK_STR(parsed(b.data, "password"), "s3cret");
  CHECK_STR(parsed(b.data, "host"), "db.example");
  CHECK_STR(parsed(b.data, "port"), "6543");
  CHECK_STR(parsed(b.data, "sslmode"), "disable");
  CHECK(strstr(b.data, "postgres://") == NULL);
  strbuf_free(&b);

  /* keywords, quoting kept through a round trip */
  CHECK_INT(derive(&b, "host=h dbname=x password='it\\'s \\\\ odd'", "user", "o'neil", err), 0);
  CHECK_STR(parsed(b.data, "password"), "it's \\ odd");
  CHECK_STR(parsed(b.data, "user"), "o'neil");
  CHECK_STR(parsed(b.data, "dbname"), "x");
  strbuf_free(&b);

  /* empty: only the change; libpq reads the rest from PG* when connecting */
  CHECK_INT(derive(&b, "", "dbname", "t_1", err), 0);
  CHECK_STR(b.data, "dbname='t_1'");
  strbuf_free(&b);

  /* no change at all: the explicit options, keyword form */
  CHECK_INT(derive(&b, "postgresql:///db1", NULL, NULL, err), 0);
  CHECK_STR(b.data, "dbname='db1'");
  strbuf_free(&b);
  CHECK_INT(derive(&b, "", NULL, NULL, err), 0);
  CHECK(b.data != NULL && b.len == 0);
  strbuf_free(&b);

  /* a NULL value removes the key */
  CHECK_INT(derive(&b, "host=h password=pw dbname=d", "password", NULL, err), 0);
  CHECK(parsed(b.data, "password") == NULL);
  CHECK_STR(parsed(b.data, "host"), "h");
  strbuf_free(&b);
}

static void test_several_changes(void)
{
  strbuf b;
  char err[200];
  conninfo_change c[3];

  c[0].key = "dbname"; c[0].value = "a";
  c[1].key = "application_name"; c[1].value = "spec";
  c[2].key = "dbname"; c[2].value = "b";
  strbuf_init(&b);
  CHECK_INT(conninfo_with(&b, "dbname=x", c, 3, err, sizeof err), 0);
  CHECK_STR(parsed(b.data, "dbname"), "b");
  CHECK_STR(parsed(b.data, "application_name"), "spec");
  strbuf_free(&b);
}

static void test_errors(void)
{
  strbuf b;
  char err[200];

  CHECK_INT(derive(&b, "host=h", "no_such_option", "hunter2", err), -1);
  CHECK(strstr(err, "no_such_option") != NULL);
  CHECK(strstr(err, "hunter2") == NULL);
  strbuf_free(&b);

  /* libpq quotes the offending text; a password there is masked */
  CHECK_INT(derive(&b, "postgres://u:pw@h/db?hunter2", "dbname", "x", err), -1);
  CHECK(strncmp(err, "invalid conninfo: ", 18) == 0);
  CHECK(strstr(err, "hunter2") == NULL);
  strbuf_free(&b);
  CHECK_INT(derive(&b, "password=hunter 2", "dbname", "x", err), -1);
  CHECK(strstr(err, "hunter") == NULL);
  CHECK(strstr(err, "\"=\"") != NULL);
  strbuf_free(&b);
  CHECK_INT(derive(&b, "password='hunter2", "dbname", "x", err), -1);
  CHECK(strstr(err, "hunter2") == NULL);
  strbuf_free(&b);
  /* a known keyword stays readable */
  CHECK_INT(derive(&b, "postgres://h/db?hunter2=1", "dbname", "x", err), -1);
  CHECK(strstr(err, "hunter2") == NULL);
  strbuf_free(&b);
}

void test_conninfo(void)
{
  test_forms();
  test_several_changes();
  test_errors();
}
