/* Splitting an SQL script into statements. See sql_split.h.
 *
 * A small lexer that knows just enough of PostgreSQL's: quotes, dollar quotes,
 * comments, parentheses, and psql's rule for SQL-standard function bodies
 * (CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ATOMIC ... END), whose inner
 * semicolons do not end the statement. */
#include "sql_split.h"

#include <string.h>

typedef struct splitter {
  const char *text;
  const char *p;
  const char *end;
  int line;
  /* the statement being read */
  const char *start;   /* first significant byte, NULL while only space/comments */
  const char *sig_end; /* after the last significant byte */
  int start_line;
  int parens;          /* open '(' */
  int begin_depth;     /* BEGIN ... END inside CREATE FUNCTION/PROCEDURE */
  int words;           /* identifiers and keywords seen */
  char head[4];        /* first letters of the leading CREATE OR REPLACE FUNCTION */
  long max_param;      /* the highest $n seen outside quotes and comments */
} splitter;

static int is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A byte that can start an identifier (or a dollar-quote tag). */
static int is_ident_start(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (unsigned char)c >= 0x80;
}

/* A byte that can continue an identifier ('$' included, as in PostgreSQL). */
static int is_ident_char(char c)
{
  return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static int equals_ci(const char *s, size_t n, const char *word)
{
  size_t i;

  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c + ('a' - 'A'));
    if (word[i] == '\0' || c != word[i])
      return 0;
  }
  return word[n] == '\0';
}

/* Moves sp->p forward to `to`, counting the newlines passed. */
static void advance_to(splitter *sp, const char *to)
{
  const char *p = sp->p;

  while ((p = memchr(p, '\n', (size_t)(to - p))) != NULL) {
    sp->line++;
    p++;
  }
  sp->p = to;
}

/* A quoted run; sp->p is on the opening quote q. With backslash escapes for E''.
 * A doubled quote inside continues the run. Returns -1 when unterminated. */
static int skip_quoted(splitter *sp, char q, int backslash)
{
  const char *p = sp->p + 1;

  for (;;) {
    if (p >= sp->end) {
      advance_to(sp, sp->end);
      return -1;
    }
    if (*p == q) {
      if (p + 1 < sp->end && p[1] == q) {
        p += 2;
        continue;
      }
      advance_to(sp, p + 1);
      return 0;
    }
    if (backslash && *p == '\\' && p + 1 < sp->end)
      p++;
    p++;
  }
}

/* A dollar-quote opening delimiter at sp->p ("$$" or "$tag$"): its length, or 0
 * when the '$' starts something else (a "$1" parameter, part of a word). */
static size_t dollar_delimiter(const splitter *sp)
{
  const char *p = sp->p + 1;

  if (sp->p > sp->text && is_ident_char(sp->p[-1]))
    return 0;
  if (p < sp->end && *p == '$')
    return 2;
  if (p >= sp->end || !is_ident_start(*p))
    return 0;
  while (p < sp->end && is_ident_char(*p) && *p != '$')
    p++;
  if (p >= sp->end || *p != '$')
    return 0;
  return (size_t)(p + 1 - sp->p);
}

/* A dollar-quoted run whose opening delimiter (n bytes) is at sp->p. */
static int skip_dollar(splitter *sp, size_t n)
{
  const char *delim = sp->p;
  const char *p = sp->p + n;

  while ((size_t)(sp->end - p) >= n) {
    const char *hit = memchr(p, '$', (size_t)(sp->end - p) - n + 1);
    if (hit == NULL)
      break;
    if (memcmp(hit, delim, n) == 0) {
      advance_to(sp, hit + n);
      return 0;
    }
    p = hit + 1;
  }
  advance_to(sp, sp->end);
  return -1;
}

/* A (possibly nested) block comment; sp->p is on its "/" "*". */
static int skip_block_comment(splitter *sp)
{
  const char *p = sp->p + 2;
  int depth = 1;

  while (p < sp->end) {
    if (*p == '*' && p + 1 < sp->end && p[1] == '/') {
      p += 2;
      if (--depth == 0) {
        advance_to(sp, p);
        return 0;
      }
    } else if (*p == '/' && p + 1 < sp->end && p[1] == '*') {
      p += 2;
      depth++;
    } else {
      p++;
    }
  }
  advance_to(sp, sp->end);
  return -1;
}

