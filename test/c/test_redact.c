/* redact: conninfo URLs and keyword strings, and plain secret replacement. */
#include <string.h>

#include "redact.h"
#include "test.h"

#define CONN(in, want) conn_case(__FILE__, __LINE__, in, want)
#define SECRET(msg, secret, want) secret_case(__FILE__, __LINE__, msg, secret, want)

static void conn_case(const char *file, int line, const char *in, const char *want)
{
  strbuf b;

  strbuf_init(&b);
  redact_conninfo(&b, in);
  test_check(!b.failed, file, line, "not failed");
  test_check_mem(file, line, in, b.data ? b.data : "", b.len, want, strlen(want));
  strbuf_free(&b);
}

static void secret_case(const char *file, int line, const char *msg, const char *secret,
                        const char *want)
{
  strbuf b;

  strbuf_init(&b);
  redact_secret(&b, msg, secret);
  test_check_mem(file, line, msg ? msg : "(null)", b.data ? b.data : "", b.len, want,
                 strlen(want));
  strbuf_free(&b);
}

static void test_urls(void)
{
  CONN("postgres://user:secret@host:5432/db?sslmode=require&password=x",
       "postgres://user:***@host:5432/db?sslmode=require&password=***");
  CONN("postgresql://user:secret@host/db", "postgresql://user:***@host/db");
  CONN("POSTGRES://user:secret@host/db", "POSTGRES://user:***@host/db");
  CONN("postgres://user@host/db", "postgres://user@host/db");
  CONN("postgres://host/db", "postgres://host/db");
  CONN("postgres://", "postgres://");
  CONN("postgresql://", "postgresql://");
  CONN("postgres://:secret@host", "postgres://:***@host");
  CONN("postgres://user:@host", "postgres://user:***@host");
  CONN("postgres://user:secret@", "postgres://user:***@");
  CONN("postgres://user:secret@h1:5432,h2:5433/db", "postgres://user:***@h1:5432,h2:5433/db");
  CONN("postgres://user:secret@[::1]:5432/db", "postgres://user:***@[::1]:5432/db");
  CONN("postgres://user:p%40ss@host", "postgres://user:***@host");
  /* raw '@', '/', ':' and '?' in a password are still masked whole */
  CONN("postgres://user:p@ss@host/db", "postgres://user:***@host/db");
  CONN("postgres://user:a/b:c@host/db", "postgres://user:***@host/db");
  CONN("postgres://user:pa?ss@host/db?sslmode=off", "postgres://user:***@host/db?sslmode=off");
  CONN("postgres://u:pw@host/db?application_name=a@b", "postgres://u:***@host/db?application_name=a@b");
  /* query parameters */
  CONN("postgres://host/db?password=x", "postgres://host/db?password=***");
  CONN("postgres://host/db?password=", "postgres://host/db?password=***");
  CONN("postgres://host/db?PASSWORD=x&a=b", "postgres://host/db?PASSWORD=***&a=b");
  CONN("postgres://host/db?pass%77ord=x&a=b", "postgres://host/db?pass%77ord=***&a=b");
  CONN("postgres://host/db?sslpassword=x", "postgres://host/db?sslpassword=***");
  CONN("postgres://host/db?a=1&password=x&b=2&password=y",
       "postgres://host/db?a=1&password=***&b=2&password=***");
  CONN("postgres://host/db?password", "postgres://host/db?password");
  CONN("postgres://host/db?passwordx=1", "postgres://host/db?passwordx=1");
  /* other parameters get the loose treatment: anything ending in password= */
  CONN("postgres://host/db?xpassword=2", "postgres://host/db?xpassword=***");
  CONN("postgres://host/db?", "postgres://host/db?");
  CONN("postgres://host/db?&&", "postgres://host/db?&&");
  CONN("postgres://u:p@host/db?user=x&password=s%20t&sslmode=require",
       "postgres://u:***@host/db?user=x&password=***&sslmode=require");
  /* leading whitespace is kept */
  CONN("  postgres://u:p@h", "  postgres://u:***@h");
}

static void test_keywords(void)
{
  CONN("", "");
  CONN("host=localhost dbname=app", "host=localhost dbname=app");
  CONN("host=h password=secret dbname=d", "host=h password=*** dbname=d");
  CONN("password=secret", "password=***");
  CONN("password = secret", "password=***");
  CONN("password= secret", "password=***");
  CONN("password =secret", "password=***");
  CONN("password = 'sec ret\\'s'", "password=***");
  CONN("host=h password='sec ret\\'s' user=u", "host=h password=*** user=u");
  CONN("password=''", "password=***");
  CONN("password=", "password=***");
  CONN("password= host=h", "password=***"); /* libpq: the value is "host=h" */
  CONN("password=a\\ b user=u", "password=*** user=u");
  CONN("PassWord=x", "PassWord=***");
  CONN("sslpassword=x sslmode=require", "sslpassword=*** sslmode=require");
  CONN("  host = h \t password=x\n", "  host = h \t password=***\n");
  CONN("user='it''s' password=x", "user='it''s' password=***");
  CONN("application_name='my app' password='p w'", "application_name='my app' password=***");
  CONN("passwordx=1 xpassword=2", "passwordx=1 xpassword=2");
  CONN("password=a password=b", "password=*** password=***");
  /* a nested conninfo or URL in a value is masked whole */
  CONN("dbname='host=x password=y' user=u", "dbname=*** user=u");
  CONN("dbname=postgres://u:p@h/db user=u", "dbname=*** user=u");
  CONN("dbname='passwords' user=u", "dbname='passwords' user=u");
}

