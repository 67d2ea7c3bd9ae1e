/* PGresult -> Lua: an array of rows keyed by column name, each value decoded
 * by its column's type OID (text format). */
#include <stdlib.h>
#include <string.h>

#include "array_literal.h"
#include "bytea.h"
#include "crpg.h"

typedef enum {
  DEC_TEXT, DEC_INT, DEC_FLOAT, DEC_BOOL, DEC_JSON, DEC_BYTEA
} decoder_kind;

typedef struct column_decoder {
  decoder_kind kind;
  int is_array;
} column_decoder;

/* Built-in type OIDs (pg_type.dat); arrays of them decode element-wise. */
static column_decoder decoder_for(Oid oid) {
  column_decoder d = {DEC_TEXT, 0};
  switch (oid) {
    case 20: case 21: case 23: case 26: d.kind = DEC_INT; break;          /* int8 int2 int4 oid */
    case 700: case 701: d.kind = DEC_FLOAT; break;                        /* float4 float8 */
    case 16: d.kind = DEC_BOOL; break;
    case 114: case 3802: d.kind = DEC_JSON; break;                        /* json jsonb */
    case 17: d.kind = DEC_BYTEA; break;
    case 1016: case 1005: case 1007: case 1028: d.kind = DEC_INT; d.is_array = 1; break;
    case 1021: case 1022: d.kind = DEC_FLOAT; d.is_array = 1; break;
    case 1000: d.kind = DEC_BOOL; d.is_array = 1; break;
    case 199: case 3807: d.kind = DEC_JSON; d.is_array = 1; break;
    case 1001: d.kind = DEC_BYTEA; d.is_array = 1; break;
    /* arrays whose elements stay strings: text varchar bpchar name uuid numeric
     * date time timestamp timestamptz interval inet cidr char */
    case 1009: case 1015: case 1014: case 1003: case 2951: case 1231: case 1182:
    case 1183: case 1115: case 1185: case 1187: case 1041: case 651: case 1002:
      d.is_array = 1; break;
    default: break;
  }
  return d;
}

