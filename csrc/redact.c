/* Keeping secrets out of messages. See redact.h.
 *
 * Three layers, from precise to blunt:
 *  - a postgres:// URL: the password in user:password@ and the password= (and
 *    sslpassword=) query parameters;
 *  - a libpq keyword string, parsed with libpq's quoting rules: the values of
 *    password and sslpassword, and of any keyword whose value itself looks like
 *    it holds a secret (a nested conninfo in dbname=...);
 *  - anything else (a keyword string libpq would reject): everything after
 *    the first "password=", and every "://user:password@" before it. */
#include "redact.h"

#include <string.h>

#define MASK "***"

static int is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char lower(char c)
{
  return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* Does s (n bytes) equal word, ignoring ASCII case? */
static int equals_ci(const char *s, size_t n, const char *word)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (word[i] == '\0' || lower(s[i]) != word[i])
      return 0;
  return word[n] == '\0';
}

/* Does the NUL-terminated s start with word (lowercase), ignoring ASCII case? */
static int starts_with_ci(const char *s, const char *word)
{
  for (; *word != '\0'; s++, word++)
    if (lower(*s) != *word)
      return 0;
  return 1;
}

static int is_password_keyword(const char *s, size_t n)
{
  return equals_ci(s, n, "password") || equals_ci(s, n, "sslpassword");
}

static int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* A URL query key, percent-decoded, is password or sslpassword. */
static int is_password_param(const char *s, size_t n)
{
  char key[16];
  size_t i, k = 0;

  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      c = (char)(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
      i += 2;
    }
    if (k == sizeof key)
      return 0;
    key[k++] = c;
  }
  return is_password_keyword(key, k);
}

/* The last occurrence of c in [s, end), or NULL. */
static const char *last_char(const char *s, const char *end, char c)
{
  while (end > s)
    if (*--end == c)
      return end;
  return NULL;
}

/* The first occurrence of c in [s, end), or NULL. */
static const char *first_char(const char *s, const char *end, char c)
{
  return s < end ? memchr(s, c, (size_t)(end - s)) : NULL;
}

/* Length of "postgresql://" or "postgres://" at s, or 0. */
static size_t uri_prefix(const char *s)
{
  if (starts_with_ci(s, "postgresql://"))
    return 13;
  if (starts_with_ci(s, "postgres://"))
    return 11;
  return 0;
}

/* Appends [s, end) with every "password=" value and "://user:password@" password
 * masked. Used where nothing better can be parsed. */
static void mask_loose(strbuf *out, const char *s, const char *end)
{
  const char *p = s, *run = s;

  while (p < end) {
    if (*p == ':' && end - p >= 3 && p[1] == '/' && p[2] == '/') {
      /* userinfo: up to the last '@' before whitespace or '?' */
      const char *a = p + 3, *q = p + 3, *at, *colon;
      while (q < end && !is_space(*q) && *q != '?')
        q++;
      at = last_char(a, q, '@');
      colon = at ? first_char(a, at, ':') : NULL;
      if (colon != NULL) {
        strbuf_append(out, run, (size_t)(colon + 1 - run));
        strbuf_puts(out, MASK);
        run = at;
      }
      p = at ? at + 1 : a;
      continue;
    }
    if (lower(*p) == 'p' && (size_t)(end - p) >= 8 && equals_ci(p, 8, "password")) {
      const char *q = p + 8;
      while (q < end && is_space(*q))
        q++;
      if (q < end && *q == '=') {
        strbuf_append(out, run, (size_t)(p + 8 - run));
        strbuf_puts(out, "=" MASK);
        q++;
        while (q < end && is_space(*q))
          q++;
        /* Where nothing parses, nothing tells where the value ends (an
         * unquoted password may hold spaces): mask to the end. */
        run = p = end;
        continue;
      }
      p += 8;
      continue;
    }
    p++;
  }
  strbuf_append(out, run, (size_t)(end - run));
}

/* A keyword value that may hold a secret of its own: a nested conninfo or URL. */
static int looks_secret(const char *s, const char *end)
{
  const char *p;

  for (p = s; p < end; p++) {
    if (*p == ':' && end - p >= 3 && p[1] == '/' && p[2] == '/')
      return 1;
    if (lower(*p) == 'p' && (size_t)(end - p) >= 8 && equals_ci(p, 8, "password")) {
      const char *q = p + 8;
      while (q < end && is_space(*q))
        q++;
      if (q < end && *q == '=')
        return 1;
    }
  }
  return 0;
}

