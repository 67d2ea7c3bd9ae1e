/* Splitting an SQL script into statements. Pure C, no Lua. */
#ifndef CRPG_SQL_SPLIT_H
#define CRPG_SQL_SPLIT_H

#include <stddef.h>

/* Calls cb once per statement in text, in order. A statement ends at a ';' that is
 * outside quotes ('...', E'...' with backslash escapes, "..."), dollar quotes
 * ($$...$$, $tag$...$tag$), -- comments and nested slash-star comments. Like psql,
 * a ';' inside parentheses, or inside the BEGIN ... END body of
 * CREATE [OR REPLACE] FUNCTION|PROCEDURE (SQL-standard bodies, BEGIN ATOMIC), does
 * not end the statement either. stmt points into text, leading and trailing
 * whitespace and comments skipped, the ';' excluded; line is the 1-based line where
 * the statement starts. Pieces holding only whitespace and comments are not
 * reported. Returns 0, -1 when the text ends inside a quote or a comment (the
 * unterminated piece, from its start to the end of text, is still reported
 * first), or cb's non-zero value. standard_conforming_strings is assumed on. */
int sql_split(const char *text, size_t len,
              int (*cb)(void *ctx, const char *stmt, size_t stmt_len, int line),
              void *ctx);

/* The highest $n parameter number in text (0 when it has none), with the same
 * lexer: a '$' followed by digits, outside quotes, dollar quotes and comments,
 * and not inside a word (a$1 is an identifier). Numbers are capped at 10^8. */
long sql_max_param(const char *text, size_t len);

#endif
