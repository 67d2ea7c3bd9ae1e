/* libFuzzer target for binary.c: the binary wire format the server sends
 * (numeric, date, timestamp, float4, arrays, nested) and TimeZone names. No
 * over-read or over-write; a numeric that asks for more room fits in it; an
 * array's elements stay inside its bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "binary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void numeric(const char *v, size_t len)
{
  char small[8];
  size_t outlen = 0, need;
  int rc = binary_numeric(v, len, small, sizeof small, &outlen);
  if (rc == 0 && outlen > sizeof small) abort();
  if (rc == 1) {
    char *big = malloc(outlen);
    if (big == NULL) abort();
    need = outlen;
    if (binary_numeric(v, len, big, need, &outlen) != 0 || outlen > need) abort();
    free(big);
  }
}

static void scalars(const char *v, size_t len)
{
  char out[BINARY_TIME_MAX];
  size_t n = 0;
  double d;
  if (binary_date(v, len, out, &n) == 0 && n > sizeof out) abort();
  if (binary_timestamp(v, len, 0, 0, out, &n) == 0 && n > sizeof out) abort();
  if (binary_timestamp(v, len, 1, -50400, out, &n) == 0 && n > sizeof out) abort();
  if (binary_timestamp(v, len, 1, 52200, out, &n) == 0 && n > sizeof out) abort();
  (void)binary_float4(v, len, &d);
  numeric(v, len);
}

/* Walks an array as result.c does, nested arrays inside it too (depth-limited). */
static void array(const char *v, size_t len, int depth)
{
  binary_array a;
  long i;
  if (depth > 3 || binary_array_open(v, len, &a) != 0) return;
  for (i = 0; i < a.count; i++) {
    const char *ev;
    size_t elen;
    if (binary_array_next(&a, &ev, &elen) != 0) return;
    if (ev == NULL) continue;
    if (ev < v || ev + elen > v + len) abort();
    scalars(ev, elen);
    array(ev, elen, depth + 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *copy = malloc(size + 1);
  long east;
  if (copy == NULL) abort();
  memcpy(copy, data, size);
  scalars(copy, size);
  array(copy, size, 0);
  copy[size] = '\0';
  if (binary_tz_offset(copy, &east) == 0 && (east < -604800 || east > 604800)) abort();
  free(copy);
  return 0;
}
