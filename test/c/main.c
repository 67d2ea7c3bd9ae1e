/* Runs every suite; the last line is "N passed, N failed", the exit status
 * non-zero when anything failed. */
#include <stdio.h>
#include <stdlib.h>

#include "test.h"

static int passed, failed;

/* Counts one check; prints where it failed. */
void test_check(int ok, const char *file, int line, const char *expr)
{
  if (ok) {
    passed++;
    return;
  }
  failed++;
  printf("FAIL %s:%d: %s\n", file, line, expr);
}

/* Counts one integer comparison. */
void test_check_int(const char *file, int line, const char *expr, long long got,
                    long long want)
{
  if (got == want) {
    passed++;
    return;
  }
  failed++;
  printf("FAIL %s:%d: %s is %lld, expected %lld\n", file, line, expr, got, want);
}

static void print_escaped(const char *s, size_t len)
{
  size_t i;

  putchar('"');
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      printf("\\x%02x", c);
    else
      putchar(c);
  }
  putchar('"');
}

/* Counts one byte-string comparison. */
void test_check_mem(const char *file, int line, const char *expr, const char *got,
                    size_t gotlen, const char *want, size_t wantlen)
{
  if (got != NULL && gotlen == wantlen && memcmp(got, want, wantlen) == 0) {
    passed++;
    return;
  }
  failed++;
  printf("FAIL %s:%d: %s is ", file, line, expr);
  if (got == NULL)
    printf("NULL");
  else
    print_escaped(got, gotlen);
  printf(", expected ");
  print_escaped(want, wantlen);
  putchar('\n');
}

int main(void)
{
  test_strbuf();
  test_array_literal();
  test_bytea();
  test_json();
  test_redact();
  test_sql_split();
  test_conninfo();
  test_pool_core();
  test_pool_registry();
  test_copy_text();
  test_binary();
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
