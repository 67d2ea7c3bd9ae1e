/* libFuzzer target for json.c. Any input: no crash, no over-read. A parsed input
 * is written back with json_append_string / json_append_double; that text must
 * parse, and write back identically (a fixed point). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct writer {
  strbuf out;
  int depth;
  int after_key;
  unsigned char first[JSON_MAX_DEPTH + 1]; /* no member written yet at this depth */
} writer;

static void separator(writer *w)
{
  if (w->after_key) {
    w->after_key = 0;
    return;
  }
  if (w->depth > 0) {
    if (!w->first[w->depth])
      strbuf_putc(&w->out, ',');
    w->first[w->depth] = 0;
  }
}

static int w_null(void *ctx)
{
  writer *w = ctx;
  separator(w);
  strbuf_puts(&w->out, "null");
  return 0;
}

static int w_boolean(void *ctx, int v)
{
  writer *w = ctx;
  separator(w);
  strbuf_puts(&w->out, v ? "true" : "false");
  return 0;
}

static int w_integer(void *ctx, long long v)
{
  writer *w = ctx;
  separator(w);
  strbuf_printf(&w->out, "%lld", v);
  return 0;
}

static int w_number(void *ctx, double v)
{
  writer *w = ctx;
  separator(w);
  if (v == 0 && 1 / v < 0) {
    strbuf_puts(&w->out, "-0.0"); /* "-0" would read back as the integer 0 */
    return 0;
  }
  if (json_append_double(&w->out, v) != 0) {
    if (v != v)
      abort(); /* strtod of a JSON number is never NaN */
    strbuf_puts(&w->out, v > 0 ? "1e999" : "-1e999");
  }
  return 0;
}

static void check_utf8(const char *s, size_t len)
{
  /* the parser promises well-formed UTF-8 */
  size_t i = 0;
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    size_t n = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
    size_t k;
    if (n == 0 || i + n > len)
      abort();
    for (k = 1; k < n; k++)
      if (((unsigned char)s[i + k] & 0xc0) != 0x80)
        abort();
    i += n;
  }
}

static int w_string(void *ctx, const char *s, size_t len)
{
  writer *w = ctx;
  check_utf8(s, len);
  separator(w);
  json_append_string(&w->out, s, len);
  return 0;
}

static int w_key(void *ctx, const char *s, size_t len)
{
  writer *w = ctx;
  check_utf8(s, len);
  if (!w->first[w->depth])
    strbuf_putc(&w->out, ',');
  w->first[w->depth] = 0;
  json_append_string(&w->out, s, len);
  strbuf_putc(&w->out, ':');
  w->after_key = 1;
  return 0;
}

static int w_open(writer *w, char c)
{
  separator(w);
  strbuf_putc(&w->out, c);
  if (w->depth >= JSON_MAX_DEPTH)
    abort(); /* the parser must enforce the limit */
  w->first[++w->depth] = 1;
  return 0;
}

static int w_close(writer *w, char c)
{
  if (w->depth <= 0 || w->after_key)
    abort();
  w->depth--;
  strbuf_putc(&w->out, c);
  return 0;
}

static int w_begin_object(void *ctx) { return w_open(ctx, '{'); }
static int w_end_object(void *ctx) { return w_close(ctx, '}'); }
static int w_begin_array(void *ctx) { return w_open(ctx, '['); }
static int w_end_array(void *ctx) { return w_close(ctx, ']'); }

typedef struct lone {
  double v;
  int count;
  int container;
} lone;

static int lone_number(void *ctx, double v)
{
  lone *ln = ctx;
  ln->v = v;
  ln->count++;
  return 0;
}

static int lone_container(void *ctx)
{
  ((lone *)ctx)->container = 1;
  return 0;
}

static const json_handlers handlers = {
  w_null, w_boolean, w_integer, w_number, w_string,
  w_begin_object, w_key, w_end_object, w_begin_array, w_end_array,
};

static int write_back(const char *text, size_t len, strbuf *out, json_error *err)
{
  writer w;
  int rc;

  strbuf_init(&w.out);
  w.depth = 0;
  w.after_key = 0;
  w.first[0] = 1;
  rc = json_parse(text, len, &handlers, &w, err);
  if (rc == 0 && w.depth != 0)
    abort();
  *out = w.out;
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  strbuf once, twice;
  json_error err;
  int rc;

  rc = write_back((const char *)data, size, &once, &err);
  if (rc != 0) {
    if (rc != -1 || err.offset > size || err.message[0] == '\0' ||
        memchr(err.message, '\0', sizeof err.message) == NULL)
      abort();
  } else {
    if (once.failed)
      abort();
    if (write_back(once.data, once.len, &twice, &err) != 0) {
      fprintf(stderr, "written back text does not parse: %s at %zu\n%.*s\n", err.message,
              err.offset, (int)once.len, once.data);
      abort();
    }
    if (twice.len != once.len || memcmp(twice.data, once.data, once.len) != 0) {
      fprintf(stderr, "not a fixed point:\n%.*s\n%.*s\n", (int)once.len, once.data,
              (int)twice.len, twice.data);
      abort();
    }
    strbuf_free(&twice);
  }
  strbuf_free(&once);

  /* a lone number: the parser's value is strtod's, bit for bit */
  {
    json_handlers h;
    lone ln;
    char *copy;
    memset(&h, 0, sizeof h);
    h.number = lone_number;
    h.begin_array = lone_container;
    h.begin_object = lone_container;
    ln.count = 0;
    ln.container = 0;
    if (json_parse((const char *)data, size, &h, &ln, NULL) == 0 && ln.count == 1 &&
        !ln.container && (copy = malloc(size + 1)) != NULL) {
      double want;
      memcpy(copy, data, size);
      copy[size] = '\0';
      want = strtod(copy, NULL);
      if (memcmp(&ln.v, &want, sizeof want) != 0) {
        fprintf(stderr, "%s: %.17g, strtod %.17g\n", copy, ln.v, want);
        abort();
      }
      free(copy);
    }
  }

  /* the writers on arbitrary bytes and doubles */
  {
    strbuf b;
    double d;
    strbuf_init(&b);
    json_append_string(&b, (const char *)data, size);
    if (b.len < size + 2 || b.data[0] != '"' || b.data[b.len - 1] != '"')
      abort();
    if (size >= sizeof d) {
      memcpy(&d, data, sizeof d);
      strbuf_reset(&b);
      if (json_append_double(&b, d) == 0) {
        double back = strtod(b.data, NULL);
        if (back != d || strspn(b.data, "0123456789+-.e") != b.len)
          abort();
      } else if (d == d && d - d == 0) {
        abort(); /* finite but refused */
      }
    }
    strbuf_free(&b);
  }
  return 0;
}
