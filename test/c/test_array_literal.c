/* array_literal: parsing the server's array output and quoting elements. */
#include <string.h>

#include "array_literal.h"
#include "test.h"

/* Records the callbacks as text: '(' begin, ')' end, "[text]" an element, 'N' NULL. */
typedef struct recorder {
  strbuf out;
  int calls;
  int stop_at; /* return 7 from the stop_at-th callback (1-based); 0 never */
} recorder;

static int rec_step(recorder *r)
{
  r->calls++;
  return r->stop_at != 0 && r->calls == r->stop_at ? 7 : 0;
}

static int rec_begin(void *ctx)
{
  recorder *r = ctx;
  strbuf_putc(&r->out, '(');
  return rec_step(r);
}

static int rec_end(void *ctx)
{
  recorder *r = ctx;
  strbuf_putc(&r->out, ')');
  return rec_step(r);
}

static int rec_element(void *ctx, const char *s, size_t len, int is_null)
{
  recorder *r = ctx;
  if (is_null) {
    strbuf_putc(&r->out, 'N');
  } else {
    strbuf_putc(&r->out, '[');
    strbuf_append(&r->out, s, len);
    strbuf_putc(&r->out, ']');
  }
  return rec_step(r);
}

static const array_literal_handlers handlers = { rec_begin, rec_end, rec_element };

/* Parses text (NUL-terminated, passed without its NUL) with delim; returns the rc
 * and leaves the record in out (caller frees). */
static int run(const char *text, size_t len, char delim, strbuf *out)
{
  recorder r;
  int rc;

  strbuf_init(&r.out);
  r.calls = 0;
  r.stop_at = 0;
  rc = array_literal_parse(text, len, delim, &handlers, &r);
  *out = r.out;
  return rc;
}

#define OK(text, want) ok_case(__FILE__, __LINE__, text, ',', want)
#define OK_DELIM(text, delim, want) ok_case(__FILE__, __LINE__, text, delim, want)
#define BAD(text) bad_case(__FILE__, __LINE__, text, ',')

static void ok_case(const char *file, int line, const char *text, char delim,
                    const char *want)
{
  strbuf out;
  int rc = run(text, strlen(text), delim, &out);

  test_check_int(file, line, text, rc, 0);
  test_check_mem(file, line, text, out.data ? out.data : "", out.len, want, strlen(want));
  strbuf_free(&out);
}

static void bad_case(const char *file, int line, const char *text, char delim)
{
  strbuf out;
  int rc = run(text, strlen(text), delim, &out);

  test_check_int(file, line, text, rc, -1);
  strbuf_free(&out);
}

static void test_basic(void)
{
  OK("{}", "()");
  OK("{1}", "([1])");
  OK("{1,2,3}", "([1][2][3])");
  OK("{a,b c,d}", "([a][b c][d])");
  OK("{{1,2},{3,4}}", "(([1][2])([3][4]))");
  OK("{{{1}},{{2}}}", "((([1]))(([2])))");
  OK("{{},{}}", "(()())");
  OK("{-1.5,2e10,+3}", "([-1.5][2e10][+3])");
}

static void test_null(void)
{
  OK("{NULL}", "(N)");
  OK("{null,Null,nULL}", "(NNN)");
  OK("{1,NULL,3}", "([1]N[3])");
  OK("{\"NULL\"}", "([NULL])");       /* quoted: the string */
  OK("{\\NULL}", "([NULL])");         /* escaped: the string */
  OK("{NUL\\L}", "([NULL])");
  OK("{ NULL }", "(N)");              /* surrounding spaces trimmed */
  OK("{NULLS,NUL,xNULL}", "([NULLS][NUL][xNULL])");
  OK("{{NULL,1},{2,NULL}}", "((N[1])([2]N))");
}

