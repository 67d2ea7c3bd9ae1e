/* COPY's text format: escaping values into a row and splitting a row into
 * fields. Pure C, no Lua. */
#ifndef CRPG_COPY_TEXT_H
#define CRPG_COPY_TEXT_H

#include <stddef.h>

#include "strbuf.h"

/* Appends s as one COPY text field: backslash, tab, newline, carriage return
 * (and the other control characters COPY names) escaped with a backslash. */
void copy_text_escape(strbuf *b, const char *s, size_t len);

/* Appends raw bytes as a bytea field in hex form, already escaped for COPY
 * ("\\x0a1b"). */
void copy_text_bytea(strbuf *b, const char *s, size_t len);

/* Called once per field of a row, in order: the unescaped text, or is_null
 * for \N. A non-zero return stops the split and is returned. */
typedef int (*copy_text_field_fn)(void *ctx, const char *s, size_t len, int is_null);

/* Splits one COPY text row (a trailing newline is allowed) into fields,
 * unescaping each into scratch (reset per field). Returns 0, the handler's
 * non-zero value, or -1 when scratch ran out of memory. */
int copy_text_split(const char *line, size_t len, strbuf *scratch, copy_text_field_fn fn, void *ctx);

#endif
