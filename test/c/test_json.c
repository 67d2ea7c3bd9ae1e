/* json: the streaming parser, json_append_string and json_append_double. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test.h"

/* Records the callbacks as text: n t f i<int> d<%.17g> "<string>" k"<key>"
 * { } [ ], each value followed by a space. */
typedef struct recorder {
  strbuf out;
  int calls;
  int stop_at;          /* return 5 from the stop_at-th callback; 0 never */
  const char *last_str; /* pointer handed to the last string callback */
} recorder;

static int rec_step(recorder *r)
{
  r->calls++;
  return r->stop_at != 0 && r->calls == r->stop_at ? 5 : 0;
}

static int rec_null(void *ctx)
{
  recorder *r = ctx;
  strbuf_puts(&r->out, "n ");
  return rec_step(r);
}

static int rec_boolean(void *ctx, int v)
{
  recorder *r = ctx;
  strbuf_puts(&r->out, v ? "t " : "f ");
  return rec_step(r);
}

static int rec_integer(void *ctx, long long v)
{
  recorder *r = ctx;
  strbuf_printf(&r->out, "i%lld ", v);
  return rec_step(r);
}

static int rec_number(void *ctx, double v)
{
  recorder *r = ctx;
  strbuf_printf(&r->out, "d%.17g ", v);
  return rec_step(r);
}

static int rec_string(void *ctx, const char *s, size_t len)
{
  recorder *r = ctx;
  r->last_str = s;
  strbuf_putc(&r->out, '"');
  strbuf_append(&r->out, s, len);
  strbuf_puts(&r->out, "\" ");
  return rec_step(r);
}

static int rec_key(void *ctx, const char *s, size_t len)
{
  recorder *r = ctx;
  strbuf_puts(&r->out, "k\"");
  strbuf_append(&r->out, s, len);
  strbuf_puts(&r->out, "\" ");
  return rec_step(r);
}

static int rec_begin_object(void *ctx)
{
  recorder *r = ctx;
  strbuf_puts(&r->out, "{ ");
  return rec_step(r);
}

static int rec_end_object(void *ctx)
{
  recorder *r = ctx;
  strbuf_puts(&r->out, "} ");
  return rec_step(r);
}

static int rec_begin_array(void *ctx)
{
  recorder *r = ctx;
  strbuf_puts(&r->out, "[ ");
  return rec_step(r);
}

static int rec_end_array(void *ctx)
{
  recorder *r = ctx;
  strbuf_puts(&r->out, "] ");
  return rec_step(r);
}

static const json_handlers handlers = {
  rec_null, rec_boolean, rec_integer, rec_number, rec_string,
  rec_begin_object, rec_key, rec_end_object, rec_begin_array, rec_end_array,
};

static void rec_init(recorder *r)
{
  strbuf_init(&r->out);
  r->calls = 0;
  r->stop_at = 0;
  r->last_str = NULL;
}

/* text is sizeof-style: explicit length, may contain NULs. */
#define OK(text, want) ok_case(__FILE__, __LINE__, text, sizeof(text) - 1, want)
#define OKL(text, len, want) ok_case(__FILE__, __LINE__, text, len, want)
#define BAD(text, offset) bad_case(__FILE__, __LINE__, text, sizeof(text) - 1, offset)

static void ok_case(const char *file, int line, const char *text, size_t len,
                    const char *want)
{
  recorder r;
  json_error err;
  int rc;

  rec_init(&r);
  rc = json_parse(text, len, &handlers, &r, &err);
  test_check_int(file, line, text, rc, 0);
  if (rc != 0)
    printf("  error at %zu: %s\n", err.offset, err.message);
  test_check_mem(file, line, text, r.out.data ? r.out.data : "", r.out.len, want,
                 strlen(want));
  strbuf_free(&r.out);
}

