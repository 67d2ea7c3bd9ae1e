/* JSON text: a streaming parser and the string/number writers.
 * Pure C, no Lua: json_value.c builds Lua values from these callbacks. */
#ifndef CRPG_JSON_H
#define CRPG_JSON_H

#include <stddef.h>
#include "strbuf.h"

/* Deeper than any json or jsonb value PostgreSQL accepts (its limit is
 * max_stack_depth: about 20,000 levels at the default 2MB). */
#define JSON_MAX_DEPTH 1000000

typedef struct json_handlers {
  int (*null_value)(void *ctx);
  int (*boolean)(void *ctx, int value);
  int (*integer)(void *ctx, long long value); /* literal with no fraction/exponent that fits int64 */
  int (*number)(void *ctx, double value);     /* every other number */
  int (*string)(void *ctx, const char *s, size_t len); /* unescaped UTF-8 */
  int (*begin_object)(void *ctx);
  int (*key)(void *ctx, const char *s, size_t len);   /* unescaped */
  int (*end_object)(void *ctx);
  int (*begin_array)(void *ctx);
  int (*end_array)(void *ctx);
} json_handlers;

typedef struct json_error {
  size_t offset;       /* byte offset of the problem */
  char message[96];
} json_error;

/* Parses exactly one JSON value (RFC 8259; surrounding whitespace allowed).
 * Returns 0 on success, -1 on a syntax error (err filled in), or the first
 * non-zero value a handler returned (err then says "stopped by a handler").
 * \u escapes, surrogate pairs included, become UTF-8; a lone surrogate escape
 * (which the json type accepts) becomes U+FFFD; invalid UTF-8 inside a
 * string is an error. Deeper than JSON_MAX_DEPTH is
 * an error. Numbers beyond double range become +-HUGE_VAL (strtod's result).
 * Any handler may be NULL; err may be NULL. String and key pointers are valid
 * only during the call (they point into text or into a scratch buffer). */
int json_parse(const char *text, size_t len, const json_handlers *h, void *ctx,
               json_error *err);

/* 0 when s[0..len) is well-formed UTF-8 without a NUL byte (text the server's
 * json and jsonb accept); else 1 (NUL) or 2 (invalid UTF-8) with the byte
 * offset in *at. */
int json_check_text(const char *s, size_t len, size_t *at);

/* Appends s as a quoted JSON string, escaping '"', '\\' and control characters
 * (\n \t \r \b \f, others \u00XX); other bytes, UTF-8 included, pass unchanged. */
void json_append_string(strbuf *b, const char *s, size_t len);

/* Appends a finite double so that it reads back exactly (the shortest of %.15g,
 * %.16g and %.17g that round-trips; always '.' as the decimal point). Integral
 * values print without a fraction ("3", "1e+20"). Returns -1 (appending nothing)
 * for NaN or infinities, which JSON cannot represent. */
int json_append_double(strbuf *b, double v);
/* The same text written to out (room for 32 bytes), NUL-terminated. */
int json_format_double(char *out, double v);

#endif
