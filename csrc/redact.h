/* Keeping secrets out of messages. Pure C, no Lua. */
#ifndef CRPG_REDACT_H
#define CRPG_REDACT_H

#include <stddef.h>
#include "strbuf.h"

/* Appends conninfo (a postgres:// or postgresql:// URL, or a libpq keyword string)
 * to out with every password replaced by "***": the URL's user:password@ part, a
 * password= query parameter, and a password= keyword (quoted or not). Anything
 * that cannot be parsed is still appended with any password= value masked. */
void redact_conninfo(strbuf *out, const char *conninfo);

/* Appends msg to out with every occurrence of secret replaced by "***".
 * A NULL or empty secret appends msg unchanged. */
void redact_secret(strbuf *out, const char *msg, const char *secret);

#endif
