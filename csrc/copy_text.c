/* COPY's text format (the server's CopyReadAttributesText and CopyAttributeOutText,
 * in reverse and in kind). */
#include <string.h>

#include "copy_text.h"

static const char hexdigits[] = "0123456789abcdef";

void copy_text_escape(strbuf *b, const char *s, size_t len) {
  size_t i, start = 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc;
    if (c >= 0x20 && c != '\\') continue;
    switch (c) {
      case '\\': esc = '\\'; break;
      case '\b': esc = 'b'; break;
      case '\f': esc = 'f'; break;
      case '\n': esc = 'n'; break;
      case '\r': esc = 'r'; break;
      case '\t': esc = 't'; break;
      case '\v': esc = 'v'; break;
      default: continue; /* other control bytes travel as they are */
    }
    if (i > start) strbuf_append(b, s + start, i - start);
    strbuf_putc(b, '\\');
    strbuf_putc(b, esc);
    start = i + 1;
  }
  if (len > start) strbuf_append(b, s + start, len - start);
}

void copy_text_bytea(strbuf *b, const char *s, size_t len) {
  size_t i;
  strbuf_append(b, "\\\\x", 3);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char two[2];
    two[0] = hexdigits[c >> 4];
    two[1] = hexdigits[c & 15];
    strbuf_append(b, two, 2);
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int copy_text_split(const char *line, size_t len, strbuf *scratch, copy_text_field_fn fn, void *ctx) {
  size_t i = 0;
  if (len > 0 && line[len - 1] == '\n') len--;
  for (;;) {
    size_t start = i;
    int rc;
    strbuf_reset(scratch);
    strbuf_append(scratch, "", 0);
    while (i < len && line[i] != '\t') {
      char c = line[i++];
      if (c != '\\' || i >= len) {
        strbuf_putc(scratch, c);
        continue;
      }
      c = line[i++];
      switch (c) {
        case 'b': strbuf_putc(scratch, '\b'); break;
        case 'f': strbuf_putc(scratch, '\f'); break;
        case 'n': strbuf_putc(scratch, '\n'); break;
        case 'r': strbuf_putc(scratch, '\r'); break;
        case 't': strbuf_putc(scratch, '\t'); break;
        case 'v': strbuf_putc(scratch, '\v'); break;
        case 'x': {
          int v = 0, k = 0, h;
          while (k < 2 && i < len && (h = hexval(line[i])) >= 0) { v = v * 16 + h; i++; k++; }
          if (k == 0) strbuf_putc(scratch, 'x');
          else strbuf_putc(scratch, (char)v);
          break;
        }
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
          int v = c - '0', k = 1;
          while (k < 3 && i < len && line[i] >= '0' && line[i] <= '7') { v = v * 8 + (line[i] - '0'); i++; k++; }
          strbuf_putc(scratch, (char)(v & 0xff));
          break;
        }
        default: strbuf_putc(scratch, c); break;
      }
    }
    if (scratch->failed) return -1;
    if (i - start == 2 && line[start] == '\\' && line[start + 1] == 'N') rc = fn(ctx, NULL, 0, 1);
    else rc = fn(ctx, scratch->data, scratch->len, 0);
    if (rc) return rc;
    if (i >= len) return 0;
    i++; /* the tab */
  }
}
