/* Deriving one connection string from another. Pure C on libpq, no Lua. */
#ifndef CRPG_CONNINFO_H
#define CRPG_CONNINFO_H

#include <stddef.h>
#include "strbuf.h"

/* One change to a conninfo: set keyword key to value, or remove it when value
 * is NULL (libpq then falls back to the PG* environment and its defaults). */
typedef struct conninfo_change {
  const char *key;
  const char *value;
} conninfo_change;

/* Appends to out a libpq keyword string ("k='v' k2='v2'") holding every option
 * that conninfo sets explicitly, with the n changes applied. conninfo is a
 * keyword string, a postgres:// or postgresql:// URL, or "" (nothing set: the
 * result then holds only the changes, and libpq reads the rest from PG* as it
 * would have for ""). Values are always quoted, so the result parses back to
 * the same options.
 * Returns 0, or -1 with a message in err (never a value from conninfo or the
 * changes, so no password leaks): unparsable conninfo, unknown keyword. */
int conninfo_with(strbuf *out, const char *conninfo, const conninfo_change *changes, size_t n,
                  char *err, size_t errlen);

#endif