static void test_unparsable(void)
{
  /* libpq would reject these; every password= value is masked anyway */
  CONN("password='unterminated", "password=***");
  CONN("host=h password='sec ret", "host=h password=***");
  CONN("garbage password=secret", "garbage password=***");
  CONN("x password = 'a b' y", "x password=***");
  CONN("x password='a\\' b' y", "x password=***");
  CONN("x PASSWORD=s&y=1", "x PASSWORD=***");
  CONN("host=h password=Qz 7' y", "host=h password=***");
  CONN("x password", "x password");
  CONN("=x password=y", "=x password=***");
  CONN("x //u:p@h", "x //u:p@h");
  CONN("x postgres://u:p@h/db y", "x postgres://u:***@h/db y");
  CONN("x ://u:p@h?q", "x ://u:***@h?q");
  CONN("x ://nopass@h", "x ://nopass@h");
  CONN("password", "password");
  CONN("'", "'");
}

static void test_null_and_append(void)
{
  strbuf b;

  strbuf_init(&b);
  redact_conninfo(&b, NULL);
  CHECK_INT(b.len, 0);
  strbuf_puts(&b, "conn: ");
  redact_conninfo(&b, "host=h password=x");
  CHECK_MEM(b.data, b.len, "conn: host=h password=***");
  strbuf_reset(&b);
  strbuf_puts(&b, "conn: ");
  redact_conninfo(&b, "x password='y"); /* the fallback keeps what was there */
  CHECK_MEM(b.data, b.len, "conn: x password=***");
  strbuf_free(&b);
}

static void test_secret(void)
{
  SECRET("password authentication failed", "hunter2", "password authentication failed");
  SECRET("bad password hunter2 given", "hunter2", "bad password *** given");
  SECRET("hunter2", "hunter2", "***");
  SECRET("hunter2hunter2", "hunter2", "******");
  SECRET("xhunter2yhunter2z", "hunter2", "x***y***z");
  SECRET("aaaa", "aa", "******");
  SECRET("aaa", "aa", "***a");
  SECRET("hunter", "hunter2", "hunter");
  SECRET("", "hunter2", "");
  SECRET("message", "", "message");
  SECRET("message", NULL, "message");
  SECRET("a.b", ".", "a***b");
  SECRET("\xc3\xa9t\xc3\xa9", "\xc3\xa9", "***t***");
  SECRET(NULL, "x", "");
}

#define QUOTED(msg, want) quoted_case(__FILE__, __LINE__, msg, want)

static void quoted_case(const char *file, int line, const char *msg, const char *want)
{
  strbuf b;

  strbuf_init(&b);
  redact_quoted(&b, msg);
  test_check_mem(file, line, msg, b.data ? b.data : "", b.len, want, strlen(want));
  strbuf_free(&b);
}

/* Where libpq and the redactor would split user:password@ differently. */
static void test_ambiguous(void)
{
  CHECK_INT(redact_ambiguous("postgres://u:p@ssw0rd@127.0.0.1:1/db"), 1);
  CHECK_INT(redact_ambiguous("postgres://u:pa/ss@host/db"), 1);
  CHECK_INT(redact_ambiguous("  postgresql://u:a@b@c@host"), 1);
  CHECK_INT(redact_ambiguous("postgres://u:pw@h/db@x"), 1);      /* '@' in the path: encode it */
  CHECK_INT(redact_ambiguous("postgres://u:p%40ss@h/db"), 0);
  CHECK_INT(redact_ambiguous("postgres://u:pa?ss@host/db"), 0);   /* libpq reads pa?ss too */
  CHECK_INT(redact_ambiguous("postgres://u:pa:ss@host/db"), 0);
  CHECK_INT(redact_ambiguous("postgres://u:pw#frag@h/db"), 0);
  CHECK_INT(redact_ambiguous("postgres://h:5432/db?user=a@b"), 0);
  CHECK_INT(redact_ambiguous("postgres://h/db@x"), 0);            /* no password anywhere */
  CHECK_INT(redact_ambiguous("postgres://u@h/db"), 0);
  CHECK_INT(redact_ambiguous("host=h password=p@ss@x"), 0);       /* keywords: one reading */
  CHECK_INT(redact_ambiguous("postgres://u:secret"), 1);         /* host u, port "secret"? */
  CHECK_INT(redact_ambiguous("postgres://u:secret/db"), 1);
  CHECK_INT(redact_ambiguous("postgres://h:5432,h2:x9/db"), 1);
  CHECK_INT(redact_ambiguous("postgres://h:5432,h2:5433/db"), 0);
  CHECK_INT(redact_ambiguous("postgres://[::1]:5432/db"), 0);
  CHECK_INT(redact_ambiguous("postgres://h/db?port=x"), 0);
  CHECK_INT(redact_ambiguous(""), 0);
  CHECK_INT(redact_ambiguous(NULL), 0);
}

static void test_odd_port(void)
{
  CONN("postgres://u:secret", "postgres://u:***");
  CONN("postgres://u:secret/db?sslmode=require", "postgres://u:***");
  CONN("postgres://h:5432/db", "postgres://h:5432/db");
  CONN("postgres://[::1]:5432/db", "postgres://[::1]:5432/db");
}

static void test_quoted(void)
{
  QUOTED("invalid percent-encoded token: \"p%4\"", "invalid percent-encoded token: \"***\"");
  QUOTED("missing \"=\" after \"secret\" in connection info string",
         "missing \"***\" in connection info string");
  QUOTED("no quotes here", "no quotes here");
  QUOTED("unterminated \"secr", "unterminated \"***");
  QUOTED("in URI: \"postgres://u:a\"b@[::1\"", "in URI: \"***\"");
}

void test_redact(void)
{
  test_urls();
  test_keywords();
  test_unparsable();
  test_null_and_append();
  test_secret();
  test_ambiguous();
  test_quoted();
  test_odd_port();
}
