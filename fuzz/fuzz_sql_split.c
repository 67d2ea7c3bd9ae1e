/* libFuzzer target for sql_split.c. Checks, for any input: statements come in
 * order inside the text without overlapping, are non-empty, start and end on a
 * non-space byte, carry the right line number; when the split succeeds, each
 * statement split again on its own is exactly itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sql_split.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct check {
  const char *text;
  size_t len;
  const char *prev_end;
  int count;
  int complete;  /* statements must end on a significant byte */
} check;

static int is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int same(void *ctx, const char *stmt, size_t len, int line)
{
  check *c = ctx;
  if (c->count++ != 0 || stmt != c->text || len != c->len || line != 1)
    abort();
  return 0;
}

static int on_statement(void *ctx, const char *stmt, size_t len, int line)
{
  check *c = ctx;
  const char *p;
  int lines = 1;

  if (len == 0 || stmt < c->prev_end || stmt + len > c->text + c->len)
    abort();
  if (is_space(stmt[0]) || (c->complete && is_space(stmt[len - 1])))
    abort();
  for (p = c->text; p < stmt; p++)
    lines += *p == '\n';
  if (line != lines)
    abort();
  c->prev_end = stmt + len;
  c->count++;
  if (c->complete) {
    check again;
    again.text = stmt;
    again.len = len;
    again.count = 0;
    if (sql_split(stmt, len, same, &again) != 0 || again.count != 1)
      abort();
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  check c;
  int rc;

  c.text = (const char *)data;
  c.len = size;
  c.prev_end = c.text;
  c.count = 0;
  c.complete = 0;
  rc = sql_split(c.text, size, on_statement, &c);
  if (rc != 0 && rc != -1)
    abort();
  {
    long n = sql_max_param(c.text, size); /* the same lexer: never negative, capped */
    if (n < 0 || n > 100000000)
      abort();
  }
  if (rc == 0) {
    /* again, now checking each statement on its own */
    c.prev_end = c.text;
    c.count = 0;
    c.complete = 1;
    if (sql_split(c.text, size, on_statement, &c) != 0)
      abort();
  }
  return 0;
}