/* offset < 0: do not check it */
static void bad_case(const char *file, int line, const char *text, size_t len,
                     long offset)
{
  recorder r;
  json_error err;
  int rc;

  rec_init(&r);
  rc = json_parse(text, len, &handlers, &r, &err);
  test_check_int(file, line, text, rc, -1);
  test_check(err.message[0] != '\0', file, line, "error message set");
  if (offset >= 0)
    test_check_int(file, line, text, (long long)err.offset, offset);
  strbuf_free(&r.out);
  /* a NULL err is allowed */
  rec_init(&r);
  test_check_int(file, line, text, json_parse(text, len, &handlers, &r, NULL), -1);
  strbuf_free(&r.out);
}

static void test_literals(void)
{
  OK("null", "n ");
  OK("true", "t ");
  OK("false", "f ");
  OK(" \t\r\n null \n\t\r ", "n ");
  BAD("", 0);
  BAD("   ", 3);
  BAD("nul", 0);
  BAD("tru", 0);
  BAD("True", 0);
  BAD("NULL", 0);
  BAD("nulll", 4);
  BAD("truefalse", 4);
  BAD("true false", 5);
  BAD("undefined", 0);
  BAD("\xef\xbb\xbfnull", 0);   /* no byte order mark */
  BAD("\fnull", 0);             /* form feed is not JSON whitespace */
  BAD("\vnull", 0);
  BAD("null\0", 4);
}

static void test_integers(void)
{
  OK("0", "i0 ");
  OK("-0", "i0 ");
  OK("7", "i7 ");
  OK("-7", "i-7 ");
  OK("123456789", "i123456789 ");
  OK("9223372036854775807", "i9223372036854775807 ");
  OK("-9223372036854775808", "i-9223372036854775808 ");
  /* just past int64: a double */
  OK("9223372036854775808", "d9.2233720368547758e+18 ");
  OK("-9223372036854775809", "d-9.2233720368547758e+18 ");
  OK("18446744073709551616", "d1.8446744073709552e+19 ");
  OK("99999999999999999999999999999", "d9.9999999999999991e+28 ");
  OK("123456789012345678901234567890", "d1.2345678901234568e+29 ");
  OK("[1,-2,3]", "[ i1 i-2 i3 ] ");
}

static void test_numbers(void)
{
  OK("1.5", "d1.5 ");
  OK("-1.5", "d-1.5 ");
  OK("-0.0", "d-0 ");
  OK("0.0", "d0 ");
  OK("1e2", "d100 ");
  OK("1E2", "d100 ");
  OK("1e+2", "d100 ");
  OK("1E-2", "d0.01 ");
  OK("0e0", "d0 ");
  OK("2.5e-3", "d0.0025000000000000001 ");
  OK("1e007", "d10000000 ");    /* leading zeros are fine in an exponent */
  OK("0.1", "d0.10000000000000001 ");
  OK("1e400", "dinf ");         /* out of range: strtod's HUGE_VAL */
  OK("-1e400", "d-inf ");
  OK("1e-400", "d0 ");
  OK("4.9406564584124654e-324", "d4.9406564584124654e-324 ");
  OK("1.7976931348623157e308", "d1.7976931348623157e+308 ");
  OK("[1.5,2]", "[ d1.5 i2 ] ");
  OK("{\"a\":-0.5}", "{ k\"a\" d-0.5 } ");
  BAD("01", 0);
  BAD("-01", 0);
  BAD("00", 0);
  BAD("00.5", 0);
  BAD("[01]", 1);
  BAD("-", 1);
  BAD("- 1", 1);
  BAD("--1", 1);
  BAD("+1", 0);
  BAD(".5", 0);
  BAD("1.", 2);
  BAD("1.e5", 2);
  BAD("1e", 2);
  BAD("1e+", 3);
  BAD("1e-", 3);
  BAD("1E+-2", 3);
  BAD("0x10", 1);
  BAD("1.5.5", 3);
  BAD("Infinity", 0);
  BAD("-Infinity", 1);
  BAD("NaN", 0);
  BAD("1 2", 2);
  BAD("[1 2]", 3);
}

