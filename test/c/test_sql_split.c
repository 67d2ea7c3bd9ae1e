/* sql_split: statements, quotes, dollar quotes, comments, lines. */
#include <string.h>

#include "sql_split.h"
#include "strbuf.h"
#include "test.h"

/* Records each statement as "<line>:<text>|". */
typedef struct recorder {
  strbuf out;
  int calls;
  int stop_at;
} recorder;

static int rec(void *ctx, const char *stmt, size_t len, int line)
{
  recorder *r = ctx;

  strbuf_printf(&r->out, "%d:", line);
  strbuf_append(&r->out, stmt, len);
  strbuf_putc(&r->out, '|');
  r->calls++;
  return r->stop_at != 0 && r->calls == r->stop_at ? 9 : 0;
}

#define SPLIT(text, want) split_case(__FILE__, __LINE__, text, sizeof(text) - 1, 0, want)
#define UNTERMINATED(text, want) split_case(__FILE__, __LINE__, text, sizeof(text) - 1, -1, want)

static void split_case(const char *file, int line, const char *text, size_t len, int want_rc,
                       const char *want)
{
  recorder r;
  int rc;

  strbuf_init(&r.out);
  r.calls = 0;
  r.stop_at = 0;
  rc = sql_split(text, len, rec, &r);
  test_check_int(file, line, text, rc, want_rc);
  test_check_mem(file, line, text, r.out.data ? r.out.data : "", r.out.len, want, strlen(want));
  strbuf_free(&r.out);
}

static void test_basic(void)
{
  SPLIT("", "");
  SPLIT("   \n\t ", "");
  SPLIT(";", "");
  SPLIT(";;; ;\n;", "");
  SPLIT("SELECT 1", "1:SELECT 1|");
  SPLIT("SELECT 1;", "1:SELECT 1|");
  SPLIT("SELECT 1; SELECT 2", "1:SELECT 1|1:SELECT 2|");
  SPLIT("SELECT 1;\nSELECT 2;\n", "1:SELECT 1|2:SELECT 2|");
  SPLIT("  SELECT 1  ;  ", "1:SELECT 1|");
  SPLIT("\n\n  SELECT\n  1;\n\nSELECT 2", "3:SELECT\n  1|6:SELECT 2|");
  SPLIT("SELECT 1;;SELECT 2", "1:SELECT 1|1:SELECT 2|");
  SPLIT("a;b;c", "1:a|1:b|1:c|");
  SPLIT("\r\nSELECT 1;\r\nSELECT 2;\r\n", "2:SELECT 1|3:SELECT 2|");
}

static void test_quotes(void)
{
  SPLIT("SELECT 'a;b'; SELECT 2", "1:SELECT 'a;b'|1:SELECT 2|");
  SPLIT("SELECT 'it''s;'; x", "1:SELECT 'it''s;'|1:x|");
  SPLIT("SELECT '';x", "1:SELECT ''|1:x|");
  SPLIT("SELECT '''';x", "1:SELECT ''''|1:x|");
  SPLIT("SELECT 'a\\'; x", "1:SELECT 'a\\'|1:x|"); /* standard strings: '\' is literal */
  SPLIT("SELECT E'a\\';x';y", "1:SELECT E'a\\';x'|1:y|");
  SPLIT("SELECT e'a\\';x';y", "1:SELECT e'a\\';x'|1:y|");
  SPLIT("SELECT E'a''b;c';y", "1:SELECT E'a''b;c'|1:y|");
  SPLIT("SELECT E'\\\\';y", "1:SELECT E'\\\\'|1:y|");
  SPLIT("SELECT E'\\\\\\'';y", "1:SELECT E'\\\\\\''|1:y|");
  SPLIT("SELECT name'a\\';b", "1:SELECT name'a\\'|1:b|"); /* not an E'' */
  SPLIT("SELECT 1E'a\\';b", "1:SELECT 1E'a\\'|1:b|");
  SPLIT("SELECT U&'\\';b", "1:SELECT U&'\\'|1:b|");
  SPLIT("SELECT \"a;b\"; x", "1:SELECT \"a;b\"|1:x|");
  SPLIT("SELECT \"a\"\";b\"; x", "1:SELECT \"a\"\";b\"|1:x|");
  SPLIT("SELECT \"a\\\";b", "1:SELECT \"a\\\"|1:b|");
  SPLIT("SELECT 'a--b', 'c/*d'; x", "1:SELECT 'a--b', 'c/*d'|1:x|");
  SPLIT("SELECT 'line1\nline2';\nSELECT 3", "1:SELECT 'line1\nline2'|3:SELECT 3|");
  SPLIT("'a';'b'", "1:'a'|1:'b'|");
  SPLIT("SELECT 'a' 'b';", "1:SELECT 'a' 'b'|");
}

