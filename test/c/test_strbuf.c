/* strbuf: growth, NUL termination, the sticky failed flag, printf. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "strbuf.h"
#include "test.h"

static void test_empty(void)
{
  strbuf b;

  strbuf_init(&b);
  CHECK(b.data == NULL);
  CHECK_INT(b.len, 0);
  CHECK_INT(b.failed, 0);
  strbuf_append(&b, NULL, 0); /* an empty append allocates and terminates */
  CHECK(b.data != NULL);
  CHECK_INT(b.len, 0);
  CHECK_STR(b.data, "");
  strbuf_free(&b);
  CHECK(b.data == NULL);
  CHECK_INT(b.len, 0);
  strbuf_free(&b); /* twice is harmless */
  CHECK(b.data == NULL);
}

static void test_append(void)
{
  strbuf b;
  int i;

  strbuf_init(&b);
  strbuf_puts(&b, "hello");
  strbuf_putc(&b, ' ');
  strbuf_append(&b, "world!!!", 5);
  CHECK_MEM(b.data, b.len, "hello world");
  CHECK_INT(b.data[b.len], '\0');
  strbuf_append(&b, "a\0b", 3);
  CHECK_BYTES(b.data, b.len, "hello worlda\0b", 14);
  CHECK_INT(b.data[b.len], '\0');

  /* growth across many reallocations keeps every byte */
  strbuf_reset(&b);
  for (i = 0; i < 10000; i++)
    strbuf_putc(&b, (char)('a' + i % 26));
  CHECK_INT(b.len, 10000);
  CHECK(b.cap > b.len);
  CHECK_INT(b.data[b.len], '\0');
  for (i = 0; i < 10000; i++)
    if (b.data[i] != (char)('a' + i % 26))
      break;
  CHECK_INT(i, 10000);
  strbuf_free(&b);
}

static void test_reset(void)
{
  strbuf b;
  char *before;
  size_t cap;

  strbuf_init(&b);
  strbuf_reset(&b); /* on an empty buffer */
  CHECK(b.data == NULL);
  strbuf_puts(&b, "some text");
  before = b.data;
  cap = b.cap;
  strbuf_reset(&b);
  CHECK_INT(b.len, 0);
  CHECK(b.data == before);
  CHECK_INT(b.cap, cap);
  CHECK_STR(b.data, "");
  strbuf_puts(&b, "x");
  CHECK_MEM(b.data, b.len, "x");
  strbuf_free(&b);
}

static void test_self_append(void)
{
  strbuf b;
  int i;

  strbuf_init(&b);
  strbuf_puts(&b, "abc");
  for (i = 0; i < 8; i++) /* each round doubles; forces reallocation */
    strbuf_append(&b, b.data, b.len);
  CHECK_INT(b.len, 3 * 256);
  CHECK(memcmp(b.data, "abcabcabc", 9) == 0);
  CHECK(memcmp(b.data + b.len - 6, "abcabc", 6) == 0);
  strbuf_append(&b, b.data + 1, 2);
  CHECK(memcmp(b.data + b.len - 3, "cbc", 3) == 0);
  strbuf_free(&b);
}

static void test_printf(void)
{
  strbuf b;
  char big[1000];
  size_t i;

  strbuf_init(&b);
  strbuf_printf(&b, "%d-%s-%c", 42, "x", 'y');
  CHECK_MEM(b.data, b.len, "42-x-y");
  strbuf_printf(&b, "%s", "");
  CHECK_MEM(b.data, b.len, "42-x-y");
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  strbuf_printf(&b, "[%s]", big); /* longer than the free space: second pass */
  CHECK_INT(b.len, 6 + 2 + 999);
  CHECK_INT(b.data[6], '[');
  CHECK_INT(b.data[b.len - 1], ']');
  CHECK_INT(b.data[b.len], '\0');
  for (i = 7; i < b.len - 1; i++)
    if (b.data[i] != 'z')
      break;
  CHECK_INT(i, b.len - 1);
  strbuf_free(&b);

  strbuf_init(&b); /* printf on a fresh buffer */
  strbuf_printf(&b, "%s", "");
  CHECK(b.data != NULL);
  CHECK_STR(b.data, "");
  strbuf_printf(&b, "%05.1f|%x|%lld", 3.14159, 255u, -9223372036854775807LL - 1);
  CHECK_STR(b.data, "003.1|ff|-9223372036854775808");
  strbuf_free(&b);
}

