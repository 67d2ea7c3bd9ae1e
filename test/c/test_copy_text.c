/* copy_text: escaping values into COPY text rows and splitting rows back. */
#include <string.h>

#include "copy_text.h"
#include "test.h"

static void escape_case(const char *file, int line, const char *in, size_t len, const char *want)
{
  strbuf b;

  strbuf_init(&b);
  strbuf_append(&b, "", 0);
  copy_text_escape(&b, in, len);
  test_check_mem(file, line, in, b.data, b.len, want, strlen(want));
  strbuf_free(&b);
}

#define ESC(in, want) escape_case(__FILE__, __LINE__, in, sizeof(in) - 1, want)

typedef struct fields {
  int n;
  char text[8][32];
  size_t len[8];
  int null[8];
} fields;

static int collect(void *ctx, const char *s, size_t len, int is_null)
{
  fields *f = ctx;

  if (f->n >= 8 || len >= 32)
    return 7;
  f->null[f->n] = is_null;
  f->len[f->n] = len;
  if (!is_null)
    memcpy(f->text[f->n], s, len);
  f->n++;
  return 0;
}

static int split(const char *line, size_t len, fields *f)
{
  strbuf scratch;
  int rc;

  memset(f, 0, sizeof *f);
  strbuf_init(&scratch);
  rc = copy_text_split(line, len, &scratch, collect, f);
  strbuf_free(&scratch);
  return rc;
}

static void test_escape(void)
{
  strbuf b;

  ESC("plain", "plain");
  ESC("", "");
  ESC("a\tb", "a\\tb");
  ESC("line\nnext\r", "line\\nnext\\r");
  ESC("back\\slash", "back\\\\slash");
  ESC("\\N", "\\\\N");
  ESC("\b\f\v", "\\b\\f\\v");
  ESC("\x01 stays", "\x01 stays");
  ESC("caf\xc3\xa9", "caf\xc3\xa9");

  strbuf_init(&b);
  copy_text_bytea(&b, "\x00\xff\x10", 3);
  CHECK_MEM(b.data, b.len, "\\\\x00ff10");
  strbuf_reset(&b);
  copy_text_bytea(&b, "", 0);
  CHECK_MEM(b.data, b.len, "\\\\x");
  strbuf_free(&b);
}

static void test_split(void)
{
  fields f;
  static const char row[] = "1\ta\\tb\t\\N\t\tx\\ny\\\\z\n";
  static const char esc[] = "\\101\\x41\\x4g\\q\\";

  CHECK_INT(split(row, sizeof row - 1, &f), 0);
  CHECK_INT(f.n, 5);
  CHECK_MEM(f.text[0], f.len[0], "1");
  CHECK_MEM(f.text[1], f.len[1], "a\tb");
  CHECK_INT(f.null[2], 1);
  CHECK_INT(f.null[3], 0);
  CHECK_INT((long long)f.len[3], 0);
  CHECK_MEM(f.text[4], f.len[4], "x\ny\\z");

  CHECK_INT(split(esc, sizeof esc - 1, &f), 0);
  CHECK_INT(f.n, 1);
  CHECK_MEM(f.text[0], f.len[0], "AA\x04gq\\");

  CHECK_INT(split("", 0, &f), 0);
  CHECK_INT(f.n, 1);
  CHECK_INT(f.null[0], 0);
  CHECK_INT(split("\\N", 2, &f), 0);
  CHECK_INT(f.null[0], 1);
  CHECK_INT(split("\\\\N", 3, &f), 0);
  CHECK_INT(f.null[0], 0);
  CHECK_MEM(f.text[0], f.len[0], "\\N");
  CHECK_INT(split("a\tb\t", 4, &f), 0);
  CHECK_INT(f.n, 3);
  /* a handler's non-zero return stops the split */
  CHECK_INT(split("1\t2\t3\t4\t5\t6\t7\t8\t9", 17, &f), 7);
}

/* What escape writes, split reads back unchanged. */
static void test_round_trip(void)
{
  static const char *const values[] = {"", "\\N", "tab\there", "\r\n\\", "\x7f\x01", "plain"};
  strbuf b;
  fields f;
  size_t i;

  strbuf_init(&b);
  for (i = 0; i < 6; i++) {
    if (i)
      strbuf_putc(&b, '\t');
    copy_text_escape(&b, values[i], strlen(values[i]));
  }
  strbuf_putc(&b, '\n');
  CHECK_INT(split(b.data, b.len, &f), 0);
  CHECK_INT(f.n, 6);
  for (i = 0; i < 6 && i < (size_t)f.n; i++) {
    CHECK_INT(f.null[i], 0);
    CHECK_MEM(f.text[i], f.len[i], values[i]);
  }
  strbuf_free(&b);
}

void test_copy_text(void)
{
  test_escape();
  test_split();
  test_round_trip();
}