/* The '@' that ends a URL's user:password@ as the redactor reads it, or NULL;
 * *query is set to the '?' that starts the query (or end). p: after "://".
 * user:password@ ends at the last '@' before the query, so that a password
 * holding a raw '@' or '/' is still masked whole; a raw '?' in the password
 * ("u:pa?ss@host") is recognised because an '@' after the '?' but before any
 * '=' or '&' cannot be in a query parameter. */
static const char *userinfo_end(const char *p, const char *end, const char **query)
{
  const char *at;

  *query = first_char(p, end, '?');
  if (*query == NULL)
    *query = end;
  at = last_char(p, *query, '@');
  if (at == NULL && *query < end) {
    const char *q = *query + 1;
    while (q < end && *q != '=' && *q != '&' && *q != '@')
      q++;
    if (q < end && *q == '@') {
      at = q;
      *query = first_char(at, end, '?');
      if (*query == NULL)
        *query = end;
    }
  }
  return at;
}

/* The end of the port that starts after colon: the first '/' (or query). */
static const char *port_end(const char *colon, const char *query)
{
  const char *slash = first_char(colon, query, '/');
  return slash ? slash : query;
}

/* In an authority with no user:password@ (p: after "://"), the first ':'
 * before a port that is not all digits ("postgres://u:secret"), or NULL. Hosts
 * of a list ("h1:5432,h2") each have their own port; an IPv6 address's
 * colons are inside [ ]. */
static const char *odd_port(const char *p, const char *query)
{
  const char *end = port_end(p, query), *colon = NULL, *q;

  for (q = p; q <= end; q++) {
    if (q == end || *q == ',') {
      if (colon != NULL) {
        const char *d;
        for (d = colon + 1; d < q; d++)
          if (*d < '0' || *d > '9')
            return colon;
      }
      colon = NULL;
    } else if (*q == '[') {
      const char *close = first_char(q, end, ']');
      if (close == NULL)
        return NULL;
      q = close;
    } else if (*q == ':' && colon == NULL) {
      colon = q;
    }
  }
  return NULL;
}

/* A postgres:// URL. */
static void redact_url(strbuf *out, const char *s, size_t prefix)
{
  const char *end = s + strlen(s);
  const char *p = s + prefix;
  const char *query, *at, *colon;

  at = userinfo_end(p, end, &query);
  colon = at ? first_char(p, at, ':') : NULL;
  if (at == NULL && (colon = odd_port(p, query)) != NULL) {
    /* "postgres://u:secret" with no '@': libpq reads a host and a port */
    /* refused as ambiguous; where the password ends is anyone's guess */
    strbuf_append(out, s, (size_t)(colon + 1 - s));
    strbuf_puts(out, MASK);
    return;
  } else if (colon != NULL) {
    strbuf_append(out, s, (size_t)(colon + 1 - s));
    strbuf_puts(out, MASK);
    strbuf_append(out, at, (size_t)(query - at));
  } else {
    strbuf_append(out, s, (size_t)(query - s));
  }
  if (query == end)
    return;
  /* ?key=value&key=value */
  strbuf_putc(out, '?');
  p = query + 1;
  for (;;) {
    const char *amp = first_char(p, end, '&');
    const char *pend = amp ? amp : end;
    const char *eq = first_char(p, pend, '=');
    if (eq != NULL && is_password_param(p, (size_t)(eq - p))) {
      strbuf_append(out, p, (size_t)(eq + 1 - p));
      strbuf_puts(out, MASK);
    } else {
      mask_loose(out, p, pend);
    }
    if (amp == NULL)
      break;
    strbuf_putc(out, '&');
    p = amp + 1;
  }
}

/* A libpq keyword string ("host=x password='a b'"). Returns -1 where libpq would
 * reject the syntax; out then holds part of the text. */