static void test_failed(void)
{
  strbuf b;
  char dummy[4] = "abc";

  /* a size that overflows: fails without touching the source */
  strbuf_init(&b);
  strbuf_puts(&b, "keep");
  strbuf_append(&b, dummy, SIZE_MAX - 2);
  CHECK_INT(b.failed, 1);
  CHECK_MEM(b.data, b.len, "keep");
  /* sticky: later appends are no-ops */
  strbuf_puts(&b, "more");
  strbuf_putc(&b, 'c');
  strbuf_printf(&b, "%d", 1);
  CHECK_INT(b.failed, 1);
  CHECK_MEM(b.data, b.len, "keep");
  /* reset clears it */
  strbuf_reset(&b);
  CHECK_INT(b.failed, 0);
  strbuf_puts(&b, "ok");
  CHECK_MEM(b.data, b.len, "ok");
  strbuf_free(&b);
}

/* strbuf_format_int writes what "%lld" writes, at the extremes too. */
static void test_format_int(void)
{
  static const long long cases[] = {0, 1, -1, 9, 10, -10, 2147483647LL, -2147483648LL,
                                    9223372036854775807LL, -9223372036854775807LL - 1};
  size_t i;
  char got[24], want[24];
  strbuf b;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(want, sizeof want, "%lld", cases[i]);
    CHECK_INT((long)strbuf_format_int(got, cases[i]), (long)strlen(want));
    CHECK_STR(got, want);
  }
  strbuf_init(&b);
  strbuf_puts(&b, "n=");
  strbuf_put_int(&b, -42);
  CHECK_STR(b.data, "n=-42");
  strbuf_free(&b);
}

/* strbuf_init_with: the caller's storage until it is outgrown, then the heap. */
static void test_init_with(void)
{
  char small[8];
  strbuf b;
  size_t i;

  strbuf_init_with(&b, small, sizeof small);
  CHECK_STR(b.data, "");
  strbuf_puts(&b, "abcdefg"); /* 7 + NUL: fits */
  CHECK(b.data == small);
  CHECK_STR(b.data, "abcdefg");
  strbuf_putc(&b, 'h');       /* outgrows it: copied to the heap */
  CHECK(b.data != small);
  CHECK_STR(b.data, "abcdefgh");
  CHECK_STR(small, "abcdefg");
  for (i = 0; i < 100; i++) strbuf_putc(&b, 'x');
  CHECK_INT((long)b.len, 108);
  strbuf_free(&b);            /* frees the heap copy */
  CHECK(b.data == NULL);

  strbuf_init_with(&b, small, sizeof small);
  strbuf_puts(&b, "ab");
  strbuf_append(&b, b.data, 2); /* from itself, inside the caller's storage */
  CHECK_STR(b.data, "abab");
  strbuf_append(&b, b.data, 4); /* from itself, outgrowing the caller's storage */
  CHECK(b.data != small);
  CHECK_STR(b.data, "abababab");
  strbuf_free(&b);
  strbuf_init_with(&b, small, sizeof small);
  strbuf_puts(&b, "ab");
  strbuf_reset(&b);
  CHECK_STR(b.data, "");
  strbuf_free(&b);            /* never frees the caller's storage */
  CHECK(b.data == NULL);
}

void test_strbuf(void)
{
  test_init_with();
  test_format_int();
  test_empty();
  test_append();
  test_reset();
  test_self_append();
  test_printf();
  test_failed();
}
