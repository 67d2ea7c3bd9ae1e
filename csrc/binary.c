/* PostgreSQL's binary wire format for the built-in types results may carry
 * in it (the *send functions in the server's utils/adt), turned into the
 * server's own text output where the core keeps text (numeric, dates). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binary.h"

/* The element types of arrays: {array oid, element oid}. */
static const unsigned int array_types[][2] = {
  {1000, 16}, {1001, 17}, {1003, 19}, {1016, 20}, {1005, 21}, {1007, 23}, {1009, 25},
  {1028, 26}, {199, 114}, {1021, 700}, {1022, 701}, {1014, 1042}, {1015, 1043},
  {1182, 1082}, {1115, 1114}, {1185, 1184}, {1231, 1700}, {2951, 2950}, {3807, 3802},
};

unsigned int binary_array_elem(unsigned int oid) {
  size_t i;
  for (i = 0; i < sizeof array_types / sizeof array_types[0]; i++)
    if (array_types[i][0] == oid) return array_types[i][1];
  return 0;
}

static int scalar_eligible(unsigned int oid) {
  switch (oid) {
    case 16: case 17: case 19: case 20: case 21: case 23: case 25: case 26:  /* bool bytea name int8 int2 int4 text oid */
    case 114: case 700: case 701: case 1042: case 1043: case 1700: case 2950: case 3802:
      return BINARY_YES;                  /* json float4 float8 bpchar varchar numeric uuid jsonb */
    case 1082: case 1114:                 /* date timestamp */
      return BINARY_ISO;
    case 1184:                            /* timestamptz */
      return BINARY_FIXED_TZ;
    default:
      return BINARY_NO;
  }
}

int binary_eligible(unsigned int oid) {
  unsigned int elem = binary_array_elem(oid);
  return scalar_eligible(elem ? elem : oid);
}

int binary_session_allows(int level, const char *datestyle, const char *timezone,
                          const char *integer_datetimes) {
  long east;
  if (level == BINARY_YES) return 1;
  if (level < BINARY_YES || level > BINARY_FIXED_TZ) return 0;
  if (!datestyle || strncmp(datestyle, "ISO", 3) != 0) return 0;
  if (!integer_datetimes || strcmp(integer_datetimes, "on") != 0) return 0;
  return level == BINARY_ISO || (timezone && binary_tz_offset(timezone, &east) == 0);
}

/* hh[:mm[:ss]] at *p; the seconds, or -1. */
static long posix_offset(const char **p) {
  long part[3] = {0, 0, 0};
  int i;
  for (i = 0; i < 3; i++) {
    const char *s = *p;
    long v = 0;
    if (i > 0) {
      if (*s != ':') break;
      s++;
    }
    if (*s < '0' || *s > '9') return -1;
    while (*s >= '0' && *s <= '9' && v < 1000) v = v * 10 + (*s++ - '0');
    part[i] = v;
    *p = s;
  }
  if (part[0] > 167 || part[1] > 59 || part[2] > 59) return -1;
  return part[0] * 3600 + part[1] * 60 + part[2];
}

int binary_tz_offset(const char *tz, long *east) {
  static const char *const utc[] = {
    "UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu",
    "Etc/Zulu", "Greenwich", "Etc/Greenwich", "GMT0", "GMT+0", "GMT-0", "Etc/GMT0", "Etc/GMT+0",
    "Etc/GMT-0",
  };
  const char *p;
  long off;
  int sign = 1;
  size_t i;
  for (i = 0; i < sizeof utc / sizeof utc[0]; i++)
    if (strcmp(tz, utc[i]) == 0) { *east = 0; return 0; }
  if (strncmp(tz, "Etc/GMT", 7) == 0 && (tz[7] == '+' || tz[7] == '-')) {
    /* Etc/GMT+5 is five hours west (POSIX signs) */
    char *end;
    long h = strtol(tz + 8, &end, 10);
    if (*end || end == tz + 8 || tz[8] < '0' || tz[8] > '9' || h > 14) return -1;
    *east = (tz[7] == '+' ? -h : h) * 3600;
    return 0;
  }
  /* POSIX: std offset, no daylight saving part */
  p = tz;
  if (*p == '<') {
    for (p++; *p && *p != '>'; p++)
      if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' || *p == ':' ||
            *p == '-'))
        return -1;
    if (*p != '>' || p - tz < 4) return -1;
    p++;
  } else {
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) p++;
    if (p - tz < 3) return -1;
  }
  if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
  off = posix_offset(&p);
  if (off < 0 || *p) return -1;
  *east = -sign * off;   /* POSIX offsets are positive west */
  return 0;
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