/* psql's heuristic: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, outside
 * parentheses, BEGIN ... END (and CASE ... END within) nest. */
static void track_word(splitter *sp, const char *w, size_t n)
{
  const char *h = sp->head;

  if (sp->words < (int)sizeof sp->head &&
      (equals_ci(w, n, "create") || equals_ci(w, n, "function") ||
       equals_ci(w, n, "procedure") || equals_ci(w, n, "or") || equals_ci(w, n, "replace")))
    sp->head[sp->words] = (char)(w[0] | 0x20);
  sp->words++;
  if (h[0] != 'c' || sp->parens != 0)
    return;
  if (!(h[1] == 'f' || h[1] == 'p' || (h[1] == 'o' && h[2] == 'r' && (h[3] == 'f' || h[3] == 'p'))))
    return;
  if (equals_ci(w, n, "begin"))
    sp->begin_depth++;
  else if (equals_ci(w, n, "case") && sp->begin_depth > 0)
    sp->begin_depth++;
  else if (equals_ci(w, n, "end") && sp->begin_depth > 0)
    sp->begin_depth--;
}

static void new_statement(splitter *sp)
{
  sp->start = NULL;
  sp->sig_end = NULL;
  sp->start_line = 0;
  sp->parens = 0;
  sp->begin_depth = 0;
  sp->words = 0;
  memset(sp->head, 0, sizeof sp->head);
}

/* One significant token at sp->p. Returns -1 when it is an unterminated quote. */
static int token(splitter *sp)
{
  const char *p = sp->p;
  char c = *p;
  size_t n;

  switch (c) {
  case '\'':
    return skip_quoted(sp, '\'', 0);
  case '"':
    return skip_quoted(sp, '"', 0);
  case '$':
    if ((n = dollar_delimiter(sp)) > 0)
      return skip_dollar(sp, n);
    sp->p++;
    if (p == sp->text || !is_ident_char(p[-1])) { /* $n, a parameter */
      long v = 0;
      while (sp->p < sp->end && *sp->p >= '0' && *sp->p <= '9') {
        if (v < 100000000)
          v = v * 10 + (*sp->p - '0');
        sp->p++;
      }
      if (v > 100000000)
        v = 100000000;
      if (v > sp->max_param)
        sp->max_param = v;
    }
    return 0;
  case '(':
    sp->parens++;
    sp->p++;
    return 0;
  case ')':
    if (sp->parens > 0)
      sp->parens--;
    sp->p++;
    return 0;
  default:
    break;
  }
  if (is_ident_start(c) && (p == sp->text || !is_ident_char(p[-1]))) {
    const char *w = p;
    while (p < sp->end && is_ident_char(*p))
      p++;
    sp->p = p;
    if (p - w == 1 && (c == 'e' || c == 'E') && p < sp->end && *p == '\'')
      return skip_quoted(sp, '\'', 1); /* E'...' */
    track_word(sp, w, (size_t)(p - w));
    return 0;
  }
  sp->p++;
  return 0;
}

/* Reports the statement read so far, if any. end: where it ends. */
static int report(splitter *sp, const char *end,
                  int (*cb)(void *ctx, const char *stmt, size_t stmt_len, int line),
                  void *ctx)
{
  if (sp->start == NULL)
    return 0;
  return cb(ctx, sp->start, (size_t)(end - sp->start), sp->start_line);
}

static int run(splitter *sp, const char *text, size_t len,
               int (*cb)(void *ctx, const char *stmt, size_t stmt_len, int line),
               void *ctx);

/* Splits text into statements, calling cb for each (see sql_split.h). */
int sql_split(const char *text, size_t len,
              int (*cb)(void *ctx, const char *stmt, size_t stmt_len, int line),
              void *ctx)
{
  splitter sp;
  return run(&sp, text, len, cb, ctx);
}

