/* bytea text output decoding. See bytea.h. */
#include "bytea.h"

/* Value of a hex digit, or -1. */
static int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int decode_hex(const char *text, size_t len, char *out, size_t *outlen)
{
  size_t i, n = 0;

  if (len % 2 != 0)
    return -1;
  for (i = 0; i < len; i += 2) {
    int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[n++] = (char)(hi << 4 | lo);
  }
  *outlen = n;
  return 0;
}

static int is_octal(char c)
{
  return c >= '0' && c <= '7';
}

static int decode_escape(const char *text, size_t len, char *out, size_t *outlen)
{
  size_t i = 0, n = 0;

  while (i < len) {
    char c = text[i];
    if (c != '\\') {
      out[n++] = c;
      i++;
    } else if (i + 1 < len && text[i + 1] == '\\') {
      out[n++] = '\\';
      i += 2;
    } else if (i + 3 < len && text[i + 1] >= '0' && text[i + 1] <= '3' &&
               is_octal(text[i + 2]) && is_octal(text[i + 3])) {
      out[n++] = (char)((text[i + 1] - '0') << 6 | (text[i + 2] - '0') << 3 |
                        (text[i + 3] - '0'));
      i += 4;
    } else {
      return -1;
    }
  }
  *outlen = n;
  return 0;
}

/* Decodes bytea text output. The output is never longer than the input, so out
 * may also be text itself (decoding in place). */
int bytea_decode(const char *text, size_t len, char *out, size_t *outlen)
{
  if (len >= 2 && text[0] == '\\' && text[1] == 'x')
    return decode_hex(text + 2, len - 2, out, outlen);
  return decode_escape(text, len, out, outlen);
}
