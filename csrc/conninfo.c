/* Deriving one connection string from another. See conninfo.h.
 *
 * libpq does the parsing (PQconninfoParse reads both the keyword form and the
 * URL form, with its quoting and percent-decoding rules), so the result means
 * to libpq what the input meant, with the changes on top. Its option array
 * also names every keyword this libpq knows, which is how a change to an
 * unknown keyword is refused. */
#include "conninfo.h"

#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

static PQconninfoOption *find(PQconninfoOption *opts, const char *key)
{
  for (; opts->keyword != NULL; opts++)
    if (strcmp(opts->keyword, key) == 0)
      return opts;
  return NULL;
}

/* Copies libpq's parse error to err with every quoted part that is not a known
 * keyword (or "=") masked: libpq quotes the offending text, which may be a
 * password. */
static void parse_error(const char *msg, PQconninfoOption *known, char *err, size_t errlen)
{
  strbuf b;
  const char *p = msg ? msg : "could not parse it";

  strbuf_init(&b);
  strbuf_puts(&b, "invalid conninfo: ");
  while (*p != '\0' && *p != '\n') {
    const char *close;
    if (*p != '"' || (close = strchr(p + 1, '"')) == NULL) {
      strbuf_putc(&b, *p++);
      continue;
    }
    {
      size_t len = (size_t)(close - p - 1);
      int keep = len == 1 && p[1] == '=';
      PQconninfoOption *o;
      for (o = known; !keep && o != NULL && o->keyword != NULL; o++)
        keep = strlen(o->keyword) == len && strncmp(o->keyword, p + 1, len) == 0;
      strbuf_putc(&b, '"');
      if (keep)
        strbuf_append(&b, p + 1, len);
      else
        strbuf_puts(&b, "***");
      strbuf_putc(&b, '"');
      p = close + 1;
    }
  }
  snprintf(err, errlen, "%s", b.failed || !b.data ? "invalid conninfo" : b.data);
  strbuf_free(&b);
}

/* Parses s into a full option array, or returns NULL with err set. */
static PQconninfoOption *parse(const char *s, char *err, size_t errlen)
{
  char *msg = NULL;
  PQconninfoOption *opts = PQconninfoParse(s, &msg);
  if (opts == NULL) {
    PQconninfoOption *known = PQconndefaults();
    parse_error(msg, known, err, errlen);
    if (known)
      PQconninfoFree(known);
    if (msg)
      PQfreemem(msg);
  }
  return opts;
}

static void put_quoted(strbuf *out, const char *v)
{
  strbuf_putc(out, '\'');
  for (; *v != '\0'; v++) {
    if (*v == '\'' || *v == '\\')
      strbuf_putc(out, '\\');
    strbuf_putc(out, *v);
  }
  strbuf_putc(out, '\'');
}

int conninfo_with(strbuf *out, const char *conninfo, const conninfo_change *changes, size_t n,
                  char *err, size_t errlen)
{
  PQconninfoOption *opts, *o;
  size_t i;
  int first = 1, rc = -1;

  if ((opts = parse(conninfo ? conninfo : "", err, errlen)) == NULL)
    return -1;
  for (i = 0; i < n; i++) {
    if (changes[i].key == NULL || find(opts, changes[i].key) == NULL) {
      snprintf(err, errlen, "unknown conninfo keyword '%.64s'", changes[i].key ? changes[i].key : "");
      goto done;
    }
  }
  for (o = opts; o->keyword != NULL; o++) {
    const char *v = o->val;
    for (i = 0; i < n; i++)
      if (strcmp(changes[i].key, o->keyword) == 0)
        v = changes[i].value; /* the last change to a key wins */
    if (v == NULL)
      continue;
    if (!first)
      strbuf_putc(out, ' ');
    first = 0;
    strbuf_puts(out, o->keyword);
    strbuf_putc(out, '=');
    put_quoted(out, v);
  }
  if (first)
    strbuf_append(out, "", 0); /* "" rather than NULL data */
  if (out->failed) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  rc = 0;
done:
  PQconninfoFree(opts);
  return rc;
}
