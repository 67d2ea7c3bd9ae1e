/* Lua values <-> JSON text, over the Lua-free parser and writers in json.c.
 * JSON null is pg.null; decoded arrays carry the json_array metatable so an
 * empty array encodes back as [] rather than {}. */
#include <stdio.h>
#include <string.h>

#include "crpg.h"
#include "json.h"

#define ENCODE_MAX_DEPTH 128

/* ---- encoding --------------------------------------------------------------- */

static int encode_value(lua_State *L, int idx, strbuf *b, int depth, char *err, size_t errlen);
static int encode_string(strbuf *b, const char *s, size_t len, char *err, size_t errlen);

/* Classifies the table at idx: returns its length when its keys are exactly
 * 1..n (n > 0), 0 for an object (or an empty table), -1 for keys JSON cannot
 * hold (mixed or sparse). */
static long array_length(lua_State *L, int idx) {
  long count = 0, max = 0;
  int strings = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      strings = 1;
    } else {
      long long k;
      if (lua_type(L, -1) != LUA_TNUMBER || !crpg_isinteger(L, -1, &k) || k < 1) {
        lua_pop(L, 1);
        return -1;
      }
      if (k > max) max = (long)k;
      count++;
    }
  }
  if (count == 0) return 0;
  if (strings || max != count) return -1;
  return count;
}

static int encode_table(lua_State *L, int idx, strbuf *b, int depth, char *err, size_t errlen) {
  long n, i;
  int first = 1;
  if (depth > ENCODE_MAX_DEPTH) {
    snprintf(err, errlen, "JSON nested deeper than %d levels (a cycle?)", ENCODE_MAX_DEPTH);
    return -1;
  }
  if (!lua_checkstack(L, 4)) { snprintf(err, errlen, "out of stack"); return -1; }
  n = array_length(L, idx);
  if (n < 0) {
    snprintf(err, errlen, "table mixes array and object keys, or has holes");
    return -1;
  }
  if (n > 0 || crpg_has_mt(L, idx, CRPG_JSON_ARRAY_MT)) {
    strbuf_putc(b, '[');
    for (i = 1; i <= n; i++) {
      if (i > 1) strbuf_putc(b, ',');
      lua_rawgeti(L, idx, (int)i);
      if (encode_value(L, lua_gettop(L), b, depth + 1, err, errlen)) return -1;
      lua_pop(L, 1);
    }
    strbuf_putc(b, ']');
    return 0;
  }
  strbuf_putc(b, '{');
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t klen;
    const char *key = lua_tolstring(L, -2, &klen); /* keys are strings here */
    if (!first) strbuf_putc(b, ',');
    first = 0;
    if (encode_string(b, key, klen, err, errlen)) return -1;
    strbuf_putc(b, ':');
    if (encode_value(L, lua_gettop(L), b, depth + 1, err, errlen)) return -1;
    lua_pop(L, 1);
  }
  strbuf_putc(b, '}');
  return 0;
}

/* Appends a string as JSON; a NUL byte or invalid UTF-8 is refused (the
 * server would refuse it, quoting the bytes). 0 or -1 with err filled in. */
static int encode_string(strbuf *b, const char *s, size_t len, char *err, size_t errlen) {
  size_t at;
  int bad = json_check_text(s, len, &at);
  if (bad) {
    snprintf(err, errlen, "JSON strings must be UTF-8 without NUL: %s at byte %lu",
             bad == 1 ? "a NUL byte" : "invalid UTF-8", (unsigned long)at + 1);
    return -1;
  }
  json_append_string(b, s, len);
  return 0;
}

static int encode_value(lua_State *L, int idx, strbuf *b, int depth, char *err, size_t errlen) {
  long long iv;
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      strbuf_puts(b, "null");
      return 0;
    case LUA_TBOOLEAN:
      strbuf_puts(b, lua_toboolean(L, idx) ? "true" : "false");
      return 0;
    case LUA_TNUMBER:
      if (crpg_isinteger(L, idx, &iv) && (LUA_VERSION_NUM >= 503 || (iv > -(1LL << 53) && iv < (1LL << 53)))) {
        strbuf_put_int(b, iv);
        return 0;
      }
      if (json_append_double(b, (double)lua_tonumber(L, idx))) {
        snprintf(err, errlen, "JSON cannot hold NaN or infinity");
        return -1;
      }
      return 0;
    case LUA_TSTRING:
      s = lua_tolstring(L, idx, &len);
      return encode_string(b, s, len, err, errlen);
    case LUA_TTABLE:
      return encode_table(L, idx, b, depth, err, errlen);
    default:
      if (crpg_is_null(L, idx)) {
        strbuf_puts(b, "null");
        return 0;
      }
      snprintf(err, errlen, "JSON cannot hold a %s", luaL_typename(L, idx));
      return -1;
  }
}

int crpg_json_encode(lua_State *L, int idx, strbuf *b, char *err, size_t errlen) {
  return encode_value(L, lua_absindex(L, idx), b, 0, err, errlen);
}

/* ---- decoding --------------------------------------------------------------- */

/* The value being built is on the stack top: the innermost open container,
 * and above it an object key waiting for its value. The first STACK_LEVELS
 * outer containers stay on the Lua stack below it; deeper ones live in a chain
 * table (chain[depth]), made on first need, so nesting is bounded by memory
 * only, as deep as the server's own limit. */
#define STACK_LEVELS 32
#define INLINE_SLOTS 64