static void test_dollar(void)
{
  SPLIT("SELECT $$a;b$$; x", "1:SELECT $$a;b$$|1:x|");
  SPLIT("SELECT $t$a;$$;b$t$; x", "1:SELECT $t$a;$$;b$t$|1:x|");
  SPLIT("SELECT $tag_1$a;$tag_1$;x", "1:SELECT $tag_1$a;$tag_1$|1:x|");
  SPLIT("SELECT $t$a;$T$;b$t$; x", "1:SELECT $t$a;$T$;b$t$|1:x|"); /* tags are case-sensitive */
  SPLIT("SELECT $a$ $b$ ; $a$;x", "1:SELECT $a$ $b$ ; $a$|1:x|");
  SPLIT("SELECT $$'$$;x", "1:SELECT $$'$$|1:x|");
  SPLIT("SELECT $$--$$;x", "1:SELECT $$--$$|1:x|");
  SPLIT("SELECT $$$$;x", "1:SELECT $$$$|1:x|");
  SPLIT("SELECT $\xc3\xa9$;$\xc3\xa9$;x", "1:SELECT $\xc3\xa9$;$\xc3\xa9$|1:x|");
  /* not dollar quotes */
  SPLIT("SELECT $1; SELECT $2", "1:SELECT $1|1:SELECT $2|");
  SPLIT("SELECT $1$a;b", "1:SELECT $1$a|1:b|");
  SPLIT("SELECT a$$b;c", "1:SELECT a$$b|1:c|");
  SPLIT("SELECT foo$bar$;x", "1:SELECT foo$bar$|1:x|");
  SPLIT("SELECT $a b$;x", "1:SELECT $a b$|1:x|");
  SPLIT("SELECT $;x", "1:SELECT $|1:x|");
  SPLIT("SELECT 1$$;x", "1:SELECT 1$$|1:x|");
  /* a function body */
  SPLIT("CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;\n"
        "SELECT f();",
        "1:CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql|"
        "6:SELECT f()|");
  SPLIT("DO $body$ BEGIN PERFORM 1; END $body$;\n\nSELECT 2;",
        "1:DO $body$ BEGIN PERFORM 1; END $body$|3:SELECT 2|");
}

static void test_comments(void)
{
  SPLIT("-- only a comment", "");
  SPLIT("-- c1\n-- c2\n", "");
  SPLIT("/* only */", "");
  SPLIT("/* a */ ; /* b */ ;", "");
  SPLIT("-- lead\nSELECT 1; -- trail\nSELECT 2 -- x; y\n;",
        "2:SELECT 1|3:SELECT 2|");
  SPLIT("/* c\n */ SELECT 1 /* in; side */ + 2; x", "2:SELECT 1 /* in; side */ + 2|2:x|");
  SPLIT("/* a /* nested; */ still; */ SELECT 1;", "1:SELECT 1|");
  SPLIT("/* a /* b /* c */ */ ; */ SELECT 1", "1:SELECT 1|");
  SPLIT("SELECT 1 -- comment;\n", "1:SELECT 1|");
  SPLIT("SELECT 1 /* c */;", "1:SELECT 1|");  /* trailing comments are trimmed */
  SPLIT("SELECT 1 -- c\n + 2;", "1:SELECT 1 -- c\n + 2|");
  SPLIT("SELECT 2-1;", "1:SELECT 2-1|");
  SPLIT("SELECT 4/2;", "1:SELECT 4/2|");
  SPLIT("SELECT 1 -", "1:SELECT 1 -|");
  SPLIT("SELECT 1 /", "1:SELECT 1 /|");
  SPLIT("SELECT '--';", "1:SELECT '--'|");
  SPLIT("-- c\n\n/* d\n\n*/\n  SELECT 1", "6:SELECT 1|");
  SPLIT("/**/SELECT 1", "1:SELECT 1|");
  SPLIT("/*/ still comment */ x", "1:x|");
  SPLIT("SELECT 1 */ 2;", "1:SELECT 1 */ 2|");
}