static void test_long_numbers(void)
{
  char text[5000];
  size_t i;

  /* a number far longer than any fixed buffer */
  text[0] = '1';
  text[1] = '.';
  for (i = 2; i < sizeof text - 1; i++)
    text[i] = '0';
  text[sizeof text - 1] = '5';
  OKL(text, sizeof text, "d1 ");
  /* a long integer goes to number() */
  for (i = 0; i < sizeof text; i++)
    text[i] = '9';
  OKL(text, 400, "dinf ");
  OKL(text, 300, "d1.0000000000000001e+300 ");
  /* the parser must not read past len: strtod would see the 7s */
  memcpy(text, "1.5e777777", 10);
  OKL(text, 3, "d1.5 ");
  memcpy(text, "12345", 5);
  OKL(text, 2, "i12 ");
}

static void test_strings(void)
{
  OK("\"\"", "\"\" ");
  OK("\"abc\"", "\"abc\" ");
  OK("\"a b\\\"c\"", "\"a b\"c\" ");
  OK("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\"\\/\b\f\n\r\t\" ");
  OK("\"\\u0041\"", "\"A\" ");
  OK("\"\\u007f\\u0080\"", "\"\x7f\xc2\x80\" ");
  OK("\"\\u00e9\\u00E9\"", "\"\xc3\xa9\xc3\xa9\" ");
  OK("\"\\u07ff\\u0800\"", "\"\xdf\xbf\xe0\xa0\x80\" ");
  OK("\"\\u20AC\"", "\"\xe2\x82\xac\" ");
  OK("\"\\uffff\"", "\"\xef\xbf\xbf\" ");
  OK("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\" ");
  OK("\"\\uD800\\uDC00\"", "\"\xf0\x90\x80\x80\" ");
  OK("\"\\udbff\\udfff\"", "\"\xf4\x8f\xbf\xbf\" ");
  OK("\"x\\u0041y\\ny\"", "\"xAy\ny\" ");
  OK("\"\\\\\\\\\"", "\"\\\\\" ");
  OK("\"\x7f\"", "\"\x7f\" ");   /* DEL is not a control character for JSON */
  OK("\"/\"", "\"/\" ");
  /* raw UTF-8 passes through */
  OK("\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"", "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\" ");
  OK("\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"",
     "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\" ");
  OK("\"\xed\x9f\xbf\xee\x80\x80\"", "\"\xed\x9f\xbf\xee\x80\x80\" "); /* around the surrogates */
  OK("\"\xc3\xa9\\n\xc3\xa9\"", "\"\xc3\xa9\n\xc3\xa9\" ");
}

static void test_string_nul(void)
{
  recorder r;
  json_error err;

  rec_init(&r);
  CHECK_INT(json_parse("\"a\\u0000b\"", 10, &handlers, &r, &err), 0);
  CHECK_BYTES(r.out.data, r.out.len, "\"a\0b\" ", 6);
  strbuf_free(&r.out);
}

static void test_string_pointer(void)
{
  recorder r;
  const char *text = "[\"plain\",\"esc\\naped\"]";

  /* a string without escapes is handed out in place */
  rec_init(&r);
  CHECK_INT(json_parse(text, 9, &handlers, &r, NULL), -1);
  strbuf_free(&r.out);
  rec_init(&r);
  r.stop_at = 2;
  CHECK_INT(json_parse(text, strlen(text), &handlers, &r, NULL), 5);
  CHECK(r.last_str == text + 2);
  strbuf_free(&r.out);
  rec_init(&r);
  CHECK_INT(json_parse(text, strlen(text), &handlers, &r, NULL), 0);
  CHECK(r.last_str != NULL && (r.last_str < text || r.last_str > text + strlen(text)));
  CHECK_MEM(r.out.data, r.out.len, "[ \"plain\" \"esc\naped\" ] ");
  strbuf_free(&r.out);
}

