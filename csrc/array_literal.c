/* PostgreSQL array literals. See array_literal.h.
 *
 * Grammar accepted (the server's array_out format, plus the whitespace array_in
 * tolerates):
 *   literal  := ws [dims ws '=' ws] array ws
 *   dims     := ('[' int [':' int] ']' ws)+
 *   array    := '{' ws [item (ws delim ws item)*] ws '}'
 *   item     := array | quoted | unquoted
 *   quoted   := '"' (any byte but '"' and '\' | '\' any byte)* '"'
 *   unquoted := (any byte but delim '{' '}' '"' '\' | '\' any byte)+, trimmed
 * The items of one array are either all arrays or all elements. */
#include "array_literal.h"

#include <string.h>

#define ARRAY_MAX_DEPTH 64

/* What a (sub)array holds so far. */
enum { HOLDS_NOTHING, HOLDS_ARRAYS, HOLDS_ELEMENTS };

typedef struct parser {
  const char *p;
  const char *end;
  char delim;
  strbuf buf; /* unescaped element text, when the element had escapes */
} parser;

/* array_in's notion of whitespace; the delimiter never counts as whitespace. */
static int is_space(char c, char delim)
{
  return c != delim &&
         (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f');
}

static void skip_space(parser *ps)
{
  while (ps->p < ps->end && is_space(*ps->p, ps->delim))
    ps->p++;
}

/* [-]digits. Returns 0, or -1 when there is no digit. */
static int skip_int(parser *ps)
{
  const char *start;

  if (ps->p < ps->end && (*ps->p == '-' || *ps->p == '+'))
    ps->p++;
  start = ps->p;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
    ps->p++;
  return ps->p > start ? 0 : -1;
}

/* The optional "[lo:hi][lo:hi]=" prefix; bounds are checked for syntax only. */
static int skip_dimensions(parser *ps)
{
  if (ps->p >= ps->end || *ps->p != '[')
    return 0;
  while (ps->p < ps->end && *ps->p == '[') {
    ps->p++;
    skip_space(ps);
    if (skip_int(ps) != 0)
      return -1;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ':') {
      ps->p++;
      skip_space(ps);
      if (skip_int(ps) != 0)
        return -1;
      skip_space(ps);
    }
    if (ps->p >= ps->end || *ps->p != ']')
      return -1;
    ps->p++;
    skip_space(ps);
  }
  if (ps->p >= ps->end || *ps->p != '=')
    return -1;
  ps->p++;
  skip_space(ps);
  return 0;
}

/* A double-quoted element; ps->p is on the opening quote. */
static int quoted_element(parser *ps, const array_literal_handlers *h, void *ctx)
{
  const char *start = ++ps->p;
  const char *run;

  while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\')
    ps->p++;
  if (ps->p >= ps->end)
    return -1;
  if (*ps->p == '"') { /* no escapes: hand out a pointer into the text */
    ps->p++;
    return h->element ? h->element(ctx, start, (size_t)(ps->p - 1 - start), 0) : 0;
  }
  strbuf_reset(&ps->buf);
  run = start;
  for (;;) {
    if (ps->p >= ps->end)
      return -1;
    if (*ps->p == '"')
      break;
    if (*ps->p == '\\') {
      strbuf_append(&ps->buf, run, (size_t)(ps->p - run));
      if (++ps->p >= ps->end)
        return -1;
      run = ps->p; /* the escaped byte starts the next run */
    }
    ps->p++;
  }
  strbuf_append(&ps->buf, run, (size_t)(ps->p - run));
  ps->p++;
  if (ps->buf.failed)
    return -1;
  return h->element ? h->element(ctx, ps->buf.data, ps->buf.len, 0) : 0;
}

