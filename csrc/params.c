/* Lua values -> query parameters. Every value travels apart from the SQL
 * text; nothing is ever interpolated. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "array_literal.h"
#include "crpg.h"
#include "json.h"

#define BYTEA_OID 17
#define NUMBUF PARAM_NUMBUF

static int bad_param(lua_State *L, int i, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "parameter $%d: %s", i, what);
  return crpg_push_error(L, KIND_INVALID_INPUT, msg), -1;
}

/* Writes a finite or special double as PostgreSQL reads it back exactly. */
static void format_double(char *out, double v) {
  strbuf b;
  if (isnan(v)) { strcpy(out, "NaN"); return; }
  if (isinf(v)) { strcpy(out, v > 0 ? "Infinity" : "-Infinity"); return; }
  strbuf_init(&b);
  if (json_append_double(&b, v) == 0 && !b.failed && b.len < NUMBUF) memcpy(out, b.data, b.len + 1);
  else snprintf(out, NUMBUF, "%.17g", v);
  strbuf_free(&b);
}

/* Appends one element of a pg.array: NULL, a nested array, or a quoted scalar. */
static int append_array(lua_State *L, int idx, strbuf *b, int depth, char *err, size_t errlen) {
  size_t i, n = lua_rawlen(L, idx);
  if (depth > 6) { snprintf(err, errlen, "array nested too deeply"); return -1; }
  strbuf_putc(b, '{');
  for (i = 1; i <= n; i++) {
    int t;
    if (i > 1) strbuf_putc(b, ',');
    lua_rawgeti(L, idx, (int)i);
    t = lua_type(L, -1);
    if (t == LUA_TNIL || crpg_is_null(L, -1)) {
      strbuf_puts(b, "NULL");
    } else if (t == LUA_TTABLE) {
      if (append_array(L, lua_gettop(L), b, depth + 1, err, errlen)) return -1;
    } else if (t == LUA_TBOOLEAN) {
      strbuf_puts(b, lua_toboolean(L, -1) ? "t" : "f");
    } else if (t == LUA_TNUMBER) {
      char num[NUMBUF];
      long long v;
      if (crpg_isinteger(L, -1, &v)) snprintf(num, sizeof num, "%lld", v);
      else format_double(num, (double)lua_tonumber(L, -1));
      array_literal_append_quoted(b, num, strlen(num));
    } else if (t == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      if (memchr(s, 0, len)) { snprintf(err, errlen, "array element %d contains a NUL byte", (int)i); return -1; }
      array_literal_append_quoted(b, s, len);
    } else {
      snprintf(err, errlen, "array element %d is a %s", (int)i, luaL_typename(L, -1));
      return -1;
    }
    lua_pop(L, 1);
  }
  strbuf_putc(b, '}');
  return 0;
}

/* Encodes a table parameter (JSON or array literal) into a new string pushed
 * on the stack. Returns 0, or -1 with err filled. */
static int push_encoded(lua_State *L, int idx, int as_array, char *err, size_t errlen) {
  strbuf b;
  int rc;
  strbuf_init(&b);
  rc = as_array ? append_array(L, idx, &b, 0, err, errlen) : crpg_json_encode(L, idx, &b, err, errlen);
  if (rc == 0 && b.failed) { snprintf(err, errlen, "out of memory"); rc = -1; }
  if (rc == 0) lua_pushlstring(L, b.data ? b.data : "", b.len);
  strbuf_free(&b);
  return rc;
}

int crpg_encode_params(lua_State *L, int first, int n, param_set *ps) {
  int i;

  ps->n = n;
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
    char err[128];
    size_t len;
    long long iv;
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
        break;
      case LUA_TNUMBER:
        if (crpg_isinteger(L, idx, &iv)) snprintf(ps->numbers[i], NUMBUF, "%lld", iv);
        else format_double(ps->numbers[i], (double)lua_tonumber(L, idx));
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
          if (push_encoded(L, src, as_array, err, sizeof err)) return bad_param(L, i + 1, err);
          ps->values[i] = lua_tostring(L, -1); /* the string stays on the stack */
          if (src != idx) lua_remove(L, src);
        }
        break;
      default:
        snprintf(err, sizeof err, "cannot encode a %s", lua_typename(L, t));
        return bad_param(L, i + 1, err);
    }
  }
  return 0;
}
