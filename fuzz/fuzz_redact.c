/* libFuzzer target for redact.c. The input, as a password, is put into keyword
 * strings and URLs the way a careful caller would quote it; it must not survive
 * redaction. The raw input is also redacted as a conninfo, and split at the first
 * NUL into message and secret for redact_secret. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect(const char *conninfo, const char *want)
{
  strbuf out;

  strbuf_init(&out);
  redact_conninfo(&out, conninfo);
  if (out.failed || out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
    abort();
  strbuf_free(&out);
}

/* The input as a password, quoted for a keyword string and percent-encoded for a URL. */
static void check_password(const char *pw, size_t n)
{
  static const char hex[] = "0123456789ABCDEF";
  strbuf kw, url;
  size_t i;

  strbuf_init(&kw);
  strbuf_init(&url);
  strbuf_puts(&kw, "host=h password='");
  strbuf_puts(&url, "postgres://user:");
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)pw[i];
    if (c == '\'' || c == '\\')
      strbuf_putc(&kw, '\\');
    strbuf_putc(&kw, (char)c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~') {
      strbuf_putc(&url, (char)c);
    } else {
      strbuf_putc(&url, '%');
      strbuf_putc(&url, hex[c >> 4]);
      strbuf_putc(&url, hex[c & 15]);
    }
  }
  strbuf_puts(&kw, "' user=u");
  strbuf_puts(&url, "@host:5432/db?sslmode=require");
  expect(kw.data, "host=h password=*** user=u");
  expect(url.data, "postgres://user:***@host:5432/db?sslmode=require");
  strbuf_reset(&url);
  strbuf_puts(&url, "postgresql://host/db?password=");
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)pw[i];
    strbuf_putc(&url, '%');
    strbuf_putc(&url, hex[c >> 4]);
    strbuf_putc(&url, hex[c & 15]);
  }
  strbuf_puts(&url, "&application_name=x");
  expect(url.data, "postgresql://host/db?password=***&application_name=x");
  /* the input raw in the userinfo: either libpq reads the same password (the
   * input holds no '@' or '/', and no "?...@" the redactor would stop at), or
   * the URL is ambiguous and refused; it never survives redaction */
  if (memchr(pw, '@', n) == NULL && memchr(pw, '/', n) == NULL && memchr(pw, '?', n) == NULL &&
      memchr(pw, '\0', n) == NULL) {
    strbuf_reset(&url);
    strbuf_puts(&url, "postgres://user:");
    strbuf_append(&url, pw, n);
    strbuf_puts(&url, "@host/db");
    if (redact_ambiguous(url.data))
      abort();
    expect(url.data, "postgres://user:***@host/db");
  }
  strbuf_free(&kw);
  strbuf_free(&url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = malloc(size + 1);
  const char *nul;
  strbuf out;

  if (text == NULL)
    abort();
  memcpy(text, data, size);
  text[size] = '\0';
  nul = memchr(text, '\0', size);

  if (nul == NULL)
    check_password(text, size);

  strbuf_init(&out);
  redact_conninfo(&out, text);
  if (out.failed)
    abort();
  strbuf_reset(&out);
  (void)redact_ambiguous(text);
  redact_quoted(&out, text);
  if (out.failed)
    abort();
  strbuf_free(&out);

  /* message NUL secret: the secret (if it holds no '*') must be gone */
  if (nul != NULL) {
    const char *secret = nul + 1;
    strbuf_init(&out);
    redact_secret(&out, text, secret);
    if (out.failed)
      abort();
    if (secret[0] != '\0' && strchr(secret, '*') == NULL && out.data != NULL &&
        strstr(out.data, secret) != NULL)
      abort();
    if (secret[0] == '\0' && (out.len != strlen(text) || (out.len && memcmp(out.data, text, out.len))))
      abort();
    strbuf_free(&out);
  }
  free(text);
  return 0;
}
