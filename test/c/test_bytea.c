/* bytea: hex and escape text formats. */
#include <string.h>

#include "bytea.h"
#include "test.h"

#define OK(text, want, wantlen) ok_case(__FILE__, __LINE__, text, sizeof(text) - 1, want, wantlen)
#define BAD(text) bad_case(__FILE__, __LINE__, text, sizeof(text) - 1)

static void ok_case(const char *file, int line, const char *text, size_t len,
                    const char *want, size_t wantlen)
{
  char out[256];
  size_t outlen = 9999;
  int rc = bytea_decode(text, len, out, &outlen);

  test_check_int(file, line, text, rc, 0);
  if (rc == 0)
    test_check_mem(file, line, text, out, outlen, want, wantlen);
}

static void bad_case(const char *file, int line, const char *text, size_t len)
{
  char out[256];
  size_t outlen = 0;

  test_check_int(file, line, text, bytea_decode(text, len, out, &outlen), -1);
}

static void test_hex(void)
{
  OK("\\x", "", 0);
  OK("\\x00", "\0", 1);
  OK("\\x0a1b", "\x0a\x1b", 2);
  OK("\\xdeadBEEF", "\xde\xad\xbe\xef", 4);
  OK("\\xffFF00", "\xff\xff\x00", 3);
  OK("\\x48656c6c6f", "Hello", 5);
  BAD("\\x0");        /* odd length */
  BAD("\\x012");
  BAD("\\xg0");
  BAD("\\x0g");
  BAD("\\x 00");      /* nothing but hex digits */
  BAD("\\x00 ");
  BAD("\\x0\n");
  BAD("\\x\\x00");
}

static void test_escape(void)
{
  OK("", "", 0);
  OK("abc", "abc", 3);
  OK("a\\\\b", "a\\b", 3);
  OK("\\\\", "\\", 1);
  OK("\\000", "\0", 1);
  OK("\\377", "\xff", 1);
  OK("\\101\\102", "AB", 2);
  OK("a\\000\\\\b", "a\0\\b", 4);
  OK("\\\\000", "\\000", 4);       /* an escaped backslash, then digits */
  OK("\xc3\xa9", "\xc3\xa9", 2);   /* other bytes are literal */
  OK("x\\012y", "x\ny", 3);
  BAD("\\");
  BAD("a\\");
  BAD("\\0");
  BAD("\\00");
  BAD("\\400");      /* > 0377 */
  BAD("\\800");
  BAD("\\08");
  BAD("\\n");
  BAD("\\X00");      /* only a lowercase \x starts hex */
  BAD("ab\\\\\\");
}

static void test_in_place(void)
{
  char text[] = "\\x414243";
  char esc[] = "a\\101\\\\b";
  size_t n = 0;

  CHECK_INT(bytea_decode(text, strlen(text), text, &n), 0);
  CHECK_MEM(text, n, "ABC");
  CHECK_INT(bytea_decode(esc, strlen(esc), esc, &n), 0);
  CHECK_MEM(esc, n, "aA\\b");
}

static void test_all_bytes(void)
{
  char hex[2 + 512];
  char esc[4 * 256];
  char out[512];
  size_t n = 0, e = 0, i;
  int ok = 1;
  static const char digits[] = "0123456789abcdef";

  hex[0] = '\\';
  hex[1] = 'x';
  for (i = 0; i < 256; i++) {
    hex[2 + 2 * i] = digits[i >> 4];
    hex[3 + 2 * i] = digits[i & 15];
    esc[e++] = '\\';
    esc[e++] = (char)('0' + (i >> 6));
    esc[e++] = (char)('0' + (i >> 3 & 7));
    esc[e++] = (char)('0' + (i & 7));
  }
  CHECK_INT(bytea_decode(hex, sizeof hex, out, &n), 0);
  CHECK_INT(n, 256);
  for (i = 0; i < 256; i++)
    ok &= (unsigned char)out[i] == i;
  CHECK(ok);
  CHECK_INT(bytea_decode(esc, e, out, &n), 0);
  CHECK_INT(n, 256);
  for (i = 0; i < 256; i++)
    ok &= (unsigned char)out[i] == i;
  CHECK(ok);
}

void test_bytea(void)
{
  test_hex();
  test_escape();
  test_in_place();
  test_all_bytes();
}
