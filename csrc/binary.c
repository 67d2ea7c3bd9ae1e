/* PostgreSQL's binary wire format for a few built-in types (the *send
 * functions in the server's utils/adt). */
#include <string.h>

#include "binary.h"

int binary_eligible(unsigned int oid) {
  switch (oid) {
    case 16: case 17: case 19: case 20: case 21: case 23: case 25: case 26:  /* bool bytea name int8 int2 int4 text oid */
    case 114: case 701: case 1042: case 1043: case 2950: case 3802:          /* json float8 bpchar varchar uuid jsonb */
      return 1;
    default:
      return 0;
  }
}

static unsigned long long big_endian(const char *v, size_t len) {
  unsigned long long u = 0;
  size_t i;
  for (i = 0; i < len; i++) u = (u << 8) | (unsigned char)v[i];
  return u;
}

int binary_int(const char *v, size_t len, int is_unsigned, long long *out) {
  unsigned long long u;
  if (len != 2 && len != 4 && len != 8) return -1;
  u = big_endian(v, len);
  if (is_unsigned && len == 4) *out = (long long)u;
  else if (len == 2) *out = (long long)(short)(unsigned short)u;
  else if (len == 4) *out = (long long)(int)(unsigned int)u;
  else *out = (long long)u;
  return 0;
}

int binary_float8(const char *v, size_t len, double *out) {
  unsigned long long u;
  if (len != 8) return -1;
  u = big_endian(v, 8);
  memcpy(out, &u, sizeof *out);
  return 0;
}

int binary_uuid(const char *v, size_t len, char out[36]) {
  static const char hex[] = "0123456789abcdef";
  size_t i, o = 0;
  if (len != 16) return -1;
  for (i = 0; i < 16; i++) {
    unsigned char c = (unsigned char)v[i];
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[c >> 4];
    out[o++] = hex[c & 15];
  }
  return 0;
}
