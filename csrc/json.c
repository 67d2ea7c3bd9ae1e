/* JSON text: a streaming parser and the string/number writers. See json.h.
 *
 * The parser is a loop over an explicit stack of open containers (no recursion),
 * so the C stack use does not depend on the input. Strings without escapes are
 * handed to the callbacks as pointers into the input; strings with escapes are
 * unescaped into one reusable buffer. */
#include "json.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Byte classes inside a string. */
enum { C_PLAIN = 0, C_QUOTE, C_BACKSLASH, C_CONTROL, C_HIGH };

static const unsigned char string_class[256] = {
  /* 0x00 - 0x1f: control characters */
  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
  0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x22 '"' */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, /* 0x5c '\\' */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  /* 0x80 - 0xff: UTF-8 lead and continuation bytes */
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

typedef struct parser {
  const char *start;
  const char *p;
  const char *end;
  json_error *err;
  strbuf buf;    /* unescaped strings */
  strbuf numbuf; /* long numbers, NUL-terminated for strtod */
  strbuf stack;  /* '{' or '[' per open container */
} parser;

/* Error codes inside the parser: -1 is a syntax error already described in err;
 * any other non-zero value came from a handler and is returned as is. */
static int fail(parser *ps, const char *at, const char *msg)
{
  if (ps->err != NULL) {
    ps->err->offset = (size_t)(at - ps->start);
    snprintf(ps->err->message, sizeof ps->err->message, "%s", msg);
  }
  return -1;
}

static int fail_char(parser *ps, const char *at, const char *what)
{
  unsigned char c = (unsigned char)*at;

  if (ps->err != NULL) {
    ps->err->offset = (size_t)(at - ps->start);
    if (c > 0x20 && c < 0x7f)
      snprintf(ps->err->message, sizeof ps->err->message, "%s, found '%c'", what, c);
    else
      snprintf(ps->err->message, sizeof ps->err->message, "%s, found byte 0x%02x", what, c);
  }
  return -1;
}

/* Fails at ps->p: end of input or an unexpected character. */
static int fail_here(parser *ps, const char *what)
{
  if (ps->p >= ps->end) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s, found end of input", what);
    return fail(ps, ps->p, msg);
  }
  return fail_char(ps, ps->p, what);
}

static void skip_space(parser *ps)
{
  const char *p = ps->p, *end = ps->end;

  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  ps->p = p;
}

/* Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_length(const unsigned char *p, const unsigned char *end)
{
  unsigned char c = p[0];
  size_t avail = (size_t)(end - p);

  if (c >= 0xc2 && c <= 0xdf)
    return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
      return 0;
    if (c == 0xe0 && p[1] < 0xa0)
      return 0; /* overlong */
    if (c == 0xed && p[1] >= 0xa0)
      return 0; /* UTF-16 surrogate */
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
        (p[3] & 0xc0) != 0x80)
      return 0;
    if (c == 0xf0 && p[1] < 0x90)
      return 0; /* overlong */
    if (c == 0xf4 && p[1] >= 0x90)
      return 0; /* beyond U+10FFFF */
    return 4;
  }
  return 0;
}

int json_check_text(const char *s, size_t len, size_t *at)
{
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    size_t n = 1;
    if (*p == 0 || (*p >= 0x80 && (n = utf8_length(p, end)) == 0)) {
      *at = (size_t)(p - (const unsigned char *)s);
      return *p == 0 ? 1 : 2;
    }
    p += n;
  }
  return 0;
}

/* Four hex digits at p (p + 4 <= end checked by the caller); -1 if not hex. */
static long hex4(const char *p)
{
  long v = 0;
  int i;

  for (i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return -1;
  }
  return v;
}

static void put_utf8(strbuf *b, unsigned long cp)
{
  char u[4];
  size_t n;

  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | cp >> 6);
    u[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | cp >> 12);
    u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    u[0] = (char)(0xf0 | cp >> 18);
    u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    u[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  strbuf_append(b, u, n);
}

/* One escape sequence at bs (a backslash). Appends the unescaped text to ps->buf
 * and sets *next to the byte after the sequence. */
