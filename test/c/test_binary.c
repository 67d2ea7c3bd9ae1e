/* binary: the binary wire format of the types results may carry in it. */
#include <math.h>
#include <string.h>

#include "binary.h"
#include "test.h"

static void test_eligible(void)
{
  CHECK_INT(binary_eligible(23), 1);
  CHECK_INT(binary_eligible(3802), 1);
  CHECK_INT(binary_eligible(2950), 1);
  CHECK_INT(binary_eligible(700), 0);   /* float4: text and binary differ */
  CHECK_INT(binary_eligible(1700), 0);  /* numeric */
  CHECK_INT(binary_eligible(1184), 0);  /* timestamptz */
  CHECK_INT(binary_eligible(1007), 0);  /* int4[] */
  CHECK_INT(binary_eligible(0), 0);
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

void test_binary(void)
{
  test_eligible();
  test_ints();
  test_floats();
  test_uuid();
}