/* Whether the decimal text reads back as f; sets *d to what strtod makes of it. */
static int reads_back(const char *text, float f, double *d) {
  if (strtof(text, NULL) != f) return 0;
  *d = strtod(text, NULL);
  return 1;
}

int binary_float4(const char *v, size_t len, double *out) {
  unsigned int u;
  float f;
  int prec;
  if (len != 4) return -1;
  u = (unsigned int)big_endian(v, 4);
  memcpy(&f, &u, sizeof f);
  if (!isfinite(f) || f == 0) {   /* NaN, +-Infinity, +-0: strtod of the text is the float widened */
    *out = (double)f;
    return 0;
  }
  /* The shortest decimal that reads back, nearest f among those of its
   * length (what the server's Ryu output is): the correctly rounded one, or
   * one unit of its last digit either side (the interval of a float is
   * lopsided at a power of two). */
  for (prec = 1; prec <= 9; prec++) {
    char text[40], digits[16], cand[48];
    double d, best = 0, bestdist = -1;
    long long m;
    int exp, k;
    snprintf(text, sizeof text, "%.*e", prec - 1, (double)f);
    if (reads_back(text, f, out)) return 0;
    {                                 /* "-d.ddde+XX" -> m, exp */
      const char *s = text;
      int n = 0;
      int neg = *s == '-';
      if (neg) s++;
      for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[n++] = *s;
      digits[n] = '\0';
      if (*s != 'e') return -1;
      exp = atoi(s + 1) - (n - 1);
      m = atoll(digits);
      if (neg) m = -m;
    }
    for (k = -1; k <= 1; k += 2) {
      snprintf(cand, sizeof cand, "%llde%d", m + k, exp);
      if (reads_back(cand, f, &d)) {
        double dist = fabs(d - (double)f);
        if (bestdist < 0 || dist < bestdist) { best = d; bestdist = dist; }
      }
    }
    if (bestdist >= 0) {
      *out = best;
      return 0;
    }
  }
  return -1;   /* not reached: 9 digits always read back */
}

int binary_uuid(const char *v, size_t len, char out[36]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  size_t i, o = 0;
  if (len != 16) return -1;
  memcpy(b, v, 16);
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o] = hex[b[i] >> 4];
    out[o + 1] = hex[b[i] & 15];
    o += 2;
  }
  return 0;
}

/* ---- numeric -------------------------------------------------------------------- */

#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000
#define NUMERIC_DSCALE_MAX 0x3FFF

static int put_special(const char *s, char *out, size_t cap, size_t *outlen) {
  *outlen = strlen(s);
  if (*outlen > cap) return 1;
  memcpy(out, s, *outlen);
  return 0;
}

