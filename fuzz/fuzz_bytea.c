/* libFuzzer target for bytea.c: no over-read or over-write; a decoded value,
 * encoded again in either format, decodes to the same bytes; decoding in place
 * gives the same result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytea.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const char *bytes, size_t n)
{
  static const char digits[] = "0123456789abcdef";
  char *hex = malloc(2 + 2 * n + 1);
  char *esc = malloc(4 * n + 1);
  char *out = malloc(4 * n + 3);
  size_t i, e = 0, outlen = 0;

  if (hex == NULL || esc == NULL || out == NULL)
    abort();
  hex[0] = '\\';
  hex[1] = 'x';
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)bytes[i];
    hex[2 + 2 * i] = digits[c >> 4];
    hex[3 + 2 * i] = digits[c & 15];
    if (c == '\\') {
      esc[e++] = '\\';
      esc[e++] = '\\';
    } else if (c < 0x20 || c >= 0x7f) {
      esc[e++] = '\\';
      esc[e++] = (char)('0' + (c >> 6));
      esc[e++] = (char)('0' + (c >> 3 & 7));
      esc[e++] = (char)('0' + (c & 7));
    } else {
      esc[e++] = (char)c;
    }
  }
  if (bytea_decode(hex, 2 + 2 * n, out, &outlen) != 0 || outlen != n ||
      memcmp(out, bytes, n) != 0)
    abort();
  /* an escape-format text starting with "\x" would be read as hex: it cannot
   * come out of the encoder above, which writes '\' as "\\". */
  if (bytea_decode(esc, e, out, &outlen) != 0 || outlen != n || memcmp(out, bytes, n) != 0)
    abort();
  free(hex);
  free(esc);
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *out = malloc(size ? size : 1);
  char *copy = malloc(size ? size : 1);
  size_t outlen = (size_t)-1, inplace_len = (size_t)-1;
  int rc, rc2;

  if (out == NULL || copy == NULL)
    abort();
  rc = bytea_decode((const char *)data, size, out, &outlen);
  memcpy(copy, data, size);
  rc2 = bytea_decode(copy, size, copy, &inplace_len);
  if (rc != rc2 || (rc != 0 && rc != -1))
    abort();
  if (rc == 0) {
    if (outlen > size || inplace_len != outlen || memcmp(out, copy, outlen) != 0)
      abort();
    check_round_trip(out, outlen);
  }
  free(out);
  free(copy);
  return 0;
}