static void test_parens_and_atomic(void)
{
  SPLIT("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); x",
        "1:CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))|1:x|");
  SPLIT("SELECT ((1);x", "1:SELECT ((1);x|");      /* unbalanced: one statement */
  SPLIT("SELECT 1);x", "1:SELECT 1)|1:x|");
  SPLIT("CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\nSELECT 3;",
        "1:CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND|6:SELECT 3|");
  SPLIT("create or replace procedure p() begin atomic insert into t values (1); end; call p();",
        "1:create or replace procedure p() begin atomic insert into t values (1); end|1:call p()|");
  SPLIT("CREATE FUNCTION f(x int) RETURNS int BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; END; x",
        "1:CREATE FUNCTION f(x int) RETURNS int BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; END|1:x|");
  /* BEGIN elsewhere is a transaction */
  SPLIT("BEGIN; SELECT 1; END;", "1:BEGIN|1:SELECT 1|1:END|");
  SPLIT("CREATE TABLE begin_t (a int); BEGIN; x", "1:CREATE TABLE begin_t (a int)|1:BEGIN|1:x|");
  SPLIT("CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; x",
        "1:CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql|1:x|");
  SPLIT("CREATE FUNCTION f() RETURNS int RETURN CASE WHEN true THEN 1 END; x",
        "1:CREATE FUNCTION f() RETURNS int RETURN CASE WHEN true THEN 1 END|1:x|");
  SPLIT("CREATE FUNCTION \"begin\"() RETURNS int LANGUAGE sql RETURN 1; x",
        "1:CREATE FUNCTION \"begin\"() RETURNS int LANGUAGE sql RETURN 1|1:x|");
}

static void test_unterminated(void)
{
  UNTERMINATED("SELECT 'abc", "1:SELECT 'abc|");
  UNTERMINATED("SELECT 1; SELECT 'abc;\n", "1:SELECT 1|1:SELECT 'abc;\n|");
  UNTERMINATED("SELECT E'abc\\'", "1:SELECT E'abc\\'|");
  UNTERMINATED("SELECT \"abc", "1:SELECT \"abc|");
  UNTERMINATED("SELECT $$abc", "1:SELECT $$abc|");
  UNTERMINATED("SELECT $t$abc$$", "1:SELECT $t$abc$$|");
  UNTERMINATED("SELECT $t$abc$t", "1:SELECT $t$abc$t|");
  UNTERMINATED("SELECT 1 /* abc", "1:SELECT 1 /* abc|");
  UNTERMINATED("SELECT 1 /* a /* b */", "1:SELECT 1 /* a /* b */|");
  UNTERMINATED("/* abc", "");
  UNTERMINATED("SELECT 1; /* abc", "1:SELECT 1|");
  UNTERMINATED("'", "1:'|");
  UNTERMINATED("E'\\", "1:E'\\|");
  UNTERMINATED("\n\nx '", "3:x '|");
  SPLIT("SELECT 1 -- unterminated line comments are fine", "1:SELECT 1|");
}

static void test_lines(void)
{
  SPLIT("SELECT 'a\nb\nc'; SELECT 2;\n/*\n\n*/SELECT 3; SELECT $$\n$$;\n-- x\nSELECT 5",
        "1:SELECT 'a\nb\nc'|3:SELECT 2|6:SELECT 3|6:SELECT $$\n$$|9:SELECT 5|");
  SPLIT("\"a\nb\"; E'\n\\\n'; x", "1:\"a\nb\"|2:E'\n\\\n'|4:x|");
}