int binary_numeric(const char *v, size_t len, char *out, size_t cap, size_t *outlen) {
  int ndigits, weight, d, i;
  unsigned int sign, dscale;
  size_t need, o = 0;
  if (len < 8) return -1;
  ndigits = (int)(short)(unsigned short)big_endian(v, 2);
  weight = (int)(short)(unsigned short)big_endian(v + 2, 2);
  sign = (unsigned int)big_endian(v + 4, 2);
  dscale = (unsigned int)big_endian(v + 6, 2);
  if (ndigits < 0 || len != 8 + 2 * (size_t)ndigits) return -1;
  if (sign == NUMERIC_NAN) return put_special("NaN", out, cap, outlen);
  if (sign == NUMERIC_PINF) return put_special("Infinity", out, cap, outlen);
  if (sign == NUMERIC_NINF) return put_special("-Infinity", out, cap, outlen);
  if ((sign != NUMERIC_POS && sign != NUMERIC_NEG) || dscale > NUMERIC_DSCALE_MAX) return -1;
  for (i = 0; i < ndigits; i++)
    if (big_endian(v + 8 + 2 * i, 2) > 9999) return -1;
  /* as the server's get_str_from_var: the sign, the integer part (no leading
   * zeros), then dscale digits after the point */
  need = 1 + (weight >= 0 ? 4 * (size_t)(weight + 1) : 1) + (dscale ? 1 + (size_t)dscale + 4 : 0);
  if (need > cap) {
    *outlen = need;
    return 1;
  }
#define DIGIT(k) ((k) >= 0 && (k) < ndigits ? (int)big_endian(v + 8 + 2 * (k), 2) : 0)
  if (sign == NUMERIC_NEG) out[o++] = '-';
  if (weight < 0) {
    d = weight + 1;
    out[o++] = '0';
  } else {
    for (d = 0; d <= weight; d++) {
      int dig = DIGIT(d), putit = d > 0, div;
      for (div = 1000; div >= 10; div /= 10) {
        int d1 = dig / div;
        dig -= d1 * div;
        putit |= d1 > 0;
        if (putit) out[o++] = (char)('0' + d1);
      }
      out[o++] = (char)('0' + dig);
    }
  }
  if (dscale > 0) {
    size_t end;
    out[o++] = '.';
    end = o + dscale;
    for (i = 0; i < (int)dscale; d++, i += 4) {
      int dig = DIGIT(d);
      out[o++] = (char)('0' + dig / 1000);
      out[o++] = (char)('0' + dig / 100 % 10);
      out[o++] = (char)('0' + dig / 10 % 10);
      out[o++] = (char)('0' + dig % 10);
    }
    o = end;
  }
#undef DIGIT
  *outlen = o;
  return 0;
}

/* ---- dates and times ------------------------------------------------------------- */

#define USECS_PER_DAY 86400000000LL

/* Days since 2000-01-01 -> proleptic Gregorian year (astronomical: 0 is
 * 1 BC), month, day. */
static void civil(long long days, long long *y, int *m, int *d) {
  long long z = days + 10957 + 719468;   /* days since 0000-03-01 */
  long long era = (z >= 0 ? z : z - 146096) / 146097;
  long long doe = z - era * 146097;
  long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  long long mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

/* v in at least width digits, zero-padded; returns the length written. */
static size_t put_digits(char *out, unsigned long long v, int width) {
  char tmp[24];
  int n = 0;
  size_t o = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n < width) tmp[n++] = '0';
  while (n) out[o++] = tmp[--n];
  return o;
}

static void put2(char *out, int v) {
  out[0] = (char)('0' + v / 10);
  out[1] = (char)('0' + v % 10);
}

static size_t put_date(char *out, long long days) {
  long long y;
  int m, d;
  size_t o;
  civil(days, &y, &m, &d);
  o = put_digits(out, (unsigned long long)(y > 0 ? y : 1 - y), 4);
  out[o] = '-';
  put2(out + o + 1, m);
  out[o + 3] = '-';
  put2(out + o + 4, d);
  return o + 6;
}

static size_t put_bc(char *out, size_t o, long long days) {
  long long y;
  int m, d;
  civil(days, &y, &m, &d);
  if (y <= 0) {
    memcpy(out + o, " BC", 3);
    o += 3;
  }
  return o;
}

int binary_date(const char *v, size_t len, char out[BINARY_TIME_MAX], size_t *outlen) {
  int days;
  if (len != 4) return -1;
  days = (int)(unsigned int)big_endian(v, 4);
  if (days == -2147483647 - 1) { memcpy(out, "-infinity", *outlen = 9); return 0; }
  if (days == 2147483647) { memcpy(out, "infinity", *outlen = 8); return 0; }
  *outlen = put_bc(out, put_date(out, days), days);
  return 0;
}

