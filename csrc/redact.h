/* Keeping secrets out of messages. Pure C, no Lua. */
#ifndef CRPG_REDACT_H
#define CRPG_REDACT_H

#include <stddef.h>
#include "strbuf.h"

/* Appends conninfo (a postgres:// or postgresql:// URL, or a libpq keyword string)
 * to out with every password replaced by "***": the URL's user:password@ part, a
 * password= (or sslpassword=) query parameter, and a password= (or sslpassword=)
 * keyword, quoted or not, written back as "password=***". A keyword value that
 * holds a nested conninfo or URL (dbname='host=x password=y') is masked whole.
 * Anything that cannot be parsed is still appended, masked from the first
 * password= to the end, and with any "://user:password@" masked. A URL with
 * no user:password@ whose port is not a number ("postgres://u:secret") is
 * masked from that ':' to the end. A NULL conninfo appends nothing. */
void redact_conninfo(strbuf *out, const char *conninfo);

/* Appends msg to out with every occurrence of secret replaced by "***".
 * A NULL or empty secret appends msg unchanged. */
void redact_secret(strbuf *out, const char *msg, const char *secret);

/* 1 when conninfo is a URL whose user:password@ libpq splits elsewhere than
 * redact_conninfo masks: libpq ends it at the first '@' before any '/'
 * (conninfo_uri_parse_options), the redactor at the last '@' before the
 * query. "postgres://u:p@ss@host" (libpq: password "p", host "ss@host") and
 * "postgres://u:pa/ss@host" (libpq: host "u", port "pa") are ambiguous: a raw
 * '@' or '/' in the password must be percent-encoded. Else 0. */
int redact_ambiguous(const char *conninfo);

/* Appends msg with the text inside every pair of double quotes (libpq quotes
 * the values it complains about) replaced by "***"; one-character quotes
 * ("=") stay. */
void redact_quoted(strbuf *out, const char *msg);

#endif
