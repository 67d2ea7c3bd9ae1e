/* binary: the binary wire format of the types results may carry in it, and
 * when a session may ask for it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "binary.h"
#include "test.h"

static void test_eligible(void)
{
  CHECK_INT(binary_eligible(23), BINARY_YES);
  CHECK_INT(binary_eligible(3802), BINARY_YES);
  CHECK_INT(binary_eligible(2950), BINARY_YES);
  CHECK_INT(binary_eligible(700), BINARY_YES);        /* float4 */
  CHECK_INT(binary_eligible(1700), BINARY_YES);       /* numeric */
  CHECK_INT(binary_eligible(1007), BINARY_YES);       /* int4[] */
  CHECK_INT(binary_eligible(1231), BINARY_YES);       /* numeric[] */
  CHECK_INT(binary_eligible(1082), BINARY_ISO);       /* date */
  CHECK_INT(binary_eligible(1115), BINARY_ISO);       /* timestamp[] */
  CHECK_INT(binary_eligible(1184), BINARY_FIXED_TZ);  /* timestamptz */
  CHECK_INT(binary_eligible(1185), BINARY_FIXED_TZ);  /* timestamptz[] */
  CHECK_INT(binary_eligible(1186), BINARY_NO);        /* interval */
  CHECK_INT(binary_eligible(1083), BINARY_NO);        /* time */
  CHECK_INT(binary_eligible(1187), BINARY_NO);        /* interval[] */
  CHECK_INT(binary_eligible(0), BINARY_NO);
  CHECK_INT(binary_array_elem(1007), 23);
  CHECK_INT(binary_array_elem(3807), 3802);
  CHECK_INT(binary_array_elem(23), 0);
}

static void test_session(void)
{
  long east = 1;

  CHECK_INT(binary_session_allows(BINARY_YES, NULL, NULL, NULL), 1);
  CHECK_INT(binary_session_allows(BINARY_NO, "ISO, MDY", "UTC", "on"), 0);
  CHECK_INT(binary_session_allows(BINARY_ISO, "ISO, MDY", "Europe/Berlin", "on"), 1);
  CHECK_INT(binary_session_allows(BINARY_ISO, "ISO, DMY", NULL, "on"), 1);
  CHECK_INT(binary_session_allows(BINARY_ISO, "SQL, DMY", "UTC", "on"), 0);
  CHECK_INT(binary_session_allows(BINARY_ISO, "ISO, MDY", "UTC", "off"), 0);
  CHECK_INT(binary_session_allows(BINARY_ISO, NULL, "UTC", "on"), 0);
  CHECK_INT(binary_session_allows(BINARY_FIXED_TZ, "ISO, MDY", "UTC", "on"), 1);
  CHECK_INT(binary_session_allows(BINARY_FIXED_TZ, "ISO, MDY", "Europe/Berlin", "on"), 0);
  CHECK_INT(binary_session_allows(BINARY_FIXED_TZ, "German", "UTC", "on"), 0);

  CHECK_INT(binary_tz_offset("UTC", &east), 0);
  CHECK_INT(east, 0);
  CHECK_INT(binary_tz_offset("Etc/GMT+5", &east), 0);
  CHECK_INT(east, -5 * 3600);
  CHECK_INT(binary_tz_offset("Etc/GMT-14", &east), 0);
  CHECK_INT(east, 14 * 3600);
  CHECK_INT(binary_tz_offset("UTC+3", &east), 0);
  CHECK_INT(east, -3 * 3600);
  CHECK_INT(binary_tz_offset("<+05:45>-05:45", &east), 0);
  CHECK_INT(east, 5 * 3600 + 45 * 60);
  CHECK_INT(binary_tz_offset("<-0330>+03:30", &east), 0);
  CHECK_INT(east, -(3 * 3600 + 30 * 60));
  CHECK_INT(binary_tz_offset("XYZ-3:15:20", &east), 0);
  CHECK_INT(east, 3 * 3600 + 15 * 60 + 20);
  CHECK_INT(binary_tz_offset("Europe/Berlin", &east), -1);
  CHECK_INT(binary_tz_offset("EST5EDT", &east), -1);        /* daylight saving rules */
  CHECK_INT(binary_tz_offset("CET", &east), -1);
  CHECK_INT(binary_tz_offset("Etc/GMT+", &east), -1);
  CHECK_INT(binary_tz_offset("Etc/GMT+15", &east), -1);
  CHECK_INT(binary_tz_offset("Etc/GMT+5x", &east), -1);
  CHECK_INT(binary_tz_offset("<+05", &east), -1);
  CHECK_INT(binary_tz_offset("<>5", &east), -1);
  CHECK_INT(binary_tz_offset("AB5", &east), -1);
  CHECK_INT(binary_tz_offset("UTC+", &east), -1);
  CHECK_INT(binary_tz_offset("UTC+1:60", &east), -1);
  CHECK_INT(binary_tz_offset("", &east), -1);
}