static void test_bad_strings(void)
{
  BAD("\"abc", 0);
  BAD("\"", 0);
  BAD("\"abc\\", 4);
  BAD("\"abc\\\"", 0);
  BAD("[\"a\\u00e9", 1);
  BAD("\"\\x41\"", 2);
  BAD("\"\\a\"", 2);
  BAD("\"\\'\"", 2);
  BAD("\"\\U0041\"", 2);
  BAD("\"\\u\"", 1);
  BAD("\"\\u12\"", 1);
  BAD("\"\\u12G4\"", 1);
  BAD("\"\\u-123\"", 1);
  /* a lone surrogate escape (the json type stores it) becomes U+FFFD */
  OK("\"\\ud800\"", "\"\xef\xbf\xbd\" ");
  OK("\"\\ud800x\"", "\"\xef\xbf\xbdx\" ");
  OK("\"\\ud800\\u0041\"", "\"\xef\xbf\xbd" "A\" ");
  OK("\"\\ud800\\ud800\"", "\"\xef\xbf\xbd\xef\xbf\xbd\" ");
  OK("\"\\udc00\"", "\"\xef\xbf\xbd\" ");
  OK("\"\\udfff\\ud800\"", "\"\xef\xbf\xbd\xef\xbf\xbd\" ");
  OK("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\" ");
  BAD("\"ab\\ud83d", 0);        /* unterminated */
  BAD("\"a\x01\"", 2);           /* raw control characters */
  BAD("\"\t\"", 1);
  BAD("\"\n\"", 1);
  BAD("\"\x1f\"", 1);
  BAD("\"\\n\x01\"", 3);
  BAD("\"a\0b\"", 2);
  BAD("\"\xff\"", 1);            /* invalid UTF-8 */
  BAD("\"\x80\"", 1);
  BAD("\"\xc3\"", 1);
  BAD("\"\xc3(\"", 1);
  BAD("\"\xc0\x80\"", 1);        /* overlong */
  BAD("\"\xc1\xbf\"", 1);
  BAD("\"\xe0\x80\x80\"", 1);
  BAD("\"\xe0\x9f\xbf\"", 1);
  BAD("\"\xf0\x80\x80\x80\"", 1);
  BAD("\"\xf0\x8f\xbf\xbf\"", 1);
  BAD("\"\xed\xa0\x80\"", 1);    /* encoded surrogate */
  BAD("\"\xed\xbf\xbf\"", 1);
  BAD("\"\xf4\x90\x80\x80\"", 1); /* beyond U+10FFFF */
  BAD("\"\xf5\x80\x80\x80\"", 1);
  BAD("\"\xe2\x82\"", 1);        /* truncated */
  BAD("\"\xf0\x9f\x98\"", 1);
  BAD("\"\\n\xe2\x82\"", 3);
  BAD("'a'", 0);
}

static void test_containers(void)
{
  OK("[]", "[ ] ");
  OK("{}", "{ } ");
  OK("[ ]", "[ ] ");
  OK("{ }", "{ } ");
  OK("[[]]", "[ [ ] ] ");
  OK("[{}]", "[ { } ] ");
  OK("[1,[2,[3]]]", "[ i1 [ i2 [ i3 ] ] ] ");
  OK("{\"a\":1,\"b\":[true,null],\"c\":{}}",
     "{ k\"a\" i1 k\"b\" [ t n ] k\"c\" { } } ");
  OK(" { \"a\" : [ 1 , { \"b\" : \"c\" } ] } ",
     "{ k\"a\" [ i1 { k\"b\" \"c\" } ] } ");
  OK("{\"a\":1,\"a\":2}", "{ k\"a\" i1 k\"a\" i2 } "); /* duplicates passed on */
  OK("{\"\":\"\"}", "{ k\"\" \"\" } ");
  OK("{\"k\\u0041\\n\":0}", "{ k\"kA\n\" i0 } ");
  OK("[\"a\",\"b\\tc\",\"d\"]", "[ \"a\" \"b\tc\" \"d\" ] ");
  OK("[null,true,false]", "[ n t f ] ");
  OK("[1.5e3,-0]", "[ d1500 i0 ] ");
  OK("\n[\n1\n]\n", "[ i1 ] ");
}