static int redact_keywords(strbuf *out, const char *s)
{
  const char *p = s;

  for (;;) {
    const char *key, *key_end, *value, *value_end;
    const char *ws = p;

    while (*p != '\0' && is_space(*p))
      p++;
    strbuf_append(out, ws, (size_t)(p - ws));
    if (*p == '\0')
      return 0;
    key = p;
    while (*p != '\0' && !is_space(*p) && *p != '=')
      p++;
    key_end = p;
    while (*p != '\0' && is_space(*p))
      p++;
    if (key_end == key || *p != '=')
      return -1;
    p++;
    while (*p != '\0' && is_space(*p))
      p++;
    value = p;
    if (*p == '\'') {
      for (p++; *p != '\'' && *p != '\0'; p++)
        if (*p == '\\' && p[1] != '\0')
          p++;
      if (*p == '\0')
        return -1; /* unterminated quote */
      p++;
    } else {
      for (; *p != '\0' && !is_space(*p); p++)
        if (*p == '\\' && p[1] != '\0')
          p++;
    }
    value_end = p;
    if (is_password_keyword(key, (size_t)(key_end - key))) {
      strbuf_append(out, key, (size_t)(key_end - key));
      strbuf_puts(out, "=" MASK);
    } else if (looks_secret(value, value_end)) {
      strbuf_append(out, key, (size_t)(value - key));
      strbuf_puts(out, MASK);
    } else {
      strbuf_append(out, key, (size_t)(value_end - key));
    }
  }
}

/* Appends conninfo with its passwords masked (see redact.h). NULL appends nothing. */
void redact_conninfo(strbuf *out, const char *conninfo)
{
  const char *s = conninfo;
  size_t start, prefix;

  if (conninfo == NULL)
    return;
  while (is_space(*s))
    s++;
  prefix = uri_prefix(s);
  if (prefix > 0) {
    strbuf_append(out, conninfo, (size_t)(s - conninfo));
    redact_url(out, s, prefix);
    return;
  }
  start = out->len;
  if (redact_keywords(out, conninfo) == 0)
    return;
  /* Not valid libpq syntax: forget the partial output, mask loosely. */
  if (!out->failed) {
    out->len = start;
    if (out->data != NULL)
      out->data[start] = '\0';
  }
  mask_loose(out, conninfo, conninfo + strlen(conninfo));
}

/* Appends msg with every occurrence of secret replaced by "***". */
void redact_secret(strbuf *out, const char *msg, const char *secret)
{
  const char *p, *run, *end;
  size_t n;

  if (msg == NULL)
    return;
  if (secret == NULL || secret[0] == '\0') {
    strbuf_puts(out, msg);
    return;
  }
  n = strlen(secret);
  end = msg + strlen(msg);
  run = p = msg;
  while ((size_t)(end - p) >= n) {
    const char *hit = memchr(p, secret[0], (size_t)(end - p) - n + 1);
    if (hit == NULL)
      break;
    if (memcmp(hit, secret, n) == 0) {
      strbuf_append(out, run, (size_t)(hit - run));
      strbuf_puts(out, MASK);
      run = p = hit + n;
    } else {
      p = hit + 1;
    }
  }
  strbuf_append(out, run, (size_t)(end - run));
}

/* 1 when libpq would read a URL's user:password@ differently from
 * redact_conninfo (see redact.h). */
int redact_ambiguous(const char *conninfo)
{
  const char *s = conninfo, *p, *end, *query, *ours, *theirs;
  size_t prefix;

  if (conninfo == NULL)
    return 0;
  while (is_space(*s))
    s++;
  prefix = uri_prefix(s);
  if (prefix == 0)
    return 0;
  p = s + prefix;
  end = s + strlen(s);
  ours = userinfo_end(p, end, &query);
  /* libpq (conninfo_uri_parse_options): the first '@' before any '/' */
  for (theirs = p; theirs < end && *theirs != '@' && *theirs != '/'; theirs++)
    ;
  if (theirs == end || *theirs != '@')
    theirs = NULL;
  if (ours == NULL)
    return odd_port(p, query) != NULL; /* "postgres://u:secret": a password, or a port? */
  if (first_char(p, ours, ':') == NULL)
    return 0; /* no password in the userinfo either way */
  return ours != theirs;
}

/* Appends msg with everything from its first '"' to its last replaced by "***". */
void redact_quoted(strbuf *out, const char *msg)
{
  const char *open, *close;

  if (msg == NULL)
    return;
  open = strchr(msg, '"');
  if (open == NULL) {
    strbuf_puts(out, msg);
    return;
  }
  close = strrchr(msg, '"');
  strbuf_append(out, msg, (size_t)(open + 1 - msg));
  strbuf_puts(out, MASK);
  if (close > open)
    strbuf_puts(out, close);
}