static void test_quoted(void)
{
  OK("{\"\"}", "([])");
  OK("{\"\",\"\"}", "([][])");
  OK("{\"a b\"}", "([a b])");
  OK("{\"a,b\"}", "([a,b])");
  OK("{\"{}\"}", "([{}])");
  OK("{\"a\\\"b\"}", "([a\"b])");
  OK("{\"a\\\\b\"}", "([a\\b])");
  OK("{\"\\a\\b\\n\"}", "([abn])");     /* any escaped byte stands for itself */
  OK("{\"\\\\\"}", "([\\])");
  OK("{\"\\\"\"}", "([\"])");
  OK("{\"  padded  \"}", "([  padded  ])");
  OK("{ \"x\" , \"y\" }", "([x][y])");
  OK("{\"line\nbreak\"}", "([line\nbreak])");
  OK("{\"h\xc3\xa9llo\",\xe2\x82\xac}", "([h\xc3\xa9llo][\xe2\x82\xac])");
  OK("{\"a\",b,\"c\"}", "([a][b][c])");
}

static void test_unquoted(void)
{
  OK("{ a }", "([a])");
  OK("{  a b  ,\tc\n}", "([a b][c])");
  OK("{a\\,b}", "([a,b])");             /* escaped delimiter */
  OK("{a\\}b}", "([a}b])");
  OK("{a\\\"b}", "([a\"b])");
  OK("{\\ a\\ }", "([ a ])");            /* escaped spaces are kept */
  OK("{a\\  }", "([a ])");
  OK("{\\\\}", "([\\])");
  OK("{a\\{}", "([a{])");
}

static void test_dimensions(void)
{
  OK("[1:3]={1,2,3}", "([1][2][3])");
  OK("[0:1][1:2]={{1,2},{3,4}}", "(([1][2])([3][4]))");
  OK("[-2:-1]={a,b}", "([a][b])");
  OK("[3]={a,b,c}", "([a][b][c])");
  OK(" [1:1] = {x}", "([x])");
  BAD("[1:3]{1,2,3}");
  BAD("[1:3]=");
  BAD("[1:]={1}");
  BAD("[:1]={1}");
  BAD("[a:b]={1}");
  BAD("[1:3={1}");
  BAD("={1}");
  BAD("[1:3]=[1:3]={1}");
}

static void test_delimiter(void)
{
  OK_DELIM("{(1,2),(3,4);(5,6),(7,8)}", ';', "([(1,2),(3,4)][(5,6),(7,8)])");
  OK_DELIM("{a;b}", ';', "([a][b])");
  OK_DELIM("{\"a;b\";c}", ';', "([a;b][c])");
  OK_DELIM("{a\\;b}", ';', "([a;b])");
  OK_DELIM("{{1;2};{3;4}}", ';', "(([1][2])([3][4]))");
  OK_DELIM("{a b|c}", '|', "([a b][c])");
  OK_DELIM("{a, b}", ';', "([a, b])");
  bad_case(__FILE__, __LINE__, "{a}", '{');
  bad_case(__FILE__, __LINE__, "{a}", '"');
  bad_case(__FILE__, __LINE__, "{a}", '\\');
}

static void test_malformed(void)
{
  BAD("");
  BAD("   ");
  BAD("{");
  BAD("}");
  BAD("{}}");
  BAD("{{}");
  BAD("{1,}");
  BAD("{,1}");
  BAD("{1,,2}");
  BAD("{ , }");
  BAD("{1 2\"}");
  BAD("{\"abc}");
  BAD("{\"abc\\\"}");
  BAD("{\"a\"b}");                      /* text after a quoted element */
  BAD("{\"a\" \"b\"}");
  BAD("{a\"b\"}");
  BAD("{a{b}}");
  BAD("{1,{2}}");                       /* elements and sub-arrays mixed */
  BAD("{{2},1}");
  BAD("{1}x");
  BAD("{1} {2}");
  BAD("x{1}");
  BAD("1,2");
  BAD("{a\\");
  BAD("{a\\}");
  BAD("{\"a\\");
  BAD("{}{}");
}

static void test_depth(void)
{
  char text[300];
  char want[300];
  int i;

  /* 64 levels are fine */
  for (i = 0; i < 64; i++) {
    text[i] = '{';
    text[64 + i] = '}';
    want[i] = '(';
    want[64 + i] = ')';
  }
  text[128] = '\0';
  want[128] = '\0';
  OK(text, want);
  /* 65 are not */
  for (i = 0; i < 65; i++) {
    text[i] = '{';
    text[65 + i] = '}';
  }
  text[130] = '\0';
  BAD(text);
}