static void test_bad_containers(void)
{
  BAD("[", 1);
  BAD("{", 1);
  BAD("[1", 2);
  BAD("[1,", 3);
  BAD("{\"a\"", 4);
  BAD("{\"a\":", 5);
  BAD("{\"a\":1", 6);
  BAD("]", 0);
  BAD("}", 0);
  BAD("[1,]", 3);                /* trailing commas */
  BAD("[1, ]", 4);
  BAD("{\"a\":1,}", 7);
  BAD("{\"a\":1 , }", 9);
  BAD("[,1]", 1);
  BAD("[,]", 1);
  BAD("[1,,2]", 3);
  BAD("{,}", 1);
  BAD("{,\"a\":1}", 1);
  BAD("[1 2]", 3);
  BAD("[1}", 2);
  BAD("{\"a\":1]", 6);
  BAD("{\"a\" 1}", 5);
  BAD("{\"a\"::1}", 5);
  BAD("{\"a\":}", 5);
  BAD("{a:1}", 1);
  BAD("{1:2}", 1);
  BAD("{'a':1}", 1);
  BAD("{\"a\":1 \"b\":2}", 7);
  BAD("[] []", 3);
  BAD("{} x", 3);
  BAD("[]]", 2);
  BAD("[1]]", 3);
  BAD("/*c*/1", 0);
  BAD("[1]//", 3);
  BAD("[1;2]", 2);
}

static void test_depth(void)
{
  char *text = malloc(2 * (JSON_MAX_DEPTH + 1) + 16);
  size_t n = JSON_MAX_DEPTH, i;
  recorder r;
  json_error err;

  for (i = 0; i < n; i++) {
    text[i] = '[';
    text[n + i] = ']';
  }
  rec_init(&r);
  CHECK_INT(json_parse(text, 2 * n, &handlers, &r, &err), 0);
  CHECK_INT(r.out.len, 4 * n);
  strbuf_free(&r.out);

  n = JSON_MAX_DEPTH + 1;
  for (i = 0; i < n; i++) {
    text[i] = '[';
    text[n + i] = ']';
  }
  rec_init(&r);
  CHECK_INT(json_parse(text, 2 * n, &handlers, &r, &err), -1);
  CHECK_INT(err.offset, JSON_MAX_DEPTH);
  CHECK(strstr(err.message, "deep") != NULL);
  strbuf_free(&r.out);

  /* objects count too */
  {
    strbuf b;
    strbuf_init(&b);
    for (i = 0; i < JSON_MAX_DEPTH + 1; i++)
      strbuf_puts(&b, "{\"a\":");
    strbuf_puts(&b, "1");
    for (i = 0; i < JSON_MAX_DEPTH + 1; i++)
      strbuf_putc(&b, '}');
    rec_init(&r);
    CHECK_INT(json_parse(b.data, b.len, &handlers, &r, &err), -1);
    strbuf_free(&r.out);
    CHECK(strstr(err.message, "deep") != NULL);
    strbuf_reset(&b);
    for (i = 0; i < JSON_MAX_DEPTH; i++)
      strbuf_puts(&b, i % 2 ? "[" : "{\"k\":");
    strbuf_puts(&b, "1");
    for (i = JSON_MAX_DEPTH; i-- > 0;)
      strbuf_putc(&b, i % 2 ? ']' : '}');
    rec_init(&r);
    CHECK_INT(json_parse(b.data, b.len, &handlers, &r, &err), 0);
    strbuf_free(&r.out);
    strbuf_free(&b);
  }
  free(text);
}

static void test_handler_stop(void)
{
  const char *text = "{\"a\":[1,2.5,\"s\",true,null],\"b\":{}}";
  recorder r;
  json_error err;
  int stop, rc;

  /* 13 callbacks in all; stopping at each returns the handler's value */
  for (stop = 1; stop <= 13; stop++) {
    rec_init(&r);
    r.stop_at = stop;
    rc = json_parse(text, strlen(text), &handlers, &r, &err);
    CHECK_INT(rc, 5);
    CHECK_INT(r.calls, stop);
    CHECK(err.message[0] != '\0');
    strbuf_free(&r.out);
  }
  rec_init(&r);
  r.stop_at = 14;
  CHECK_INT(json_parse(text, strlen(text), &handlers, &r, &err), 0);
  CHECK_INT(r.calls, 13);
  strbuf_free(&r.out);
}