static int ascii_lower(char c)
{
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* An unquoted element; ps->p is on its first (non-space) byte. Ends before the
 * delimiter or '}'. Trailing whitespace is dropped unless it was escaped. */
static int unquoted_element(parser *ps, const array_literal_handlers *h, void *ctx)
{
  const char *start = ps->p;
  const char *keep_end; /* end of the text up to the last non-space or escaped byte */
  const char *run;
  int escaped = 0;
  size_t len;

  keep_end = start;
  while (ps->p < ps->end) {
    char c = *ps->p;
    if (c == ps->delim || c == '}')
      break;
    if (c == '{' || c == '"')
      return -1;
    if (c == '\\') {
      escaped = 1;
      if (++ps->p >= ps->end)
        return -1;
      keep_end = ps->p + 1;
    } else if (!is_space(c, ps->delim)) {
      keep_end = ps->p + 1;
    }
    ps->p++;
  }
  if (ps->p >= ps->end || keep_end == start)
    return -1; /* unterminated, or an empty element */
  len = (size_t)(keep_end - start);
  if (!escaped) {
    int is_null = len == 4 && ascii_lower(start[0]) == 'n' && ascii_lower(start[1]) == 'u' &&
                  ascii_lower(start[2]) == 'l' && ascii_lower(start[3]) == 'l';
    return h->element ? h->element(ctx, start, len, is_null) : 0;
  }
  strbuf_reset(&ps->buf);
  run = start;
  while (run < keep_end) {
    const char *bs = memchr(run, '\\', (size_t)(keep_end - run));
    if (bs == NULL) {
      strbuf_append(&ps->buf, run, (size_t)(keep_end - run));
      break;
    }
    strbuf_append(&ps->buf, run, (size_t)(bs - run));
    strbuf_append(&ps->buf, bs + 1, 1);
    run = bs + 2;
  }
  if (ps->buf.failed)
    return -1;
  return h->element ? h->element(ctx, ps->buf.data, ps->buf.len, 0) : 0;
}

static int parse(parser *ps, const array_literal_handlers *h, void *ctx)
{
  unsigned char holds[ARRAY_MAX_DEPTH];
  int depth = 0;
  int rc;

  skip_space(ps);
  if (skip_dimensions(ps) != 0)
    return -1;
  if (ps->p >= ps->end || *ps->p != '{')
    return -1;

  /* At the top of the loop ps->p is on a '{' to open, or on an item. */
  for (;;) {
    if (*ps->p == '{') {
      if (depth == ARRAY_MAX_DEPTH)
        return -1;
      if (depth > 0) {
        if (holds[depth - 1] == HOLDS_ELEMENTS)
          return -1;
        holds[depth - 1] = HOLDS_ARRAYS;
      }
      holds[depth++] = HOLDS_NOTHING;
      ps->p++;
      if (h->begin && (rc = h->begin(ctx)) != 0)
        return rc;
      skip_space(ps);
      if (ps->p >= ps->end)
        return -1;
      if (*ps->p != '}')
        continue; /* the first item */
    } else {
      if (holds[depth - 1] == HOLDS_ARRAYS)
        return -1;
      holds[depth - 1] = HOLDS_ELEMENTS;
      if (*ps->p == '"')
        rc = quoted_element(ps, h, ctx);
      else
        rc = unquoted_element(ps, h, ctx);
      if (rc != 0)
        return rc;
      skip_space(ps);
    }

    /* After an item: a delimiter and the next item, or '}' closing arrays. */
    for (;;) {
      if (ps->p >= ps->end)
        return -1;
      if (*ps->p == ps->delim) {
        ps->p++;
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p == '}' || *ps->p == ps->delim)
          return -1;
        break;
      }
      if (*ps->p != '}')
        return -1;
      ps->p++;
      depth--;
      if (h->end && (rc = h->end(ctx)) != 0)
        return rc;
      skip_space(ps);
      if (depth == 0)
        return ps->p == ps->end ? 0 : -1;
    }
  }
}

/* Parses an array literal, calling the handlers (any may be NULL) in order. */
int array_literal_parse(const char *text, size_t len, char delim,
                        const array_literal_handlers *h, void *ctx)
{
  parser ps;
  int rc;

  if (delim == '{' || delim == '}' || delim == '"' || delim == '\\' || delim == '\0')
    return -1;
  ps.p = text;
  ps.end = text + len;
  ps.delim = delim;
  strbuf_init(&ps.buf);
  rc = parse(&ps, h, ctx);
  strbuf_free(&ps.buf);
  return rc;
}

/* Appends "s" with '"' and '\\' backslash-escaped. */
void array_literal_append_quoted(strbuf *b, const char *s, size_t len)
{
  const char *end = s + len;
  const char *run = s;

  strbuf_putc(b, '"');
  for (; s < end; s++) {
    if (*s == '"' || *s == '\\') {
      strbuf_append(b, run, (size_t)(s - run));
      strbuf_putc(b, '\\');
      run = s;
    }
  }
  strbuf_append(b, run, (size_t)(s - run));
  strbuf_putc(b, '"');
}
