/* Splitting an SQL script into statements. Pure C, no Lua. */
#ifndef CRPG_SQL_SPLIT_H
#define CRPG_SQL_SPLIT_H

#include <stddef.h>

/* Calls cb once per statement in text, in order. A statement ends at a ';' that is
 * outside quotes ('...', E'...' with backslash escapes, "..."), dollar quotes
 * ($$...$$, $tag$...$tag$), -- comments and nested slash-star comments. stmt points into
 * text, leading whitespace and comments skipped, the ';' excluded; line is the
 * 1-based line where the statement starts. Pieces holding only whitespace and
 * comments are not reported. Returns 0, -1 when the text ends inside a quote or a
 * comment (the unterminated piece is still reported first), or cb's non-zero value. */
int sql_split(const char *text, size_t len,
              int (*cb)(void *ctx, const char *stmt, size_t stmt_len, int line),
              void *ctx);

#endif
