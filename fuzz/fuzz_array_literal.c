/* libFuzzer target for array_literal.c. The first byte is the delimiter, the rest
 * the literal. A parsed literal is rebuilt with array_literal_append_quoted; the
 * rebuilt text must parse to the same callbacks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array_literal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct rebuild {
  strbuf text;   /* the literal, rebuilt */
  strbuf events; /* the callbacks, recorded */
  char delim;
  int need_delim;
  int depth;
} rebuild;

static void sep(rebuild *r)
{
  if (r->need_delim)
    strbuf_putc(&r->text, r->delim);
  r->need_delim = 0;
}

static int r_begin(void *ctx)
{
  rebuild *r = ctx;
  sep(r);
  strbuf_putc(&r->text, '{');
  strbuf_putc(&r->events, '(');
  if (++r->depth > 64)
    abort();
  return 0;
}

static int r_end(void *ctx)
{
  rebuild *r = ctx;
  strbuf_putc(&r->text, '}');
  strbuf_putc(&r->events, ')');
  if (--r->depth < 0)
    abort();
  r->need_delim = 1;
  return 0;
}

static int r_element(void *ctx, const char *s, size_t len, int is_null)
{
  rebuild *r = ctx;
  sep(r);
  if (is_null) {
    if (len != 4)
      abort();
    strbuf_puts(&r->text, "NULL");
    strbuf_putc(&r->events, 'N');
  } else {
    array_literal_append_quoted(&r->text, s, len);
    strbuf_printf(&r->events, "[%zu:", len);
    strbuf_append(&r->events, s, len);
    strbuf_putc(&r->events, ']');
  }
  r->need_delim = 1;
  return 0;
}

static const array_literal_handlers handlers = { r_begin, r_end, r_element };

static int run(const char *text, size_t len, char delim, rebuild *r)
{
  strbuf_init(&r->text);
  strbuf_init(&r->events);
  r->delim = delim;
  r->need_delim = 0;
  r->depth = 0;
  return array_literal_parse(text, len, delim, &handlers, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  rebuild a, b;
  char delim;
  int rc;

  if (size == 0)
    return 0;
  delim = (char)data[0];
  rc = run((const char *)data + 1, size - 1, delim, &a);
  if (rc != 0 && rc != -1)
    abort();
  if (rc == 0) {
    if (a.depth != 0 || a.text.failed || a.events.failed)
      abort();
    if (run(a.text.data, a.text.len, delim, &b) != 0)
      abort();
    if (b.events.len != a.events.len || memcmp(b.events.data, a.events.data, a.events.len) != 0)
      abort();
    strbuf_free(&b.text);
    strbuf_free(&b.events);
  }
  strbuf_free(&a.text);
  strbuf_free(&a.events);

  /* the same bytes with ',' (the common case) and no handlers */
  {
    array_literal_handlers none = { NULL, NULL, NULL };
    rc = array_literal_parse((const char *)data, size, ',', &none, NULL);
    if (rc != 0 && rc != -1)
      abort();
  }
  return 0;
}