static int unescape(parser *ps, const char *bs, const char **next)
{
  const char *p = bs + 1;
  long cp, lo;
  char c;

  if (p >= ps->end)
    return fail(ps, bs, "unterminated string");
  switch (*p) {
  case '"': c = '"'; break;
  case '\\': c = '\\'; break;
  case '/': c = '/'; break;
  case 'b': c = '\b'; break;
  case 'f': c = '\f'; break;
  case 'n': c = '\n'; break;
  case 'r': c = '\r'; break;
  case 't': c = '\t'; break;
  case 'u':
    if (ps->end - p < 5 || (cp = hex4(p + 1)) < 0)
      return fail(ps, bs, "invalid \\u escape (four hex digits expected)");
    p += 5;
    /* A lone surrogate (which PostgreSQL's json type stores as written, and
     * UTF-8 cannot hold) becomes U+FFFD, the replacement character. */
    if (cp >= 0xdc00 && cp <= 0xdfff)
      cp = 0xfffd;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      if (ps->end - p < 6 || p[0] != '\\' || p[1] != 'u' || (lo = hex4(p + 2)) < 0 ||
          lo < 0xdc00 || lo > 0xdfff) {
        cp = 0xfffd;
      } else {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
      }
    }
    put_utf8(&ps->buf, (unsigned long)cp);
    *next = p;
    return 0;
  default:
    return fail_char(ps, p, "invalid escape sequence");
  }
  strbuf_putc(&ps->buf, c);
  *next = p + 1;
  return 0;
}

/* A string; ps->p is on the opening quote. On success *s and *len hold the unescaped
 * text (in the input or in ps->buf) and ps->p is after the closing quote. */
static int parse_string(parser *ps, const char **s, size_t *len)
{
  const unsigned char *p = (const unsigned char *)ps->p + 1;
  const unsigned char *end = (const unsigned char *)ps->end;
  const unsigned char *start = p;
  const unsigned char *run;
  const char *next = NULL;
  size_t n;

  /* Fast path: no escapes, the text stays where it is. */
  for (;;) {
    if (p >= end)
      return fail(ps, ps->p, "unterminated string");
    switch (string_class[*p]) {
    case C_PLAIN:
      p++;
      continue;
    case C_QUOTE:
      *s = (const char *)start;
      *len = (size_t)(p - start);
      ps->p = (const char *)p + 1;
      return 0;
    case C_CONTROL:
      return fail_char(ps, (const char *)p, "control character in string");
    case C_HIGH:
      if ((n = utf8_length(p, end)) == 0)
        return fail(ps, (const char *)p, "invalid UTF-8 in string");
      p += n;
      continue;
    default: /* C_BACKSLASH */
      break;
    }
    break;
  }

  /* Slow path: copy runs between escapes into the buffer. */
  strbuf_reset(&ps->buf);
  run = start;
  for (;;) {
    if (p >= end)
      return fail(ps, ps->p, "unterminated string");
    switch (string_class[*p]) {
    case C_PLAIN:
      p++;
      continue;
    case C_QUOTE:
      strbuf_append(&ps->buf, (const char *)run, (size_t)(p - run));
      if (ps->buf.failed)
        return fail(ps, ps->p, "out of memory");
      *s = ps->buf.data;
      *len = ps->buf.len;
      ps->p = (const char *)p + 1;
      return 0;
    case C_CONTROL:
      return fail_char(ps, (const char *)p, "control character in string");
    case C_HIGH:
      if ((n = utf8_length(p, end)) == 0)
        return fail(ps, (const char *)p, "invalid UTF-8 in string");
      p += n;
      continue;
    default: /* C_BACKSLASH */
      strbuf_append(&ps->buf, (const char *)run, (size_t)(p - run));
      if (unescape(ps, (const char *)p, &next) != 0)
        return -1;
      p = (const unsigned char *)next;
      run = p;
      continue;
    }
  }
}

/* Converts the number text [s, e) with strtod. The text is copied: it is not
 * NUL-terminated in the input, and strtod wants the C locale's decimal point. */
