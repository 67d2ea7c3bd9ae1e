/* Growable byte buffer. See strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRBUF_MIN_CAP 64

/* Makes room for n more bytes plus the terminating NUL. Returns 0, or -1 (and sets
 * the sticky failed flag) when the size overflows or the allocation fails. */
static int strbuf_grow(strbuf *b, size_t n)
{
  size_t need, cap;
  char *p;

  if (b->failed)
    return -1;
  if (n > SIZE_MAX - 1 - b->len) {
    b->failed = 1;
    return -1;
  }
  need = b->len + n + 1;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : STRBUF_MIN_CAP;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  if (b->fixed != NULL && b->data == b->fixed) { /* leaving the caller's storage */
    p = malloc(cap);
    if (p != NULL)
      memcpy(p, b->data, b->len + 1);
  } else {
    p = realloc(b->data, cap);
  }
  if (p == NULL) {
    b->failed = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

/* Sets the buffer to empty, owning no memory. */
void strbuf_init(strbuf *b)
{
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->failed = 0;
  b->fixed = NULL;
}

void strbuf_init_with(strbuf *b, char *storage, size_t cap)
{
  b->data = storage;
  b->len = 0;
  b->cap = cap;
  b->failed = 0;
  b->fixed = storage;
  storage[0] = '\0';
}

/* Releases the memory; the buffer is empty (and usable) again afterwards. */
void strbuf_free(strbuf *b)
{
  if (b->data != b->fixed)
    free(b->data);
  strbuf_init(b);
}

/* Empties the buffer but keeps its memory; clears the failed flag. */
void strbuf_reset(strbuf *b)
{
  b->len = 0;
  b->failed = 0;
  if (b->data != NULL)
    b->data[0] = '\0';
}

/* Appends n bytes (which may include NULs). s may point into the buffer itself. */
void strbuf_append(strbuf *b, const char *s, size_t n)
{
  size_t off = 0;
  int inside = 0;

  if (b->failed)
    return;
  /* Appending (part of) the buffer to itself: realloc may move it. */
  if (n > 0 && b->data != NULL && (uintptr_t)s >= (uintptr_t)b->data &&
      (uintptr_t)s < (uintptr_t)b->data + b->cap) {
    inside = 1;
    off = (size_t)((uintptr_t)s - (uintptr_t)b->data);
  }
  if (strbuf_grow(b, n) != 0)
    return;
  if (n > 0)
    memmove(b->data + b->len, inside ? b->data + off : s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

/* Appends a NUL-terminated string. */
void strbuf_puts(strbuf *b, const char *s)
{
  strbuf_append(b, s, strlen(s));
}

/* Appends one byte. */
void strbuf_putc(strbuf *b, char c)
{
  if (b->len + 1 < b->cap && !b->failed) {
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return;
  }
  strbuf_append(b, &c, 1);
}

/* Appends printf-style formatted text. An output error from vsnprintf counts as
 * a failure (sets the failed flag) like a failed allocation. */
void strbuf_printf(strbuf *b, const char *fmt, ...)
{
  va_list ap;
  int n;
  size_t room;

  if (b->failed)
    return;
  if (strbuf_grow(b, 0) != 0) /* ensures data != NULL */
    return;
  room = b->cap - b->len;
  va_start(ap, fmt);
  n = vsnprintf(b->data + b->len, room, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->data[b->len] = '\0';
    b->failed = 1;
    return;
  }
  if ((size_t)n >= room) {
    if (strbuf_grow(b, (size_t)n) != 0) {
      b->data[b->len] = '\0';
      return;
    }
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->data[b->len] = '\0';
      b->failed = 1;
      return;
    }
  }
  b->len += (size_t)n;
}

size_t strbuf_format_int(char *out, long long v) {
  char tmp[24];
  size_t n = 0, len;
  /* through unsigned: -LLONG_MIN does not fit a long long */
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    tmp[n++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u);
  len = 0;
  if (v < 0) out[len++] = '-';
  while (n) out[len++] = tmp[--n];
  out[len] = '\0';
  return len;
}

void strbuf_put_int(strbuf *b, long long v) {
  char tmp[24];
  strbuf_append(b, tmp, strbuf_format_int(tmp, v));
}