static void test_misc(void)
{
  recorder r;
  const char text[] = { 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', ';', 'x' };

  /* only len bytes count */
  strbuf_init(&r.out);
  r.calls = 0;
  r.stop_at = 0;
  CHECK_INT(sql_split(text, 9, rec, &r), 0);
  CHECK_MEM(r.out.data, r.out.len, "1:SELECT 1|");
  strbuf_free(&r.out);
  /* NUL bytes are ordinary */
  strbuf_init(&r.out);
  CHECK_INT(sql_split("a\0b;c", 5, rec, &r), 0);
  CHECK_BYTES(r.out.data, r.out.len, "1:a\0b|1:c|", 10);
  strbuf_free(&r.out);
  /* the callback's non-zero value stops the split */
  strbuf_init(&r.out);
  r.calls = 0;
  r.stop_at = 2;
  CHECK_INT(sql_split("a;b;c;d", 7, rec, &r), 9);
  CHECK_INT(r.calls, 2);
  strbuf_free(&r.out);
  strbuf_init(&r.out);
  r.calls = 0;
  r.stop_at = 1;
  CHECK_INT(sql_split("a 'b", 4, rec, &r), 9); /* even for the unterminated piece */
  strbuf_free(&r.out);
  /* the statement points into the text */
  {
    const char *s = "  SELECT 1;";
    strbuf_init(&r.out);
    r.calls = 0;
    r.stop_at = 0;
    CHECK_INT(sql_split(s, strlen(s), rec, &r), 0);
    strbuf_free(&r.out);
  }
  SPLIT("SELECT \xc3\xa9t\xc3\xa9; SELECT '\xe2\x82\xac'", "1:SELECT \xc3\xa9t\xc3\xa9|1:SELECT '\xe2\x82\xac'|");
}

#define PARAMS(sql, want) CHECK_INT(sql_max_param(sql, strlen(sql)), want)

/* The highest $n, counted with the splitter's lexer. */
static void test_max_param(void)
{
  PARAMS("SELECT 1", 0);
  PARAMS("SELECT $1::int", 1);
  PARAMS("SELECT $2, $1, $10", 10);
  PARAMS("SELECT '$3' AS a, \"$4\", E'\\'$5', $1", 1);
  PARAMS("SELECT $$ $7 $$, $tag$ $8 $tag$ || $2", 2);
  PARAMS("SELECT 1 -- $3\n /* $4 /* $5 */ */ + $1", 1);
  PARAMS("SELECT a$1 FROM t", 0);          /* an identifier */
  PARAMS("SELECT $1; SELECT $3", 3);
  PARAMS("SELECT '$1", 0);                 /* unterminated: nothing counted inside */
  PARAMS("SELECT $", 0);
  PARAMS("SELECT $99999999999", 100000000); /* capped */
  /* the plain-text fast path (no quote, comment, dollar quote) agrees */
  PARAMS("select $1::int8 as id, 'user' || $1 as email", 1);
  PARAMS("insert into t values ($1, $2, $3)", 3);
  PARAMS("SELECT x$1 + $2, 1$3, ($4)", 4);
  PARAMS("SELECT $1$2", 1);
  PARAMS("SELECT $1 - $2 / $3 -$4", 4);
  PARAMS("SELECT $2 -- $9", 2);
  PARAMS("SELECT 'it''s $7', \"a\"\"$8\", $2 FROM t", 2);
  PARAMS("SELECT '$3''", 0);
  PARAMS("SELECT xe'$3', $1", 1);
  PARAMS("SELECT e'\\'$3', $1", 1);
  PARAMS("SELECT U&'$4' || $1", 1);
  PARAMS("SELECT \xc3\xa9$5, $1", 1);
  CHECK_INT(sql_max_param("$1", 2), 1);
  CHECK_INT(sql_max_param("", 0), 0);
}

void test_sql_split(void)
{
  test_max_param();
  test_basic();
  test_quotes();
  test_dollar();
  test_comments();
  test_parens_and_atomic();
  test_unterminated();
  test_lines();
  test_misc();
}
