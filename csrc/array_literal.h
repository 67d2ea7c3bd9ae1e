/* PostgreSQL array literals ("{1,2,NULL,\"a b\"}"), parsed and built.
 * Pure C, no Lua: the decoder in result.c drives the parser with callbacks. */
#ifndef CRPG_ARRAY_LITERAL_H
#define CRPG_ARRAY_LITERAL_H

#include <stddef.h>
#include "strbuf.h"

typedef struct array_literal_handlers {
  int (*begin)(void *ctx);   /* '{' opens a (sub)array */
  int (*end)(void *ctx);     /* '}' closes it */
  /* One element, unquoted and unescaped; is_null for an unquoted NULL. */
  int (*element)(void *ctx, const char *s, size_t len, int is_null);
} array_literal_handlers;

/* Parses text (the server's output format, optionally with a "[lo:hi]=" dimension
 * prefix). delim is the element separator (',' for every built-in type but box).
 * Returns 0 on success, -1 on a syntax error (or when memory runs out), or the
 * first non-zero value a handler returned. Nesting deeper than 64 levels, and an
 * array mixing sub-arrays with elements, are syntax errors. Any handler may be
 * NULL. An element's s is valid only during the call (it may point into text or
 * into a scratch buffer). */
int array_literal_parse(const char *text, size_t len, char delim,
                        const array_literal_handlers *h, void *ctx);

/* Appends one element, always double-quoted, with '"' and '\\' escaped. */
void array_literal_append_quoted(strbuf *b, const char *s, size_t len);

#endif