static void test_length_bound(void)
{
  strbuf out;
  /* only the first len bytes count; no NUL terminator is needed */
  const char text[] = { '{', '1', ',', '2', '}', '}', 'x' };
  int rc = run(text, 5, ',', &out);

  CHECK_INT(rc, 0);
  CHECK_MEM(out.data, out.len, "([1][2])");
  strbuf_free(&out);
  rc = run(text, 4, ',', &out);
  CHECK_INT(rc, -1);
  strbuf_free(&out);
  rc = run("{\"a\0b\",c\0}", 10, ',', &out); /* NUL bytes are ordinary bytes */
  CHECK_INT(rc, 0);
  CHECK_BYTES(out.data, out.len, "([a\0b][c\0])", 11);
  strbuf_free(&out);
}

static void test_handler_stop(void)
{
  recorder r;
  int rc;

  strbuf_init(&r.out);
  r.calls = 0;
  r.stop_at = 3; /* '(' '[1]' '[2]' -> stop */
  rc = array_literal_parse("{1,2,3}", 7, ',', &handlers, &r);
  CHECK_INT(rc, 7);
  CHECK_MEM(r.out.data, r.out.len, "([1][2]");
  strbuf_free(&r.out);

  strbuf_init(&r.out);
  r.calls = 0;
  r.stop_at = 1;
  rc = array_literal_parse("{1}", 3, ',', &handlers, &r);
  CHECK_INT(rc, 7);
  strbuf_free(&r.out);

  strbuf_init(&r.out);
  r.calls = 0;
  r.stop_at = 3; /* stop in end() */
  rc = array_literal_parse("{1}", 3, ',', &handlers, &r);
  CHECK_INT(rc, 7);
  strbuf_free(&r.out);

  /* NULL handlers: validation only */
  {
    array_literal_handlers none = { NULL, NULL, NULL };
    CHECK_INT(array_literal_parse("{{1,\"a\\\"\"},{NULL,b\\c}}", 22, ',', &none, NULL), 0);
    CHECK_INT(array_literal_parse("{1,}", 4, ',', &none, NULL), -1);
  }
}

static void test_append_quoted(void)
{
  strbuf b;
  strbuf out;
  int rc;

  strbuf_init(&b);
  array_literal_append_quoted(&b, "", 0);
  CHECK_MEM(b.data, b.len, "\"\"");
  strbuf_reset(&b);
  array_literal_append_quoted(&b, "abc", 3);
  CHECK_MEM(b.data, b.len, "\"abc\"");
  strbuf_reset(&b);
  array_literal_append_quoted(&b, "a\"b\\c", 5);
  CHECK_MEM(b.data, b.len, "\"a\\\"b\\\\c\"");
  strbuf_reset(&b);
  array_literal_append_quoted(&b, "NULL", 4);
  CHECK_MEM(b.data, b.len, "\"NULL\"");
  strbuf_reset(&b);
  array_literal_append_quoted(&b, "\"\\", 2);
  CHECK_MEM(b.data, b.len, "\"\\\"\\\\\"");
  strbuf_reset(&b);
  array_literal_append_quoted(&b, "x\0y", 3);
  CHECK_BYTES(b.data, b.len, "\"x\0y\"", 5);

  /* round trip through the parser */
  strbuf_reset(&b);
  strbuf_putc(&b, '{');
  array_literal_append_quoted(&b, "a,\"b\"\\ {c}", 10);
  strbuf_putc(&b, ',');
  array_literal_append_quoted(&b, "NULL", 4);
  strbuf_putc(&b, ',');
  array_literal_append_quoted(&b, " ", 1);
  strbuf_putc(&b, '}');
  rc = run(b.data, b.len, ',', &out);
  CHECK_INT(rc, 0);
  CHECK_MEM(out.data, out.len, "([a,\"b\"\\ {c}][NULL][ ])");
  strbuf_free(&out);
  strbuf_free(&b);
}

void test_array_literal(void)
{
  test_basic();
  test_null();
  test_quoted();
  test_unquoted();
  test_dimensions();
  test_delimiter();
  test_malformed();
  test_depth();
  test_length_bound();
  test_handler_stop();
  test_append_quoted();
}