static void test_ints(void)
{
  long long v = 0;

  CHECK_INT(binary_int("\x80\x00", 2, 0, &v), 0);
  CHECK_INT(v, -32768);
  CHECK_INT(binary_int("\x7f\xff", 2, 0, &v), 0);
  CHECK_INT(v, 32767);
  CHECK_INT(binary_int("\xff\xff\xff\xff", 4, 0, &v), 0);
  CHECK_INT(v, -1);
  CHECK_INT(binary_int("\xff\xff\xff\xff", 4, 1, &v), 0);
  CHECK_INT(v, 4294967295LL);
  CHECK_INT(binary_int("\x80\x00\x00\x00", 4, 0, &v), 0);
  CHECK_INT(v, -2147483647LL - 1);
  CHECK_INT(binary_int("\x80\x00\x00\x00\x00\x00\x00\x00", 8, 0, &v), 0);
  CHECK(v == -9223372036854775807LL - 1);
  CHECK_INT(binary_int("\x7f\xff\xff\xff\xff\xff\xff\xff", 8, 0, &v), 0);
  CHECK(v == 9223372036854775807LL);
  CHECK_INT(binary_int("\x00\x00\x01\x00", 4, 0, &v), 0);
  CHECK_INT(v, 256);
  CHECK_INT(binary_int("\x01\x02\x03", 3, 0, &v), -1);
}

static void test_floats(void)
{
  double d = 0;

  CHECK_INT(binary_float8("\x3f\xf8\x00\x00\x00\x00\x00\x00", 8, &d), 0);
  CHECK(d == 1.5);
  CHECK_INT(binary_float8("\x80\x00\x00\x00\x00\x00\x00\x00", 8, &d), 0);
  CHECK(d == 0 && signbit(d));
  CHECK_INT(binary_float8("\x7f\xf0\x00\x00\x00\x00\x00\x00", 8, &d), 0);
  CHECK(isinf(d) && d > 0);
  CHECK_INT(binary_float8("\x7f\xf8\x00\x00\x00\x00\x00\x00", 8, &d), 0);
  CHECK(isnan(d));
  CHECK_INT(binary_float8("\x00\x00\x00\x00\x00\x00\x00\x01", 8, &d), 0);
  CHECK(d == 4.9406564584124654e-324);
  CHECK_INT(binary_float8("\x3f\xf8", 2, &d), -1);
}