static int number_to_double(parser *ps, const char *s, const char *e, double *out)
{
  const char *dot = memchr(s, '.', (size_t)(e - s));
  const char *dp = dot != NULL ? localeconv()->decimal_point : NULL;

  strbuf_reset(&ps->numbuf);
  if (dp != NULL && dp[0] != '\0' && strcmp(dp, ".") != 0) {
    strbuf_append(&ps->numbuf, s, (size_t)(dot - s));
    strbuf_puts(&ps->numbuf, dp);
    strbuf_append(&ps->numbuf, dot + 1, (size_t)(e - dot - 1));
  } else {
    strbuf_append(&ps->numbuf, s, (size_t)(e - s));
  }
  if (ps->numbuf.failed)
    return fail(ps, s, "out of memory");
  *out = strtod(ps->numbuf.data, NULL);
  return 0;
}

/* Exact powers of ten as doubles. */
static const double pow10_exact[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define MAX_EXACT_MANTISSA 9007199254740992ULL /* 2^53 */

/* The fast path needs double arithmetic without excess precision (x87 would
 * round twice). */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define FAST_DOUBLES 1
#else
#define FAST_DOUBLES 0
#endif

/* A number; ps->p is on '-' or a digit.
 * Integers that fit int64 go to integer(). Other numbers whose digits fit in 53
 * bits with a decimal exponent within +-22 are converted exactly with one
 * multiplication or division (both operands exact, one rounding: the correctly
 * rounded result strtod would give); the rest go through strtod. */
static int parse_number(parser *ps, const json_handlers *h, void *ctx)
{
  const char *s = ps->p, *p = ps->p, *end = ps->end;
  int negative = 0, integral = 1, overflow = 0;
  unsigned long long v = 0, limit;   /* the integer value, for integer() */
  unsigned long long m = 0;          /* all significant digits, for the fast path */
  int digits = 0, exact = 1;         /* digits in m; m holds every digit */
  long frac = 0, exp = 0;            /* digits after '.'; the exponent's value */
  double d;

  if (*p == '-') {
    negative = 1;
    p++;
  }
  if (p >= end || *p < '0' || *p > '9') {
    ps->p = p;
    return fail_here(ps, "invalid number: digit expected");
  }
  limit = negative ? 9223372036854775808ULL : 9223372036854775807ULL;
  if (*p == '0') {
    p++;
    if (p < end && *p >= '0' && *p <= '9')
      return fail(ps, s, "invalid number: leading zero");
  } else {
    while (p < end && *p >= '0' && *p <= '9') {
      unsigned digit = (unsigned)(*p - '0');
      if (v > (limit - digit) / 10)
        overflow = 1;
      else
        v = v * 10 + digit;
      if (digits < 19) {
        m = m * 10 + digit;
        digits++;
      } else {
        exact = 0;
      }
      p++;
    }
  }
  if (p < end && *p == '.') {
    integral = 0;
    p++;
    if (p >= end || *p < '0' || *p > '9') {
      ps->p = p;
      return fail_here(ps, "invalid number: digit expected after '.'");
    }
    while (p < end && *p >= '0' && *p <= '9') {
      unsigned digit = (unsigned)(*p - '0');
      if (digits < 19) {
        m = m * 10 + digit;
        if (m != 0)
          digits++; /* leading zeros are not significant */
        frac++;
      } else {
        exact = 0;
      }
      p++;
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    int exp_negative = 0;
    integral = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      exp_negative = *p++ == '-';
    if (p >= end || *p < '0' || *p > '9') {
      ps->p = p;
      return fail_here(ps, "invalid number: digit expected in exponent");
    }
    while (p < end && *p >= '0' && *p <= '9') {
      if (exp < 100000)
        exp = exp * 10 + (*p - '0');
      p++;
    }
    if (exp_negative)
      exp = -exp;
  }
  ps->p = p;
  if (integral && !overflow) {
    long long iv;
    if (!negative)
      iv = (long long)v;
    else if (v == 9223372036854775808ULL)
      iv = -9223372036854775807LL - 1;
    else
      iv = -(long long)v;
    return h->integer ? h->integer(ctx, iv) : 0;
  }
  exp -= frac;
  if (FAST_DOUBLES && exact && m <= MAX_EXACT_MANTISSA && exp >= -22 && exp <= 22) {
    d = exp < 0 ? (double)m / pow10_exact[-exp] : (double)m * pow10_exact[exp];
    if (negative)
      d = -d;
  } else if (number_to_double(ps, s, p, &d) != 0) {
    return -1;
  }
  return h->number ? h->number(ctx, d) : 0;
}

/* The literal word at ps->p (true, false or null). */
static int parse_literal(parser *ps, const json_handlers *h, void *ctx)
{
  const char *p = ps->p;
  size_t avail = (size_t)(ps->end - p);

  switch (*p) {
  case 't':
    if (avail >= 4 && memcmp(p, "true", 4) == 0) {
      ps->p += 4;
      return h->boolean ? h->boolean(ctx, 1) : 0;
    }
    break;
  case 'f':
    if (avail >= 5 && memcmp(p, "false", 5) == 0) {
      ps->p += 5;
      return h->boolean ? h->boolean(ctx, 0) : 0;
    }
    break;
  default:
    if (avail >= 4 && memcmp(p, "null", 4) == 0) {
      ps->p += 4;
      return h->null_value ? h->null_value(ctx) : 0;
    }
    break;
  }
  return fail(ps, p, "invalid literal (true, false or null expected)");
}

/* An object key and its ':'; ps->p is on the key's opening quote or what should be. */
static int parse_key(parser *ps, const json_handlers *h, void *ctx)
{
  const char *s;
  size_t len;
  int rc;

  if (ps->p >= ps->end || *ps->p != '"')
    return fail_here(ps, "object key (a string) expected");
  if (parse_string(ps, &s, &len) != 0)
    return -1;
  if (h->key && (rc = h->key(ctx, s, len)) != 0)
    return rc;
  skip_space(ps);
  if (ps->p >= ps->end || *ps->p != ':')
    return fail_here(ps, "':' expected after object key");
  ps->p++;
  return 0;
}

static int parse(parser *ps, const json_handlers *h, void *ctx)
{
  char *stack = NULL; /* ps->stack.data, which moves when it grows */
  size_t depth = 0;
  int rc;
  const char *s;
  size_t len;

  for (;;) {
    /* A value. */
    skip_space(ps);
    if (ps->p >= ps->end)
      return fail(ps, ps->p, "unexpected end of input, value expected");
    switch (*ps->p) {
    case '{':
    case '[':
      if (depth == JSON_MAX_DEPTH)
        return fail(ps, ps->p, "nesting too deep");
      strbuf_putc(&ps->stack, *ps->p);
      if (ps->stack.failed)
        return fail(ps, ps->p, "out of memory");
      stack = ps->stack.data;
      depth++;
      if (*ps->p == '{') {
        if (h->begin_object && (rc = h->begin_object(ctx)) != 0)
          return rc;
        ps->p++;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == '}')
          break; /* empty; closed below */
        if ((rc = parse_key(ps, h, ctx)) != 0)
          return rc;
        continue;
      }
      if (h->begin_array && (rc = h->begin_array(ctx)) != 0)
        return rc;
      ps->p++;
      skip_space(ps);
      if (ps->p < ps->end && *ps->p == ']')
        break; /* empty; closed below */
      continue;
    case '"':
      if (parse_string(ps, &s, &len) != 0)
        return -1;
      if (h->string && (rc = h->string(ctx, s, len)) != 0)
        return rc;
      break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      if ((rc = parse_number(ps, h, ctx)) != 0)
        return rc;
      break;
    case 't':
    case 'f':
    case 'n':
      if ((rc = parse_literal(ps, h, ctx)) != 0)
        return rc;
      break;
    default:
      return fail_here(ps, "value expected");
    }

    /* After a value: ',' and the next member, or closing brackets. */
    for (;;) {
      if (depth == 0) {
        skip_space(ps);
        if (ps->p < ps->end)
          return fail_char(ps, ps->p, "unexpected text after the JSON value");
        return 0;
      }
      skip_space(ps);
      if (ps->p >= ps->end)
        return fail(ps, ps->p, stack[depth - 1] == '{' ? "unterminated object"
                                                       : "unterminated array");
      if (*ps->p == ',') {
        ps->p++;
        skip_space(ps);
        if (stack[depth - 1] == '{') {
          if (ps->p < ps->end && *ps->p == '}')
            return fail(ps, ps->p, "trailing comma");
          if ((rc = parse_key(ps, h, ctx)) != 0)
            return rc;
        } else if (ps->p < ps->end && *ps->p == ']') {
          return fail(ps, ps->p, "trailing comma");
        }
        break; /* the next value */
      }
      if (stack[depth - 1] == '{') {
        if (*ps->p != '}')
          return fail_char(ps, ps->p, "',' or '}' expected");
        if (h->end_object && (rc = h->end_object(ctx)) != 0)
          return rc;
      } else {
        if (*ps->p != ']')
          return fail_char(ps, ps->p, "',' or ']' expected");
        if (h->end_array && (rc = h->end_array(ctx)) != 0)
          return rc;
      }
      ps->p++;
      depth--;
      ps->stack.len--;
    }
  }
}

/* Parses one JSON value, calling the handlers (any may be NULL) in document order. */
int json_parse(const char *text, size_t len, const json_handlers *h, void *ctx,
               json_error *err)
{
  parser ps;
  int rc;

  ps.start = text;
  ps.p = text;
  ps.end = text + len;
  ps.err = err;
  strbuf_init(&ps.buf);
  strbuf_init(&ps.numbuf);
  strbuf_init(&ps.stack);
  if (err != NULL) {
    err->offset = 0;
    err->message[0] = '\0';
  }
  rc = parse(&ps, h, ctx);
  if (rc != 0 && rc != -1 && err != NULL) {
    err->offset = (size_t)(ps.p - text);
    snprintf(err->message, sizeof err->message, "stopped by a handler");
  }
  strbuf_free(&ps.buf);
  strbuf_free(&ps.numbuf);
  strbuf_free(&ps.stack);
  return rc;
}

/* Bytes json_append_string escapes: 0 = none, else the letter after '\\'
 * ('u' for \u00XX). */
static const char escape_letter[256] = {
  'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
  'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
  0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\\', 0, 0, 0,
};

/* Appends s as a JSON string literal; bytes >= 0x80 pass through unchanged. */
void json_append_string(strbuf *b, const char *s, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  const unsigned char *end = p + len;
  const unsigned char *run = p;

  strbuf_putc(b, '"');
  for (; p < end; p++) {
    char e = escape_letter[*p];
    if (e == 0)
      continue;
    strbuf_append(b, (const char *)run, (size_t)(p - run));
    if (e == 'u') {
      char u[6];
      u[0] = '\\';
      u[1] = 'u';
      u[2] = '0';
      u[3] = '0';
      u[4] = hex[*p >> 4];
      u[5] = hex[*p & 15];
      strbuf_append(b, u, 6);
    } else {
      char two[2];
      two[0] = '\\';
      two[1] = e;
      strbuf_append(b, two, 2);
    }
    run = p + 1;
  }
  strbuf_append(b, (const char *)run, (size_t)(p - run));
  strbuf_putc(b, '"');
}

/* Replaces the C locale's decimal point in s (if it is not '.') with '.'. */
static void normalize_decimal_point(char *s)
{
  const char *dp = localeconv()->decimal_point;
  size_t dplen;
  char *at;

  if (dp == NULL || dp[0] == '\0' || (dp[0] == '.' && dp[1] == '\0'))
    return;
  at = strstr(s, dp);
  if (at == NULL)
    return;
  dplen = strlen(dp);
  *at = '.';
  memmove(at + 1, at + dplen, strlen(at + dplen) + 1);
}

/* Appends the shortest of %.15g, %.16g and %.17g that strtod reads back as v. */
int json_format_double(char *out, double v)
{
  int prec;

  if (isnan(v) || isinf(v))
    return -1;
  for (prec = 15; prec <= 17; prec++) {
    snprintf(out, 32, "%.*g", prec, v);
    if (prec == 17 || strtod(out, NULL) == v)
      break;
  }
  normalize_decimal_point(out);
  return 0;
}

int json_append_double(strbuf *b, double v)
{
  char tmp[32];

  if (json_format_double(tmp, v))
    return -1;
  strbuf_puts(b, tmp);
  return 0;
}