/* Parses a decimal integer; 0 on success. */
static int parse_int64(const char *s, long long *out) {
  int neg = 0;
  unsigned long long v = 0, limit;
  if (*s == '-') { neg = 1; s++; }
  if (!*s) return -1;
  limit = neg ? 9223372036854775808ULL : 9223372036854775807ULL;
  for (; *s; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (d > 9 || v > (limit - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = neg ? (long long)(0ULL - v) : (long long)v;
  return 0;
}

/* Pushes one scalar value of the given kind. */
static void push_scalar(lua_State *L, decoder_kind kind, const char *s, size_t len) {
  long long iv;
  switch (kind) {
    case DEC_INT:
      if (parse_int64(s, &iv) == 0) crpg_pushint64(L, iv);
      else lua_pushlstring(L, s, len);
      return;
    case DEC_FLOAT:
      lua_pushnumber(L, (lua_Number)strtod(s, NULL)); /* strtod reads NaN, Infinity, -Infinity */
      return;
    case DEC_BOOL:
      lua_pushboolean(L, s[0] == 't');
      return;
    case DEC_JSON:
      if (crpg_json_decode(L, s, len) != 0) lua_pushlstring(L, s, len);
      return;
    case DEC_BYTEA: {
      size_t outlen;
      char *out = lua_newuserdatauv(L, len ? len : 1, 0); /* scratch, collected */
      if (bytea_decode(s, len, out, &outlen) == 0) lua_pushlstring(L, out, outlen);
      else lua_pushlstring(L, s, len);
      lua_remove(L, -2);
      return;
    }
    default:
      lua_pushlstring(L, s, len);
  }
}

/* ---- arrays ------------------------------------------------------------------ */

typedef struct array_builder {
  lua_State *L;
  decoder_kind kind;
  int null_idx;
  int depth;
  int index[66];
  char scratch[64];
} array_builder;

static void append_top(array_builder *a) {
  if (a->depth > 0) lua_rawseti(a->L, -2, a->index[a->depth]++);
}

static int on_begin(void *ctx) {
  array_builder *a = ctx;
  if (!lua_checkstack(a->L, 4)) return 1;
  lua_newtable(a->L);
  a->index[++a->depth] = 1;
  return 0;
}

static int on_end(void *ctx) {
  array_builder *a = ctx;
  a->depth--;
  append_top(a);
  return 0;
}

static int on_element(void *ctx, const char *s, size_t len, int is_null) {
  array_builder *a = ctx;
  if (is_null) {
    lua_pushvalue(a->L, a->null_idx);
  } else if (a->kind == DEC_TEXT || a->kind == DEC_JSON || a->kind == DEC_BYTEA) {
    push_scalar(a->L, a->kind, s, len);
  } else {
    /* numbers and booleans need a NUL-terminated copy; they are short */
    if (len >= sizeof a->scratch) len = sizeof a->scratch - 1;
    memcpy(a->scratch, s, len);
    a->scratch[len] = '\0';
    push_scalar(a->L, a->kind, a->scratch, len);
  }
  append_top(a);
  return 0;
}

static const array_literal_handlers array_builders = {on_begin, on_end, on_element};

static void push_array(lua_State *L, decoder_kind kind, int null_idx, const char *s, size_t len) {
  array_builder a;
  int top = lua_gettop(L);
  a.L = L;
  a.kind = kind;
  a.null_idx = null_idx;
  a.depth = 0;
  if (array_literal_parse(s, len, ',', &array_builders, &a) != 0) {
    lua_settop(L, top);
    lua_pushlstring(L, s, len);
  }
}

/* ---- results ----------------------------------------------------------------- */

void crpg_push_result(lua_State *L, session *s, PGresult *r) {
  int nrows = PQntuples(r), ncols = PQnfields(r), row, col;
  int base, names, null_idx, res;
  column_decoder decoders[64], *dec = decoders;
  const char *tuples = PQcmdTuples(r), *status = PQcmdStatus(r);
  size_t verb;

  s->decoding = r; /* freed by the session if anything below raises */
  base = lua_gettop(L);
  if (ncols > 64) dec = lua_newuserdatauv(L, sizeof(column_decoder) * (size_t)ncols, 0);
  luaL_checkstack(L, ncols + 8, "too many columns");
  crpg_push_null(L);
  null_idx = lua_gettop(L);
  names = null_idx + 1;
  for (col = 0; col < ncols; col++) {
    lua_pushstring(L, PQfname(r, col));
    dec[col] = decoder_for(PQftype(r, col));
  }
  lua_createtable(L, nrows, 2);
  res = lua_gettop(L);
  for (row = 0; row < nrows; row++) {
    lua_createtable(L, 0, ncols);
    for (col = 0; col < ncols; col++) {
      const char *v;
      size_t len;
      if (PQgetisnull(r, row, col)) continue;
      v = PQgetvalue(r, row, col);
      len = (size_t)PQgetlength(r, row, col);
      lua_pushvalue(L, names + col);
      if (dec[col].is_array) push_array(L, dec[col].kind, null_idx, v, len);
      else push_scalar(L, dec[col].kind, v, len);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, res, row + 1);
  }
  if (tuples && *tuples) {
    lua_pushinteger(L, (lua_Integer)strtoll(tuples, NULL, 10));
    lua_setfield(L, res, "affected_rows");
  }
  if (status && *status) {
    for (verb = 0; status[verb] && status[verb] != ' '; verb++) {}
    lua_pushlstring(L, status, verb);
    lua_setfield(L, res, "command");
  }
  lua_replace(L, base + 1); /* over the scratch values */
  lua_settop(L, base + 1);
  s->decoding = NULL;
  PQclear(r);
}