static void test_uuid(void)
{
  char out[36];

  CHECK_INT(binary_uuid("\xa0\xee\xbc\x99\x9c\x0b\x4e\xf8\xbb\x6d\x6b\xb9\xbd\x38\x0a\x11", 16, out), 0);
  CHECK_MEM(out, 36, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  CHECK_INT(binary_uuid("\x00", 1, out), -1);
}

/* A numeric in the wire format: ndigits, weight, sign, dscale, digits. */
static size_t numeric(char *buf, int weight, unsigned sign, unsigned dscale, int ndigits, const int *digits)
{
  int i;
  buf[0] = (char)(ndigits >> 8);
  buf[1] = (char)ndigits;
  buf[2] = (char)((unsigned)weight >> 8);
  buf[3] = (char)weight;
  buf[4] = (char)(sign >> 8);
  buf[5] = (char)sign;
  buf[6] = (char)(dscale >> 8);
  buf[7] = (char)dscale;
  for (i = 0; i < ndigits; i++) {
    buf[8 + 2 * i] = (char)(digits[i] >> 8);
    buf[9 + 2 * i] = (char)digits[i];
  }
  return 8 + 2 * (size_t)ndigits;
}

#define CHECK_NUMERIC(weight, sign, dscale, ndigits, digits, want)                      \
  do {                                                                                  \
    char in_[64], out_[2048];                                                           \
    size_t len_ = numeric(in_, weight, sign, dscale, ndigits, digits), outlen_ = 0;     \
    CHECK_INT(binary_numeric(in_, len_, out_, sizeof out_, &outlen_), 0);               \
    CHECK_MEM(out_, outlen_, want);                                                     \
  } while (0)

static void test_numeric(void)
{
  static const int d1[] = {1, 5000}, d2[] = {1234, 5678, 9012, 3456, 7890, 1234, 5678, 9000};
  static const int d3[] = {1}, d4[] = {10}, d5[] = {9999, 9999}, d6[] = {123};
  char in[64], out[16];
  size_t len, outlen = 0;

  CHECK_NUMERIC(0, 0, 0, 0, d1, "0");
  CHECK_NUMERIC(0, 0, 2, 0, d1, "0.00");
  CHECK_NUMERIC(0, 0x4000, 2, 0, d1, "-0.00");              /* as get_str_from_var would print it */
  CHECK_NUMERIC(0, 0, 2, 2, d1, "1.50");
  CHECK_NUMERIC(0, 0x4000, 4, 2, d1, "-1.5000");
  CHECK_NUMERIC(0, 0, 0, 2, d1, "1");                       /* dscale cuts */
  CHECK_NUMERIC(4, 0, 9, 8, d2, "12345678901234567890.123456789");
  CHECK_NUMERIC(-1, 0, 4, 1, d3, "0.0001");
  CHECK_NUMERIC(-2, 0, 6, 1, d4, "0.000000");                /* 0.0000001 cut at 6 */
  CHECK_NUMERIC(-2, 0, 8, 1, d4, "0.00000010");
  CHECK_NUMERIC(-2, 0, 10, 1, d4, "0.0000001000");
  CHECK_NUMERIC(1, 0, 0, 1, d3, "10000");
  CHECK_NUMERIC(2, 0, 0, 1, d3, "100000000");
  CHECK_NUMERIC(0, 0, 4, 2, d5, "9999.9999");
  CHECK_NUMERIC(0, 0x4000, 3, 1, d6, "-123.000");
  CHECK_NUMERIC(0, 0xC000, 0, 0, d1, "NaN");
  CHECK_NUMERIC(0, 0xD000, 0, 0, d1, "Infinity");
  CHECK_NUMERIC(0, 0xF000, 0, 0, d1, "-Infinity");

  /* a text longer than the buffer: asks for more */
  len = numeric(in, 250, 0, 0, 1, d3);
  CHECK_INT(binary_numeric(in, len, out, sizeof out, &outlen), 1);
  CHECK(outlen >= 1001);
  {
    char *big = malloc(outlen);
    size_t need = outlen;
    CHECK_INT(binary_numeric(in, len, big, need, &outlen), 0);
    CHECK_INT(outlen, 1001);
    CHECK(big[0] == '1' && big[1] == '0' && big[1000] == '0');
    free(big);
  }
  len = numeric(in, -250, 0, 1000, 1, d3);                  /* 1e-1000 */
  {
    char *big = malloc(2048);
    CHECK_INT(binary_numeric(in, len, big, 2048, &outlen), 0);
    CHECK_INT(outlen, 1002);
    CHECK(memcmp(big, "0.000", 5) == 0 && big[1001] == '1');
    free(big);
  }

  /* malformed */
  len = numeric(in, 0, 0, 0, 1, d3);
  CHECK_INT(binary_numeric(in, len - 1, out, sizeof out, &outlen), -1);   /* short */
  CHECK_INT(binary_numeric(in, 7, out, sizeof out, &outlen), -1);
  len = numeric(in, 0, 0x1234, 0, 1, d3);
  CHECK_INT(binary_numeric(in, len, out, sizeof out, &outlen), -1);       /* sign */
  len = numeric(in, 0, 0, 0x4000, 1, d3);
  CHECK_INT(binary_numeric(in, len, out, sizeof out, &outlen), -1);       /* dscale */
  {
    static const int bad[] = {10000};
    len = numeric(in, 0, 0, 0, 1, bad);
    CHECK_INT(binary_numeric(in, len, out, sizeof out, &outlen), -1);     /* a digit over 9999 */
  }
  len = numeric(in, 0, 0, 0, 0, d3);
  in[0] = (char)0xff;                                                      /* ndigits < 0 */
  CHECK_INT(binary_numeric(in, len, out, sizeof out, &outlen), -1);
}

static void be32(char *p, long v)
{
  unsigned long u = (unsigned long)v;
  p[0] = (char)(u >> 24);
  p[1] = (char)(u >> 16);
  p[2] = (char)(u >> 8);
  p[3] = (char)u;
}

static void be64(char *p, long long v)
{
  unsigned long long u = (unsigned long long)v;
  int i;
  for (i = 7; i >= 0; i--, u >>= 8) p[i] = (char)u;
}

#define CHECK_DATE(days, want)                                     \
  do {                                                             \
    char in_[4], out_[BINARY_TIME_MAX];                            \
    size_t n_ = 0;                                                 \
    be32(in_, days);                                               \
    CHECK_INT(binary_date(in_, 4, out_, &n_), 0);                  \
    CHECK_MEM(out_, n_, want);                                     \
  } while (0)

#define CHECK_TS(usecs, with_tz, east, want)                           \
  do {                                                                 \
    char in_[8], out_[BINARY_TIME_MAX];                                \
    size_t n_ = 0;                                                     \
    be64(in_, usecs);                                                  \
    CHECK_INT(binary_timestamp(in_, 8, with_tz, east, out_, &n_), 0);  \
    CHECK_MEM(out_, n_, want);                                         \
  } while (0)

static void test_dates(void)
{
  char out[BINARY_TIME_MAX];
  size_t n;
  const long long day = 86400000000LL;

  CHECK_DATE(0, "2000-01-01");
  CHECK_DATE(-1, "1999-12-31");
  CHECK_DATE(59, "2000-02-29");
  CHECK_DATE(-10957, "1970-01-01");
  CHECK_DATE(-730119, "0001-01-01");
  CHECK_DATE(-730120, "0001-12-31 BC");
  CHECK_DATE(-746117, "0044-03-15 BC");
  CHECK_DATE(-2451545, "4714-11-24 BC");                 /* Julian day 0 */
  CHECK_DATE(2145031948, "5874897-12-31");               /* the last date */
  CHECK_DATE(2921940, "10000-01-01");
  CHECK_DATE(-2147483647L - 1, "-infinity");
  CHECK_DATE(2147483647L, "infinity");
  CHECK_INT(binary_date("\0\0\0", 3, out, &n), -1);

  CHECK_TS(0, 0, 0, "2000-01-01 00:00:00");
  CHECK_TS(0, 1, 0, "2000-01-01 00:00:00+00");
  CHECK_TS(-1, 0, 0, "1999-12-31 23:59:59.999999");
  CHECK_TS(120000, 0, 0, "2000-01-01 00:00:00.12");
  CHECK_TS(1, 1, 0, "2000-01-01 00:00:00.000001+00");
  CHECK_TS(0, 1, -18000, "1999-12-31 19:00:00-05");
  CHECK_TS(0, 1, 19800, "2000-01-01 05:30:00+05:30");
  CHECK_TS(0, 1, -12600, "1999-12-31 20:30:00-03:30");
  CHECK_TS(0, 1, 3 * 3600 + 15 * 60 + 20, "2000-01-01 03:15:20+03:15:20");
  CHECK_TS(-746117 * day + 12 * 3600000000LL, 0, 0, "0044-03-15 12:00:00 BC");
  CHECK_TS(-746117 * day + 12 * 3600000000LL, 1, 0, "0044-03-15 12:00:00+00 BC");
  CHECK_TS(-730119 * day, 1, -3600, "0001-12-31 23:00:00-01 BC");
  CHECK_TS(-2451545 * day, 0, 0, "4714-11-24 00:00:00 BC");
  CHECK_TS(-9223372036854775807LL - 1, 1, 0, "-infinity");
  CHECK_TS(9223372036854775807LL, 0, 0, "infinity");
  CHECK_TS(9223371331199999999LL, 0, 0, "294276-12-31 23:59:59.999999");   /* the last one */
  CHECK_INT(binary_timestamp("\0\0\0\0", 4, 0, 0, out, &n), -1);
  CHECK_INT(binary_timestamp("\0\0\0\0\0\0\0\0", 8, 1, 700000, out, &n), -1);   /* offset out of range */
}

/* float4 bits -> the double binary_float4 gives */
static double f4(unsigned long bits)
{
  char in[4];
  double d = -1;
  be32(in, (long)bits);
  CHECK_INT(binary_float4(in, 4, &d), 0);
  return d;
}

static void test_float4(void)
{
  double d;
  CHECK(f4(0x3f8ccccdUL) == 1.1);                 /* 1.1f prints as "1.1" */
  CHECK(f4(0x3dcccccdUL) == 0.1);
  CHECK(f4(0x3fc00000UL) == 1.5);
  CHECK(f4(0x4b800000UL) == 16777216.0);
  CHECK(f4(0x7f7fffffUL) == 3.4028235e38);
  CHECK(f4(0x00000001UL) == 1e-45);               /* the smallest subnormal */
  CHECK(f4(0x00800000UL) == 1.1754944e-38);       /* the smallest normal */
  CHECK(f4(0x3eaaaaabUL) == 0.33333334);
  CHECK(f4(0x42f6e979UL) == 123.456);
  d = f4(0x80000000UL);
  CHECK(d == 0 && signbit(d));
  CHECK(isnan(f4(0x7fc00000UL)));
  CHECK(isinf(f4(0x7f800000UL)) && f4(0x7f800000UL) > 0);
  CHECK(isinf(f4(0xff800000UL)) && f4(0xff800000UL) < 0);
  CHECK(f4(0xbf8ccccdUL) == -1.1);
  CHECK_INT(binary_float4("\0\0", 2, &d), -1);
  {  /* every power of two reads back as the float it came from */
    int e;
    for (e = 1; e < 255; e++) {
      unsigned long bits = (unsigned long)e << 23;
      union { unsigned int u; float f; } x;
      x.u = (unsigned int)bits;
      CHECK((float)f4(bits) == x.f);
    }
  }
}

static void test_arrays(void)
{
  /* int4[] [0:1]={7,NULL} */
  static const char one[] = "\0\0\0\1" "\0\0\0\1" "\0\0\0\x17" "\0\0\0\2" "\0\0\0\0"
                            "\0\0\0\4" "\0\0\0\7" "\xff\xff\xff\xff";
  binary_array a;
  const char *ev;
  size_t elen;
  char bad[sizeof one];

  CHECK_INT(binary_array_open(one, sizeof one - 1, &a), 0);
  CHECK_INT(a.ndim, 1);
  CHECK_INT(a.elem, 23);
  CHECK_INT(a.dims[0], 2);
  CHECK_INT(a.count, 2);
  CHECK_INT(binary_array_next(&a, &ev, &elen), 0);
  CHECK(ev != NULL && elen == 4 && ev[3] == 7);
  CHECK_INT(binary_array_next(&a, &ev, &elen), 0);
  CHECK(ev == NULL);
  CHECK_INT(binary_array_next(&a, &ev, &elen), -1);       /* past the end */

  CHECK_INT(binary_array_open("\0\0\0\0\0\0\0\0\0\0\0\x17", 12, &a), 0);   /* '{}' */
  CHECK_INT(a.count, 0);
  CHECK_INT(binary_array_open(one, 11, &a), -1);
  CHECK_INT(binary_array_open(one, 19, &a), -1);           /* dims cut */
  CHECK_INT(binary_array_open(one, sizeof one - 5, &a), 0);
  CHECK_INT(binary_array_next(&a, &ev, &elen), 0);
  CHECK_INT(binary_array_next(&a, &ev, &elen), -1);        /* the NULL's length cut */
  memcpy(bad, one, sizeof one);
  bad[3] = 7;                                               /* ndim 7 */
  CHECK_INT(binary_array_open(bad, sizeof one - 1, &a), -1);
  memcpy(bad, one, sizeof one);
  bad[7] = 2;                                               /* flags */
  CHECK_INT(binary_array_open(bad, sizeof one - 1, &a), -1);
  memcpy(bad, one, sizeof one);
  bad[15] = 100;                                            /* more elements than bytes */
  CHECK_INT(binary_array_open(bad, sizeof one - 1, &a), -1);
  memcpy(bad, one, sizeof one);
  bad[12] = (char)0x80;                                     /* a negative dimension */
  CHECK_INT(binary_array_open(bad, sizeof one - 1, &a), -1);
  memcpy(bad, one, sizeof one);
  bad[23] = 9;                                              /* an element longer than the rest */
  CHECK_INT(binary_array_open(bad, sizeof one - 1, &a), 0);
  CHECK_INT(binary_array_next(&a, &ev, &elen), -1);
  memcpy(bad, one, sizeof one);
  bad[28] = (char)0x80;                                     /* a length below -1 */
  bad[31] = 0;
  CHECK_INT(binary_array_open(bad, sizeof one - 1, &a), 0);
  CHECK_INT(binary_array_next(&a, &ev, &elen), 0);
  CHECK_INT(binary_array_next(&a, &ev, &elen), -1);
}

void test_binary(void)
{
  test_session();
  test_numeric();
  test_dates();
  test_float4();
  test_arrays();
  test_eligible();
  test_ints();
  test_floats();
  test_uuid();
}