static void test_null_handlers(void)
{
  json_handlers none;
  json_error err;

  const char *text = "{\"a\":[1,2.5,\"s\\n\",true,false,null,{}]}";

  memset(&none, 0, sizeof none);
  CHECK_INT(json_parse(text, strlen(text), &none, NULL, &err), 0);
  CHECK_INT(json_parse("[1,]", 4, &none, NULL, &err), -1);
}

static void test_error_messages(void)
{
  json_error err;
  json_handlers none;

  memset(&none, 0, sizeof none);
  CHECK_INT(json_parse("[1,]", 4, &none, NULL, &err), -1);
  CHECK(strstr(err.message, "trailing comma") != NULL);
  CHECK_INT(json_parse("01", 2, &none, NULL, &err), -1);
  CHECK(strstr(err.message, "leading zero") != NULL);
  CHECK_INT(json_parse("\"\\ud800\"", 8, &none, NULL, &err), 0);
  CHECK_INT(json_parse("\"\x01\"", 3, &none, NULL, &err), -1);
  CHECK(strstr(err.message, "control character") != NULL);
  CHECK_INT(json_parse("1 x", 3, &none, NULL, &err), -1);
  CHECK(strstr(err.message, "'x'") != NULL);
  CHECK_INT(json_parse("", 0, &none, NULL, &err), -1);
  CHECK(strstr(err.message, "end of input") != NULL);
  CHECK_INT(json_parse("[1,2", 4, &none, NULL, &err), -1);
  CHECK(strstr(err.message, "unterminated array") != NULL);
  CHECK_INT(json_parse("\"\xff\"", 3, &none, NULL, &err), -1);
  CHECK(strstr(err.message, "UTF-8") != NULL);
  CHECK_INT(json_parse("[1]\x01", 4, &none, NULL, &err), -1);
  CHECK(strstr(err.message, "0x01") != NULL);
}

static int store_number(void *ctx, double v)
{
  *(double *)ctx = v;
  return 0;
}

/* The exact fast path (digits fit 53 bits, exponent within +-22) agrees with
 * strtod bit for bit, and so does the strtod fallback. */
static void test_numbers_vs_strtod(void)
{
  json_handlers h;
  unsigned long long x = 0x9e3779b97f4a7c15ULL;
  char text[96];
  int i, bad = 0, failed = 0;

  memset(&h, 0, sizeof h);
  h.number = store_number;
  for (i = 0; i < 200000; i++) {
    unsigned long long mant;
    int point, e, len, kind;
    double got = 0, want;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    kind = (int)(x % 4);
    mant = (x >> 8) % (kind == 0 ? 10ULL : kind == 1 ? 100000ULL : 9007199254740993ULL);
    point = (int)((x >> 3) % 20);
    e = (int)((x >> 40) % 61) - 30;
    len = snprintf(text, sizeof text, "%s%llu", (x >> 63) ? "-" : "", mant);
    /* put a decimal point inside the digits, or an exponent, or both */
    if (point > 0 && point < len && text[point - 1] >= '0' && text[point] >= '0') {
      memmove(text + point + 1, text + point, (size_t)(len - point + 1));
      text[point] = '.';
      len++;
    } else if ((x >> 50) & 1) {
      len += snprintf(text + len, sizeof text - (size_t)len, ".%llu", mant % 1000);
    }
    if ((x >> 52) & 1 || !strchr(text, '.'))
      len += snprintf(text + len, sizeof text - (size_t)len, "e%d", e);
    if (json_parse(text, (size_t)len, &h, &got, NULL) != 0) {
      if (failed++ < 5)
        printf("  %s did not parse\n", text);
      continue;
    }
    want = strtod(text, NULL);
    if (memcmp(&got, &want, sizeof got) != 0 && bad++ < 5)
      printf("  %s: %.17g, strtod says %.17g\n", text, got, want);
  }
  CHECK_INT(failed, 0);
  CHECK_INT(bad, 0);
}

