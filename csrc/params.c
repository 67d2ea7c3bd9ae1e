/* Lua values -> query parameters. Every value travels apart from the SQL
 * text; nothing is ever interpolated. A parameter's type is sent where the
 * Lua value says it unambiguously (docs/core.md, "Parameters"): booleans as
 * bool, integers as int4 or int8 by size, other numbers as float8, pg.bytea
 * as bytea; strings, JSON and arrays go untyped and the server infers them. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "array_literal.h"
#include "crpg.h"
#include "json.h"
#include "sql_split.h"

#define BOOL_OID 16
#define BYTEA_OID 17
#define INT8_OID 20
#define INT4_OID 23
#define FLOAT8_OID 701
#define NUMBUF PARAM_NUMBUF
#define ARRAY_MAX_DEPTH 6   /* PostgreSQL's MAXDIM */

static int bad_param(lua_State *L, int i, const char *what) {
  char msg[200];
  snprintf(msg, sizeof msg, "parameter $%d: %s", i, what);
  return crpg_push_error(L, KIND_INVALID_INPUT, msg), -1;
}

/* Writes a double as PostgreSQL reads it back exactly: the shortest text
 * that round-trips, "-0" for negative zero, NaN and the infinities by name. */
static void format_double(char *out, double v) {
  if (isnan(v)) { strcpy(out, "NaN"); return; }
  if (isinf(v)) { strcpy(out, v > 0 ? "Infinity" : "-Infinity"); return; }
  (void)json_format_double(out, v); /* NUMBUF >= 32 */
}

/* Formats the number at idx and returns its type: an integer (or a float
 * with an integral value within int64, but not -0.0: the same value is an
 * integer on LuaJIT) as int4 or int8 by size; anything else as float8. */
static Oid format_number(lua_State *L, int idx, char *out) {
  long long iv;
  double d;
  if (crpg_isinteger(L, idx, &iv)) goto integer;
  d = (double)lua_tonumber(L, idx);
  if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
      !(d == 0 && signbit(d))) {
    iv = (long long)d;
    goto integer;
  }
  format_double(out, d);
  return FLOAT8_OID;
integer:
  (void)strbuf_format_int(out, iv);
  return iv >= -2147483648LL && iv <= 2147483647LL ? INT4_OID : INT8_OID;
}

/* ---- arrays ---------------------------------------------------------------- */

/* The shape seen so far at each depth: the length of every (sub)array there,
 * and whether its items are sub-arrays or elements. A ragged array (sub-arrays
 * of different lengths, or sub-arrays beside elements) is refused. */
typedef struct array_shape {
  long len[ARRAY_MAX_DEPTH + 1];      /* -1: not seen yet */
  int nested[ARRAY_MAX_DEPTH + 1];    /* -1 unknown, 1 sub-arrays, 0 elements */
  char delim;
  char *err;
  size_t errlen;
} array_shape;

/* Appends the hex form of a bytea element ("\x0a0b"), quoted. */
static void append_bytea_element(strbuf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t i;
  strbuf_puts(b, "\"\\\\x");
  for (i = 0; i < len; i++) {
    strbuf_putc(b, hex[(unsigned char)s[i] >> 4]);
    strbuf_putc(b, hex[(unsigned char)s[i] & 15]);
  }
  strbuf_putc(b, '"');
}

/* The sub-array at idx, or 0: a plain table that is a list, or pg.array(t). */
static int sub_array(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  if (!lua_getmetatable(L, idx)) {
    if (lua_rawlen(L, idx) > 0) return idx; /* a list */
    lua_pushnil(L);
    if (lua_next(L, idx)) {
      lua_pop(L, 2);
      return 0;                             /* an object: refused as an element */
    }
    return idx;                             /* an empty table */
  }
  lua_pop(L, 1);
  if (crpg_has_mt(L, idx, CRPG_ARRAY_MT)) {
    lua_rawgeti(L, idx, 1);
    lua_replace(L, idx);
    return lua_type(L, idx) == LUA_TTABLE ? idx : 0;
  }
  return 0;
}