static int ignore_statement(void *ctx, const char *stmt, size_t stmt_len, int line)
{
  (void)ctx;
  (void)stmt;
  (void)stmt_len;
  (void)line;
  return 0;
}

/* sql_max_param for the common text with no comment, dollar quote or E'...'
 * string: skipping plain quotes, every '$' + digits not inside a word is a
 * parameter, as the lexer decides. Returns -1 when the text needs the lexer. */
static long max_param_plain(const char *text, size_t len)
{
  long max = 0;
  size_t i;

  static const unsigned char special[256] = {['\''] = 1, ['"'] = 1, ['-'] = 1, ['/'] = 1, ['$'] = 1};

  for (i = 0; i < len; i++) {
    char c;
    while (i < len && !special[(unsigned char)text[i]])
      i++; /* most bytes */
    if (i >= len)
      break;
    c = text[i];
    if (c == '\'' || c == '"') { /* 'text', "name": '' and "" escape the quote */
      if (c == '\'' && i > 0 && (text[i - 1] == 'e' || text[i - 1] == 'E'))
        return -1; /* perhaps E'...', with backslash escapes */
      for (i++; i < len && !(text[i] == c && !(i + 1 < len && text[i + 1] == c)); i++)
        if (text[i] == c)
          i++; /* a doubled quote */
      if (i >= len)
        return -1; /* unterminated */
      continue;
    }
    if ((c == '-' || c == '/') && i + 1 < len && (text[i + 1] == '-' || text[i + 1] == '*'))
      return -1;
    if (c == '$') {
      long v = 0;
      if (i + 1 >= len || text[i + 1] < '0' || text[i + 1] > '9')
        return -1; /* perhaps a dollar quote */
      if (i > 0 && is_ident_char(text[i - 1]))
        continue; /* inside a word: a$1 */
      while (i + 1 < len && text[i + 1] >= '0' && text[i + 1] <= '9') {
        if (v < 100000000)
          v = v * 10 + (text[i + 1] - '0');
        i++;
      }
      if (v > 100000000)
        v = 100000000;
      if (v > max)
        max = v;
    }
  }
  return max;
}

/* The highest $n parameter in text (see sql_split.h). */
long sql_max_param(const char *text, size_t len)
{
  splitter sp;
  long fast = max_param_plain(text, len);

  if (fast >= 0)
    return fast;
  run(&sp, text, len, ignore_statement, NULL);
  return sp.max_param;
}

static int run(splitter *sp, const char *text, size_t len,
               int (*cb)(void *ctx, const char *stmt, size_t stmt_len, int line),
               void *ctx)
{
  int rc;

  sp->max_param = 0;
  sp->text = text;
  sp->p = text;
  sp->end = text + len;
  sp->line = 1;
  new_statement(sp);

  while (sp->p < sp->end) {
    const char *p = sp->p;
    char c = *p;

    if (c == '\n') {
      sp->line++;
      sp->p++;
      continue;
    }
    if (is_space(c)) {
      sp->p++;
      continue;
    }
    if (c == '-' && p + 1 < sp->end && p[1] == '-') {
      const char *nl = memchr(p, '\n', (size_t)(sp->end - p));
      sp->p = nl ? nl : sp->end; /* the newline itself is counted above */
      continue;
    }
    if (c == '/' && p + 1 < sp->end && p[1] == '*') {
      if (skip_block_comment(sp) != 0)
        goto unterminated;
      continue;
    }
    if (c == ';' && sp->parens == 0 && sp->begin_depth == 0) {
      if ((rc = report(sp, sp->sig_end, cb, ctx)) != 0)
        return rc;
      new_statement(sp);
      sp->p++;
      continue;
    }
    if (sp->start == NULL) {
      sp->start = p;
      sp->start_line = sp->line;
    }
    if (token(sp) != 0)
      goto unterminated;
    sp->sig_end = sp->p;
  }
  return report(sp, sp->sig_end, cb, ctx);

unterminated:
  /* The rest of the text, unterminated quote or comment included, so that the
   * server reports the problem if the caller sends it anyway. */
  if ((rc = report(sp, sp->end, cb, ctx)) != 0)
    return rc;
  return -1;
}