typedef struct decoder {
  lua_State *L;
  size_t depth;
  int chain_idx;                    /* stack index of the chain table (nil until needed) */
  int array_mt_idx;                 /* stack index of the json_array metatable (nil until needed) */
  long inline_slots[INLINE_SLOTS];  /* per level: the next array slot, 0 for objects ... */
  strbuf slots;                     /* ... in slots.data past INLINE_SLOTS levels */
} decoder;

static long *slot(decoder *d) {
  return d->depth < INLINE_SLOTS ? &d->inline_slots[d->depth] : (long *)(void *)d->slots.data + d->depth;
}

/* Stores the value on top into the current container (at the top level, it
 * stays on the stack as the result). */
static int store(decoder *d) {
  lua_State *L = d->L;
  if (d->depth == 0) return 0;
  if (*slot(d) > 0) {
    lua_rawseti(L, -2, (int)(*slot(d))++);
  } else {
    lua_rawset(L, -3); /* container, key, value */
  }
  return 0;
}

static int on_null(void *ctx) {
  decoder *d = ctx;
  crpg_push_null(d->L);
  return store(d);
}

static int on_boolean(void *ctx, int v) {
  decoder *d = ctx;
  lua_pushboolean(d->L, v);
  return store(d);
}

static int on_integer(void *ctx, long long v) {
  decoder *d = ctx;
#if LUA_VERSION_NUM >= 503
  lua_pushinteger(d->L, (lua_Integer)v);
#else
  lua_pushnumber(d->L, (lua_Number)v);
#endif
  return store(d);
}

static int on_number(void *ctx, double v) {
  decoder *d = ctx;
  lua_pushnumber(d->L, (lua_Number)v);
  return store(d);
}

static int on_string(void *ctx, const char *s, size_t len) {
  decoder *d = ctx;
  lua_pushlstring(d->L, s, len);
  return store(d);
}

/* Opens a container: stored into its parent at once, the parent moved to the
 * chain, the new container left alone on top. */
static int open_container(decoder *d, long first_index, int is_array) {
  lua_State *L = d->L;
  if (!lua_checkstack(L, 6)) return 1;
  lua_newtable(L);
  if (is_array) {
    if (lua_isnil(L, d->array_mt_idx)) { /* looked up once per decoded value */
      luaL_getmetatable(L, CRPG_JSON_ARRAY_MT);
      lua_replace(L, d->array_mt_idx);
    }
    lua_pushvalue(L, d->array_mt_idx);
    lua_setmetatable(L, -2);
  }
  if (d->depth > 0) {
    if (*slot(d) > 0) {                         /* parent, new */
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, (int)(*slot(d))++);
    } else {                                    /* parent, key, new */
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      lua_rawset(L, -5);
      lua_remove(L, -2);
    }                                           /* parent, new */
    if (d->depth >= STACK_LEVELS) {             /* deep: the parent moves to the chain */
      if (lua_isnil(L, d->chain_idx)) {
        lua_newtable(L);
        lua_replace(L, d->chain_idx);
      }
      lua_insert(L, -2);                          /* new, parent */
      lua_rawseti(L, d->chain_idx, (int)d->depth); /* chain[depth] = parent; new */
    }
  }
  d->depth++;
  if (d->depth >= INLINE_SLOTS) {
    long zero = 0;
    if (d->slots.len == 0) strbuf_append(&d->slots, (const char *)d->inline_slots, sizeof d->inline_slots);
    strbuf_append(&d->slots, (const char *)&zero, sizeof zero);
    if (d->slots.failed) return 1;
  }
  *slot(d) = first_index;
  return 0;
}

static int on_begin_object(void *ctx) { return open_container(ctx, 0, 0); }
static int on_begin_array(void *ctx) { return open_container(ctx, 1, 1); }

static int on_key(void *ctx, const char *s, size_t len) {
  decoder *d = ctx;
  lua_pushlstring(d->L, s, len);
  return 0;
}

/* Closes the current container: back to its parent (already holding it). */
static int close_container(void *ctx) {
  decoder *d = ctx;
  lua_State *L = d->L;
  if (d->depth >= INLINE_SLOTS) d->slots.len -= sizeof(long);
  d->depth--;
  if (d->depth == 0) return 0;                  /* the result stays on top */
  lua_pop(L, 1);                                /* stored in its parent already */
  if (d->depth >= STACK_LEVELS) {               /* the parent is in the chain */
    lua_rawgeti(L, d->chain_idx, (int)d->depth);
    lua_pushnil(L);
    lua_rawseti(L, d->chain_idx, (int)d->depth);
  }                                             /* else it is on top now */
  return 0;
}

static const json_handlers lua_builders = {
  on_null, on_boolean, on_integer, on_number, on_string,
  on_begin_object, on_key, close_container, on_begin_array, close_container,
};

int crpg_json_decode(lua_State *L, const char *text, size_t len) {
  decoder d;
  json_error err;
  int base = lua_gettop(L), rc;
  d.L = L;
  d.depth = 0;
  d.inline_slots[0] = 0; /* level 0 */
  strbuf_init(&d.slots);
  lua_pushnil(L); /* the chain, made when needed */
  d.chain_idx = lua_gettop(L);
  lua_pushnil(L); /* the array metatable, fetched when needed */
  d.array_mt_idx = lua_gettop(L);
  rc = json_parse(text, len, &lua_builders, &d, &err);
  strbuf_free(&d.slots);
  if (rc != 0) {
    lua_settop(L, base);
    return -1;
  }
  /* stack: chain, array_mt, value */
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return 0;
}
