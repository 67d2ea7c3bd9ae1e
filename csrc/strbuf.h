/* Growable byte buffer. Pure C, no Lua: used by the encoders and parsers. */
#ifndef CRPG_STRBUF_H
#define CRPG_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
  char *data;   /* NULL until the first append (even of 0 bytes); NUL-terminated after */
  size_t len;
  size_t cap;
  int failed;   /* sticky: set when an allocation failed; later appends are no-ops */
  char *fixed;  /* the caller's storage given to strbuf_init_with (never freed), or NULL */
} strbuf;

void strbuf_init(strbuf *b);
/* Starts empty in the caller's storage (cap >= 1 bytes, e.g. on the C stack):
 * no allocation until it outgrows it, then on the heap as usual. */
void strbuf_init_with(strbuf *b, char *storage, size_t cap);
void strbuf_free(strbuf *b);
void strbuf_reset(strbuf *b);                       /* len = 0, keeps memory, clears failed */
void strbuf_append(strbuf *b, const char *s, size_t n); /* s may point into b itself */
void strbuf_puts(strbuf *b, const char *s);
void strbuf_putc(strbuf *b, char c);
/* Writes v in decimal to out (room for 21 bytes), NUL-terminated, as "%lld"
 * would; returns the length. */
size_t strbuf_format_int(char *out, long long v);
void strbuf_put_int(strbuf *b, long long v);
void strbuf_printf(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;

#endif