/* Appends one element that is not a sub-array. Returns 0 or -1 (err filled). */
static int append_element(lua_State *L, int idx, strbuf *b, array_shape *sh, size_t i) {
  int t = lua_type(L, idx);
  size_t len;
  const char *s;
  if (t == LUA_TNIL || crpg_is_null(L, idx)) {
    strbuf_puts(b, "NULL");
  } else if (t == LUA_TBOOLEAN) {
    strbuf_puts(b, lua_toboolean(L, idx) ? "t" : "f");
  } else if (t == LUA_TNUMBER) {
    char num[NUMBUF];
    format_number(L, idx, num);
    array_literal_append_quoted(b, num, strlen(num));
  } else if (t == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &len);
    if (memchr(s, 0, len)) {
      snprintf(sh->err, sh->errlen, "array element %d contains a NUL byte (pass binary data with pg.bytea)", (int)i);
      return -1;
    }
    array_literal_append_quoted(b, s, len);
  } else if (t == LUA_TTABLE && crpg_has_mt(L, idx, CRPG_BYTEA_MT)) {
    lua_rawgeti(L, idx, 1);
    s = lua_tolstring(L, -1, &len);
    append_bytea_element(b, s, len);
    lua_pop(L, 1);
  } else if (t == LUA_TTABLE && crpg_has_mt(L, idx, CRPG_JSON_MT)) {
    strbuf json;
    int rc;
    strbuf_init(&json);
    lua_rawgeti(L, idx, 1);
    rc = crpg_json_encode(L, -1, &json, sh->err, sh->errlen);
    lua_pop(L, 1);
    if (rc == 0) array_literal_append_quoted(b, json.data ? json.data : "", json.len);
    strbuf_free(&json);
    if (rc) return -1;
  } else if (t == LUA_TTABLE) {
    snprintf(sh->err, sh->errlen, "array element %d is a table that is not a list (wrap JSON in pg.json)", (int)i);
    return -1;
  } else {
    snprintf(sh->err, sh->errlen, "array element %d is a %s", (int)i, luaL_typename(L, idx));
    return -1;
  }
  return 0;
}

/* Appends the (sub)array at idx, checking that it is rectangular. */
static int append_array(lua_State *L, int idx, strbuf *b, int depth, array_shape *sh) {
  size_t i, n = lua_rawlen(L, idx);
  if (depth >= ARRAY_MAX_DEPTH) {
    snprintf(sh->err, sh->errlen, "array has more than %d dimensions", ARRAY_MAX_DEPTH);
    return -1;
  }
  if (!lua_checkstack(L, 4)) { snprintf(sh->err, sh->errlen, "out of stack"); return -1; }
  if (sh->len[depth] < 0) sh->len[depth] = (long)n;
  else if (sh->len[depth] != (long)n) {
    snprintf(sh->err, sh->errlen, "ragged array: sub-arrays at depth %d have %ld and %d elements",
             depth + 1, sh->len[depth], (int)n);
    return -1;
  }
  strbuf_putc(b, '{');
  for (i = 1; i <= n; i++) {
    int item, nested;
    if (i > 1) strbuf_putc(b, sh->delim);
    lua_rawgeti(L, idx, (int)i);
    item = lua_gettop(L);
    nested = sub_array(L, item) != 0;
    if (sh->nested[depth] < 0) sh->nested[depth] = nested;
    else if (sh->nested[depth] != nested) {
      snprintf(sh->err, sh->errlen, "ragged array: element %d at depth %d is %s its siblings are not",
               (int)i, depth + 1, nested ? "a sub-array where" : "a value where");
      return -1;
    }
    if (nested ? append_array(L, item, b, depth + 1, sh) : append_element(L, item, b, sh, i)) return -1;
    lua_settop(L, item - 1);
  }
  strbuf_putc(b, '}');
  return 0;
}

/* Encodes a table parameter (JSON, or an array literal with elements separated
 * by delim) into a new string pushed on the stack. Returns 0, or -1 with err. */
static int push_encoded(lua_State *L, int idx, int as_array, char delim, char *err, size_t errlen) {
  char small[256]; /* most values: no allocation */
  strbuf b;
  int rc;
  strbuf_init_with(&b, small, sizeof small);
  if (as_array) {
    array_shape sh;
    int d;
    for (d = 0; d <= ARRAY_MAX_DEPTH; d++) { sh.len[d] = -1; sh.nested[d] = -1; }
    sh.delim = delim;
    sh.err = err;
    sh.errlen = errlen;
    rc = append_array(L, idx, &b, 0, &sh);
  } else {
    rc = crpg_json_encode(L, idx, &b, err, errlen);
  }
  if (rc == 0 && b.failed) { snprintf(err, errlen, "out of memory"); rc = -1; }
  if (rc == 0) lua_pushlstring(L, b.data ? b.data : "", b.len);
  strbuf_free(&b);
  return rc;
}

/* ---- the parameter set -------------------------------------------------------- */

