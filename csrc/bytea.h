/* bytea text output decoding. Pure C, no Lua. */
#ifndef CRPG_BYTEA_H
#define CRPG_BYTEA_H

#include <stddef.h>

/* Decodes the server's bytea text form: hex ("\x0a1b") or the legacy escape form
 * ("a\\000\\\\b"). out must hold len bytes (the result is never longer); out may
 * be text itself. Returns 0 and sets *outlen, or -1 on malformed input. */
int bytea_decode(const char *text, size_t len, char *out, size_t *outlen);

#endif
