/* libFuzzer target for copy_text.c: splitting any row reads within bounds;
 * every field split out, escaped again and split again, comes back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "copy_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct collected {
  strbuf row;   /* the fields escaped again, tab-separated */
  int n;
} collected;

static int re_escape(void *ctx, const char *s, size_t len, int is_null)
{
  collected *c = ctx;
  if (c->n++) strbuf_putc(&c->row, '\t');
  if (is_null) strbuf_append(&c->row, "\\N", 2);
  else copy_text_escape(&c->row, s, len);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  strbuf scratch, scratch2;
  collected first, second;

  strbuf_init(&scratch);
  strbuf_init(&scratch2);
  strbuf_init(&first.row);
  strbuf_init(&second.row);
  first.n = second.n = 0;
  if (copy_text_split((const char *)data, size, &scratch, re_escape, &first) != 0) abort();
  strbuf_append(&first.row, "", 0);
  /* the escaped form splits into as many fields, and escapes to itself */
  if (copy_text_split(first.row.data, first.row.len, &scratch2, re_escape, &second) != 0) abort();
  strbuf_append(&second.row, "", 0);
  if (second.n != first.n) abort();
  if (second.row.len != first.row.len || memcmp(second.row.data, first.row.data, first.row.len) != 0) abort();
  strbuf_free(&scratch);
  strbuf_free(&scratch2);
  strbuf_free(&first.row);
  strbuf_free(&second.row);
  return 0;
}