int binary_timestamp(const char *v, size_t len, int with_tz, long east, char out[BINARY_TIME_MAX],
                     size_t *outlen) {
  long long t, days, time;
  int sec, usec;
  size_t o;
  if (len != 8 || east < -604800 || east > 604800) return -1;
  t = (long long)big_endian(v, 8);
  if (t == -9223372036854775807LL - 1) { memcpy(out, "-infinity", *outlen = 9); return 0; }
  if (t == 9223372036854775807LL) { memcpy(out, "infinity", *outlen = 8); return 0; }
  if (t > 9223372036854775807LL - 604800000000LL || t < -9223372036854775807LL + 604800000000LL) return -1;
  if (with_tz) t += (long long)east * 1000000;
  days = t / USECS_PER_DAY;
  time = t % USECS_PER_DAY;
  if (time < 0) {
    time += USECS_PER_DAY;
    days--;
  }
  o = put_date(out, days);
  sec = (int)(time / 1000000 % 60);
  usec = (int)(time % 1000000);
  out[o] = ' ';
  put2(out + o + 1, (int)(time / 3600000000LL));
  out[o + 3] = ':';
  put2(out + o + 4, (int)(time / 60000000 % 60));
  out[o + 6] = ':';
  put2(out + o + 7, sec);
  o += 9;
  if (usec) {  /* six digits, trailing zeros trimmed */
    out[o++] = '.';
    o += put_digits(out + o, (unsigned long long)usec, 6);
    while (out[o - 1] == '0') o--;
  }
  if (with_tz) {  /* as the server's EncodeTimezone */
    long a = east < 0 ? -east : east;
    int h = (int)(a / 3600), mi = (int)(a / 60 % 60), s = (int)(a % 60);
    out[o++] = east >= 0 ? '+' : '-';
    o += put_digits(out + o, (unsigned long long)h, 2);
    if (s || mi) {
      out[o++] = ':';
      put2(out + o, mi);
      o += 2;
    }
    if (s) {
      out[o++] = ':';
      put2(out + o, s);
      o += 2;
    }
  }
  *outlen = put_bc(out, o, days);
  return 0;
}

/* ---- arrays ---------------------------------------------------------------------- */

int binary_array_open(const char *v, size_t len, binary_array *a) {
  long long count = 1;
  int i, flags;
  if (len < 12) return -1;
  a->ndim = (int)(unsigned int)big_endian(v, 4);
  flags = (int)(unsigned int)big_endian(v + 4, 4);
  a->elem = (unsigned int)big_endian(v + 8, 4);
  if (a->ndim < 0 || a->ndim > BINARY_ARRAY_MAXDIM || (flags != 0 && flags != 1)) return -1;
  if (len < 12 + 8 * (size_t)a->ndim) return -1;
  for (i = 0; i < a->ndim; i++) {
    a->dims[i] = (int)(unsigned int)big_endian(v + 12 + 8 * i, 4);   /* the lower bound is not kept */
    if (a->dims[i] < 0) return -1;
    count *= a->dims[i];
    if (count > (long long)len) return -1;   /* each element takes at least 4 bytes */
  }
  a->count = a->ndim ? (long)count : 0;
  a->p = v + 12 + 8 * a->ndim;
  a->end = v + len;
  if (a->count * 4 > a->end - a->p) return -1;
  return 0;
}

int binary_array_next(binary_array *a, const char **ev, size_t *elen) {
  int n;
  if (a->end - a->p < 4) return -1;
  n = (int)(unsigned int)big_endian(a->p, 4);
  a->p += 4;
  if (n == -1) {
    *ev = NULL;
    *elen = 0;
    return 0;
  }
  if (n < 0 || n > a->end - a->p) return -1;
  *ev = a->p;
  *elen = (size_t)n;
  a->p += n;
  return 0;
}