/* ---- writers ---------------------------------------------------------------- */

static void test_append_string(void)
{
  strbuf b;
  char all[128];
  recorder r;
  size_t i;

  strbuf_init(&b);
  json_append_string(&b, "", 0);
  CHECK_MEM(b.data, b.len, "\"\"");
  strbuf_reset(&b);
  json_append_string(&b, "abc", 3);
  CHECK_MEM(b.data, b.len, "\"abc\"");
  strbuf_reset(&b);
  json_append_string(&b, "\"\\", 2);
  CHECK_MEM(b.data, b.len, "\"\\\"\\\\\"");
  strbuf_reset(&b);
  json_append_string(&b, "\n\t\r\b\f", 5);
  CHECK_MEM(b.data, b.len, "\"\\n\\t\\r\\b\\f\"");
  strbuf_reset(&b);
  json_append_string(&b, "\0\x01\x1f\x0b", 4);
  CHECK_MEM(b.data, b.len, "\"\\u0000\\u0001\\u001f\\u000b\"");
  strbuf_reset(&b);
  json_append_string(&b, "/\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 12);
  CHECK_MEM(b.data, b.len, "\"/\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  strbuf_reset(&b);
  json_append_string(&b, "\xff\xfe", 2); /* bytes are not validated */
  CHECK_MEM(b.data, b.len, "\"\xff\xfe\"");
  strbuf_reset(&b);
  json_append_string(&b, "a\"b", 3);
  json_append_string(&b, "c", 1); /* appends */
  CHECK_MEM(b.data, b.len, "\"a\\\"b\"\"c\"");

  /* every ASCII byte round-trips through the parser */
  for (i = 0; i < sizeof all; i++)
    all[i] = (char)i;
  strbuf_reset(&b);
  json_append_string(&b, all, sizeof all);
  rec_init(&r);
  CHECK_INT(json_parse(b.data, b.len, &handlers, &r, NULL), 0);
  CHECK_INT(r.out.len, sizeof all + 3);
  CHECK(r.out.len == sizeof all + 3 && memcmp(r.out.data + 1, all, sizeof all) == 0);
  strbuf_free(&r.out);
  strbuf_free(&b);
}

#define DBL(v, want) dbl_case(__FILE__, __LINE__, v, want)

static void dbl_case(const char *file, int line, double v, const char *want)
{
  strbuf b;

  strbuf_init(&b);
  test_check_int(file, line, want, json_append_double(&b, v), 0);
  test_check_mem(file, line, want, b.data ? b.data : "", b.len, want, strlen(want));
  strbuf_free(&b);
}

static int parse_back_number(void *ctx, double v)
{
  *(double *)ctx = v;
  return 0;
}

static int parse_back_integer(void *ctx, long long v)
{
  *(double *)ctx = (double)v;
  return 0;
}

/* json_append_double's text, read back by json_parse, is v again. */
static int round_trips(double v, strbuf *b)
{
  json_handlers h;
  double back = NAN;

  memset(&h, 0, sizeof h);
  h.number = parse_back_number;
  h.integer = parse_back_integer;
  strbuf_reset(b);
  if (json_append_double(b, v) != 0)
    return 0;
  if (json_parse(b->data, b->len, &h, &back, NULL) != 0)
    return 0;
  return back == v;
}

static void test_append_double(void)
{
  strbuf b;
  unsigned long long x = 88172645463325252ULL;
  int i, bad = 0;

  DBL(0.0, "0");
  DBL(-0.0, "-0");
  DBL(1.0, "1");
  DBL(-42.0, "-42");
  DBL(1.5, "1.5");
  DBL(0.1, "0.1");
  DBL(0.1 + 0.2, "0.30000000000000004");
  DBL(1.0 / 3.0, "0.3333333333333333");
  DBL(2.0 / 3.0, "0.6666666666666666");
  DBL(100.0, "100");
  DBL(1e15, "1e+15");
  DBL(123456789012345.0, "123456789012345");
  DBL(1e20, "1e+20");
  DBL(1e-7, "1e-07");
  DBL(123456789012345678.0, "1.2345678901234568e+17");
  DBL(9007199254740993.0, "9007199254740992");
  DBL(DBL_MAX, "1.7976931348623157e+308");
  DBL(-DBL_MAX, "-1.7976931348623157e+308");
  DBL(DBL_MIN, "2.2250738585072014e-308");
  DBL(5e-324, "4.94065645841247e-324"); /* shortest that reads back */

  strbuf_init(&b);
  strbuf_puts(&b, "x");
  CHECK_INT(json_append_double(&b, NAN), -1);
  CHECK_INT(json_append_double(&b, INFINITY), -1);
  CHECK_INT(json_append_double(&b, -INFINITY), -1);
  CHECK_MEM(b.data, b.len, "x"); /* nothing appended */

  /* random bit patterns, and their neighbourhood */
  for (i = 0; i < 20000; i++) {
    double v;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(&v, &x, sizeof v);
    if (isnan(v) || isinf(v))
      continue;
    if (!round_trips(v, &b) || !round_trips(nextafter(v, 0.0), &b))
      bad++;
  }
  CHECK_INT(bad, 0);
  for (i = -330; i <= 310; i++) {
    double v = pow(10.0, i);
    if (!isinf(v) && (!round_trips(v, &b) || !round_trips(-v * 1.2345, &b)))
      bad++;
  }
  CHECK_INT(bad, 0);
  strbuf_free(&b);
}

/* With a locale whose decimal point is ',', output and input still use '.'. */
static void test_locale(void)
{
  static const char *names[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8",
                                 "ru_RU.UTF-8", "nl_NL.UTF-8", NULL };
  int i;
  const char *ok = NULL;

  for (i = 0; names[i] != NULL && ok == NULL; i++)
    ok = setlocale(LC_NUMERIC, names[i]);
  if (ok == NULL) {
    printf("note: no locale with a decimal comma installed; locale checks skipped\n");
    return;
  }
  if (strcmp(localeconv()->decimal_point, ".") == 0) {
    setlocale(LC_NUMERIC, "C");
    return;
  }
  DBL(1.5, "1.5");
  DBL(0.1, "0.1");
  DBL(-2.5e-10, "-2.5e-10");
  OK("1.5", "d1,5 "); /* the recorder's printf uses the locale; the parse did not */
  OK("[2.25e1]", "[ d22,5 ] ");
  {
    strbuf b;
    strbuf_init(&b);
    CHECK(round_trips(3.14159, &b));
    CHECK(round_trips(1.0 / 3.0, &b));
    strbuf_free(&b);
  }
  setlocale(LC_NUMERIC, "C");
}

/* json_check_text: what the encoder refuses before anything is sent. */
static void test_check_text(void)
{
  size_t at = 99;
  CHECK_INT(json_check_text("plain", 5, &at), 0);
  CHECK_INT(json_check_text("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, &at), 0);
  CHECK_INT(json_check_text("", 0, &at), 0);
  CHECK_INT(json_check_text("ab\0c", 4, &at), 1);
  CHECK_INT(at, 2);
  CHECK_INT(json_check_text("ok\xff", 3, &at), 2);
  CHECK_INT(at, 2);
  CHECK_INT(json_check_text("\xc0\x80", 2, &at), 2);      /* overlong NUL */
  CHECK_INT(json_check_text("\xed\xa0\x80", 3, &at), 2);  /* a UTF-16 surrogate */
  CHECK_INT(json_check_text("x\xe2\x82", 3, &at), 2);      /* cut short */
  CHECK_INT(at, 1);
}

void test_json(void)
{
  test_check_text();
  test_literals();
  test_integers();
  test_numbers();
  test_long_numbers();
  test_numbers_vs_strtod();
  test_strings();
  test_string_nul();
  test_string_pointer();
  test_bad_strings();
  test_containers();
  test_bad_containers();
  test_depth();
  test_handler_stop();
  test_null_handlers();
  test_error_messages();
  test_append_string();
  test_append_double();
  test_locale();
}