int crpg_encode_params(lua_State *L, int first, int n, param_set *ps) {
  int i;

  ps->n = n;
  ps->arrays = 0;
  if (n > 65535) return bad_param(L, 65536, "too many parameters (at most 65535)");
  if (!lua_checkstack(L, n + 8)) return bad_param(L, n, "too many parameters for the Lua stack");
  if (n <= PARAMS_INLINE) {
    ps->values = ps->inline_values;
    ps->lengths = ps->inline_lengths;
    ps->formats = ps->inline_formats;
    ps->types = ps->inline_types;
    ps->numbers = ps->inline_numbers;
  } else {
    /* one userdata, collected with the call: numbers first (no alignment needs
     * beyond char), then pointers, ints and Oids, each block 8-byte aligned */
    size_t nn = (size_t)n, nums = (nn * NUMBUF + 7) & ~(size_t)7;
    unsigned char *mem = lua_newuserdatauv(L, nums + nn * (sizeof(char *) + 2 * sizeof(int) + sizeof(Oid)) + 8, 0);
    ps->numbers = (char (*)[NUMBUF])(void *)mem;
    ps->values = (const char **)(void *)(mem + nums);
    ps->lengths = (int *)(void *)(mem + nums + nn * sizeof(char *));
    ps->formats = ps->lengths + n;
    ps->types = (Oid *)(void *)(ps->formats + n);
  }

  for (i = 0; i < n; i++) {
    int idx = first + i, t = lua_type(L, idx);
    char err[160];
    size_t len;
    ps->lengths[i] = 0;
    ps->formats[i] = 0;
    ps->types[i] = 0;
    ps->values[i] = NULL;
    switch (t) {
      case LUA_TNIL:
      case LUA_TNONE:
        break;
      case LUA_TBOOLEAN:
        ps->values[i] = lua_toboolean(L, idx) ? "true" : "false";
        ps->types[i] = BOOL_OID;
        break;
      case LUA_TNUMBER:
        ps->types[i] = format_number(L, idx, ps->numbers[i]);
        ps->values[i] = ps->numbers[i];
        break;
      case LUA_TSTRING:
        ps->values[i] = lua_tolstring(L, idx, &len);
        if (memchr(ps->values[i], 0, len))
          return bad_param(L, i + 1, "text contains a NUL byte (pass binary data with pg.bytea)");
        break;
      case LUA_TUSERDATA:
      case LUA_TLIGHTUSERDATA:
        if (!crpg_is_null(L, idx)) return bad_param(L, i + 1, "cannot encode a userdata");
        break;
      case LUA_TTABLE:
        if (crpg_has_mt(L, idx, CRPG_BYTEA_MT)) {
          lua_rawgeti(L, idx, 1);
          ps->values[i] = lua_tolstring(L, -1, &len); /* stays alive in the wrapper */
          lua_pop(L, 1);
          if (len > 0x7fffffff) return bad_param(L, i + 1, "bytea value too large");
          ps->lengths[i] = (int)len;
          ps->formats[i] = 1;
          ps->types[i] = BYTEA_OID;
          break;
        } else {
          int as_array = crpg_has_mt(L, idx, CRPG_ARRAY_MT);
          int src = idx;
          if (as_array || crpg_has_mt(L, idx, CRPG_JSON_MT)) {
            lua_rawgeti(L, idx, 1);
            src = lua_gettop(L);
          }
          if (push_encoded(L, src, as_array, ',', err, sizeof err)) return bad_param(L, i + 1, err);
          ps->values[i] = lua_tostring(L, -1); /* the string stays on the stack */
          if (src != idx) lua_remove(L, src);
          ps->arrays += as_array;
        }
        break;
      default:
        snprintf(err, sizeof err, "cannot encode a %s", lua_typename(L, t));
        return bad_param(L, i + 1, err);
    }
  }
  return 0;
}

int crpg_check_param_count(lua_State *L, const char *sql, size_t len, int n) {
  long want = sql_max_param(sql, len);
  char msg[200];
  if (want == n) return 0;
  snprintf(msg, sizeof msg, "the statement takes %ld parameter%s ($1..$%ld) but %d %s given",
           want, want == 1 ? "" : "s", want, n, n == 1 ? "was" : "were");
  if (want == 0) snprintf(msg, sizeof msg, "the statement takes no parameters but %d %s given", n, n == 1 ? "was" : "were");
  return crpg_push_error(L, KIND_INVALID_INPUT, msg), -1;
}

int crpg_fix_array_delims(lua_State *L, session *s, const char *sql, size_t len, int first, param_set *ps) {
  Oid described[PARAMS_INLINE], *types = described;
  PGresult *r;
  int i;
  if (!ps->arrays) return 0;
  if (ps->n > PARAMS_INLINE) types = lua_newuserdatauv(L, sizeof(Oid) * (size_t)ps->n, 0);
  r = session_param_types(s, sql, len, ps->n, ps->types, types);
  if (r) { /* the statement does not prepare: running it reports why */
    PQclear(r);
    return 0;
  }
  for (i = 0; i < ps->n; i++) {
    const pgtype_info *array, *elem;
    char err[160];
    int idx = first + i;
    if (lua_type(L, idx) != LUA_TTABLE || !crpg_has_mt(L, idx, CRPG_ARRAY_MT)) continue;
    if (!(array = pgtype_find(s->pg, &s->types, types[i])) || !array->elem) continue;
    if (!(elem = pgtype_find(s->pg, &s->types, array->elem)) || elem->delim == ',') continue;
    lua_rawgeti(L, idx, 1);
    if (push_encoded(L, lua_gettop(L), 1, elem->delim, err, sizeof err)) return bad_param(L, i + 1, err);
    ps->values[i] = lua_tostring(L, -1); /* stays on the stack */
  }
  return 0;
}
