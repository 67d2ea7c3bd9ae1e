/* PGresult -> Lua: an array of rows keyed by column name, each value decoded
 * by its column's type (text format), plus res.columns. Types the built-in
 * list does not hold are looked up in pg_type once per connection (pgtype.c):
 * any array decodes element-wise with its element type's delimiter, enums as
 * text, domains as their base type; pg.register_type adds decoders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_literal.h"
#include "binary.h"
#include "bytea.h"
#include "crpg.h"

typedef enum {
  DEC_TEXT, DEC_INT, DEC_FLOAT, DEC_BOOL, DEC_JSON, DEC_BYTEA, DEC_CUSTOM
} decoder_kind;

typedef struct column_decoder {
  decoder_kind kind;  /* of the value, or of each element of an array */
  int is_array;
  char delim;         /* the element separator of an array */
  int fn;             /* DEC_CUSTOM: stack index of the registered function */
  Oid oid;            /* DEC_CUSTOM: the type handed to it */
} column_decoder;

#define MAX_TYPE_HOPS 8   /* domain over domain over array of domain ... */

/* How the values of a (non-array, non-domain) built-in type decode. */
static decoder_kind builtin_kind(Oid oid) {
  switch (oid) {
    case 20: case 21: case 23: case 26: return DEC_INT;    /* int8 int2 int4 oid */
    case 700: case 701: return DEC_FLOAT;                  /* float4 float8 */
    case 16: return DEC_BOOL;
    case 114: case 3802: return DEC_JSON;                  /* json jsonb */
    case 17: return DEC_BYTEA;
    default: return DEC_TEXT;
  }
}

/* The registered function for oid (on the stack at reg, a table oid -> fn),
 * pushed, or nothing (returns 0). */
static int registered(lua_State *L, int reg, Oid oid) {
  if (!reg) return 0;
  lua_pushinteger(L, (lua_Integer)oid);
  lua_rawget(L, reg);
  if (lua_isfunction(L, -1)) return lua_gettop(L);
  lua_pop(L, 1);
  return 0;
}

/* The decoder for a value of type oid; follows domains to their base type
 * and arrays to their element type, stopping at a registered decoder. */
static column_decoder decoder_for(lua_State *L, session *s, int reg, Oid oid) {
  column_decoder d = {DEC_TEXT, 0, ',', 0, 0};
  int hops;
  for (hops = 0; hops < MAX_TYPE_HOPS; hops++) {
    const pgtype_info *t;
    int fn = registered(L, reg, oid);
    if (fn) {
      d.kind = DEC_CUSTOM;
      d.fn = fn;
      d.oid = oid;
      return d;
    }
    t = pgtype_find(s->pg, &s->types, oid);
    if (!t) break;                                   /* the server could not say: text */
    if (t->typtype == 'd' && t->base) { oid = t->base; continue; }
    if (t->elem && !d.is_array) {
      const pgtype_info *e = pgtype_find(s->pg, &s->types, t->elem);
      d.is_array = 1;
      d.delim = e ? e->delim : ',';
      oid = t->elem;
      continue;
    }
    d.kind = builtin_kind(oid);
    break;
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

/* Pushes one scalar value. Returns 0, or -1 (nothing pushed) when it cannot
 * be decoded. */
static int push_scalar(lua_State *L, const column_decoder *d, const char *s, size_t len) {
  long long iv;
  switch (d->kind) {
    case DEC_INT:
      if (parse_int64(s, &iv) == 0) crpg_pushint64(L, iv);
      else lua_pushlstring(L, s, len);
      return 0;
    case DEC_FLOAT:
      lua_pushnumber(L, (lua_Number)strtod(s, NULL)); /* strtod reads NaN, Infinity, -Infinity */
      return 0;
    case DEC_BOOL:
      lua_pushboolean(L, s[0] == 't');
      return 0;
    case DEC_JSON:
      return crpg_json_decode(L, s, len);
    case DEC_BYTEA: {
      size_t outlen;
      char small[512]; /* most values: no scratch userdata */
      char *out = len <= sizeof small ? small : lua_newuserdatauv(L, len, 0); /* scratch, collected */
      if (bytea_decode(s, len, out, &outlen) != 0) {
        if (out != small) lua_pop(L, 1);
        return -1;
      }
      lua_pushlstring(L, out, outlen);
      if (out != small) lua_remove(L, -2);
      return 0;
    }
    case DEC_CUSTOM:
      lua_pushvalue(L, d->fn);
      lua_pushlstring(L, s, len);
      lua_pushinteger(L, (lua_Integer)d->oid);
      lua_call(L, 2, 1);   /* a decoder that raises is the caller's error */
      return 0;
    default:
      lua_pushlstring(L, s, len);
      return 0;
  }
}

/* Pushes a numeric that came in binary as the server's text for it. */
static int push_binary_numeric(lua_State *L, const char *v, size_t len) {
  char buf[128], *out;
  size_t outlen;
  int rc = binary_numeric(v, len, buf, sizeof buf, &outlen);
  if (rc == 0) {
    lua_pushlstring(L, buf, outlen);
    return 0;
  }
  if (rc < 0) return -1;
  out = lua_newuserdatauv(L, outlen, 0);  /* scratch, collected */
  if (binary_numeric(v, len, out, outlen, &outlen) != 0) {
    lua_pop(L, 1);
    return -1;
  }
  lua_pushlstring(L, out, outlen);
  lua_remove(L, -2);
  return 0;
}

static int push_binary(lua_State *L, Oid oid, const char *v, size_t len, const long *east);

/* Pushes an array that came in binary as nested tables (the lower bounds
 * dropped, NULL elements pg.null), as push_array makes of its text. */
static int push_binary_array(lua_State *L, Oid elem, const char *v, size_t len, const long *east) {
  binary_array a;
  int top = lua_gettop(L), depth, index[BINARY_ARRAY_MAXDIM];
  long i;
  if (binary_array_open(v, len, &a) != 0 || a.elem != elem) return -1;
  if (!lua_checkstack(L, BINARY_ARRAY_MAXDIM + 8)) return -1;
  lua_createtable(L, a.ndim ? a.dims[0] : 0, 0);
  if (a.count == 0) return 0;
  for (depth = 1; depth < a.ndim; depth++) { /* open the first path down */
    lua_createtable(L, a.dims[depth], 0);
  }
  for (depth = 0; depth < a.ndim; depth++) index[depth] = 1;
  for (i = 0; i < a.count; i++) {
    const char *ev;
    size_t elen;
    if (binary_array_next(&a, &ev, &elen) != 0) goto bad;
    if (!ev) crpg_push_null(L);
    else if (push_binary(L, elem, ev, elen, east) != 0) goto bad;
    lua_rawseti(L, -2, index[a.ndim - 1]++);
    /* close the sub-arrays that are full, open fresh ones */
    for (depth = a.ndim - 1; depth > 0 && index[depth] > a.dims[depth]; depth--) {
      lua_rawseti(L, -2, index[depth - 1]++);
      index[depth] = 1;
    }
    if (i + 1 < a.count)
      for (depth++; depth < a.ndim; depth++) lua_createtable(L, a.dims[depth], 0);
  }
  return 0;
bad:
  lua_settop(L, top);
  return -1;
}

/* Pushes one value that came in binary: the session asks for binary results
 * only when every column's type is one binary_eligible names (dates only
 * with an ISO DateStyle, timestamptz only with a fixed-offset TimeZone: east,
 * NULL when the TimeZone is not one), and only when no decoder is registered
 * (crpg_decoders_registered). The values are the ones push_scalar and
 * push_array make of the same column in text. Returns 0, or -1. */
static int push_binary(lua_State *L, Oid oid, const char *v, size_t len, const long *east) {
  long long iv;
  double dv;
  char buf[BINARY_TIME_MAX > 36 ? BINARY_TIME_MAX : 36];
  size_t n;
  Oid elem;
  switch (oid) {
    case 20: case 21: case 23: case 26:   /* int8 int2 int4 oid */
      if (binary_int(v, len, oid == 26, &iv)) return -1;
      crpg_pushint64(L, iv);
      return 0;
    case 701:
      if (binary_float8(v, len, &dv)) return -1;
      lua_pushnumber(L, (lua_Number)dv);
      return 0;
    case 700:
      if (binary_float4(v, len, &dv)) return -1;
      lua_pushnumber(L, (lua_Number)dv);
      return 0;
    case 16:
      if (len != 1) return -1;
      lua_pushboolean(L, v[0] != 0);
      return 0;
    case 3802:                            /* jsonb: a version byte, then the text */
      if (len < 1 || v[0] != 1) return -1;
      return crpg_json_decode(L, v + 1, len - 1);
    case 114:
      return crpg_json_decode(L, v, len);
    case 2950:
      if (binary_uuid(v, len, buf)) return -1;
      lua_pushlstring(L, buf, 36);
      return 0;
    case 1700:
      return push_binary_numeric(L, v, len);
    case 1082:
      if (binary_date(v, len, buf, &n)) return -1;
      lua_pushlstring(L, buf, n);
      return 0;
    case 1114: case 1184:                 /* timestamp timestamptz */
      if ((oid == 1184 && !east) || binary_timestamp(v, len, oid == 1184, east ? *east : 0, buf, &n)) return -1;
      lua_pushlstring(L, buf, n);
      return 0;
    case 17: case 19: case 25: case 1042: case 1043:  /* bytea name text bpchar varchar: the bytes */
      lua_pushlstring(L, v, len);
      return 0;
    default:
      elem = binary_array_elem(oid);
      if (!elem) return -1;
      return push_binary_array(L, elem, v, len, east);
  }
}

/* ---- arrays ------------------------------------------------------------------ */

typedef struct array_builder {
  lua_State *L;
  const column_decoder *d;
  int depth;
  int index[66];
  char scratch[64];
} array_builder;

static void append_top(array_builder *a) {
  if (a->depth > 0) lua_rawseti(a->L, -2, a->index[a->depth]++);
}

static int on_begin(void *ctx) {
  array_builder *a = ctx;
  if (!lua_checkstack(a->L, 8)) return 1;
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
    crpg_push_null(a->L);
  } else if (a->d->kind == DEC_INT || a->d->kind == DEC_FLOAT || a->d->kind == DEC_BOOL) {
    /* numbers and booleans need a NUL-terminated copy; they are short */
    if (len >= sizeof a->scratch) len = sizeof a->scratch - 1;
    memcpy(a->scratch, s, len);
    a->scratch[len] = '\0';
    push_scalar(a->L, a->d, a->scratch, len);
  } else if (push_scalar(a->L, a->d, s, len) != 0) {
    return 1;
  }
  append_top(a);
  return 0;
}

static const array_literal_handlers array_builders = {on_begin, on_end, on_element};

static int push_array(lua_State *L, const column_decoder *d, const char *s, size_t len) {
  array_builder a;
  int top = lua_gettop(L);
  a.L = L;
  a.d = d;
  a.depth = 0;
  if (array_literal_parse(s, len, d->delim, &array_builders, &a) != 0) {
    lua_settop(L, top);
    return -1;
  }
  return 0;
}

/* ---- registered decoders -------------------------------------------------------- */

/* Copies the decoders of the table at src into dst (oid -> fn), names resolved
 * through the server; entries already in dst win. */
static void merge_decoders(lua_State *L, session *s, int src, int dst) {
  lua_pushnil(L);
  while (lua_next(L, src)) {
    long oid = -1;
    if (lua_type(L, -2) == LUA_TNUMBER) oid = (long)lua_tointeger(L, -2);
    else if (lua_type(L, -2) == LUA_TSTRING) oid = pgtype_resolve(s->pg, &s->types, lua_tostring(L, -2));
    if (oid > 0) {
      lua_pushinteger(L, (lua_Integer)oid);
      lua_rawget(L, dst);
      if (lua_isnil(L, -1)) {
        lua_pushinteger(L, (lua_Integer)oid);
        lua_pushvalue(L, -3);
        lua_rawset(L, dst);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

/* Pushes the table at t[field] (t a stack index, or the registry) when it is a
 * non-empty table and returns 1; else pushes nothing and returns 0. */
static int push_nonempty(lua_State *L, int t, const char *field) {
  lua_getfield(L, t, field);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    if (lua_next(L, -2)) {
      lua_pop(L, 2);
      return 1;
    }
  }
  lua_pop(L, 1);
  return 0;
}

int crpg_decoders_registered(lua_State *L, int hooks) {
  int yes = (hooks && push_nonempty(L, hooks, "types")) || push_nonempty(L, LUA_REGISTRYINDEX, CRPG_TYPES_KEY);
  if (yes) lua_pop(L, 1);
  return yes;
}

/* Pushes the table oid -> fn of the decoders that apply (the executor's, then
 * the module's) and returns its index, or returns 0 with nothing pushed (the
 * common case: no table is made). */
static int push_decoders(lua_State *L, session *s, int hooks) {
  int own = hooks && push_nonempty(L, hooks, "types");
  int global = push_nonempty(L, LUA_REGISTRYINDEX, CRPG_TYPES_KEY);
  int dst;
  if (!own && !global) return 0;
  lua_newtable(L);
  dst = lua_gettop(L);
  if (own) merge_decoders(L, s, dst - 1 - global, dst);
  if (global) merge_decoders(L, s, dst - 1, dst);
  lua_replace(L, dst - own - global);  /* the result over the first source */
  lua_settop(L, dst - own - global);
  return lua_gettop(L);
}

/* ---- results ----------------------------------------------------------------- */

static int decode_error(lua_State *L, session *s, PGresult *r, int base, int col, const char *what) {
  char msg[256];
  const pgtype_info *t = pgtype_get(&s->types, PQftype(r, col));
  snprintf(msg, sizeof msg, "column \"%s\" (%s): %s", PQfname(r, col), t ? t->name : "?", what);
  lua_settop(L, base);
  s->decoding = NULL;
  PQclear(r);
  return crpg_push_error(L, KIND_SERVER, msg);
}

/* Pushes res.columns: { {name=, type_oid=, type=}, ... } in column order;
 * the names are the strings already on the stack from index names. */
static void push_columns(lua_State *L, session *s, const PGresult *r, int ncols, int names) {
  int col;
  lua_createtable(L, ncols, 0);
  for (col = 0; col < ncols; col++) {
    Oid oid = PQftype(r, col);
    const pgtype_info *t = pgtype_get(&s->types, oid);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, names + col);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, (lua_Integer)oid);
    lua_setfield(L, -2, "type_oid");
    if (t) {
      lua_pushstring(L, t->name);
      lua_setfield(L, -2, "type");
    }
    lua_rawseti(L, -2, col + 1);
  }
}

static int push_result(lua_State *L, session *s, PGresult *r, int hooks, int meta) {
  int nrows = PQntuples(r), ncols = PQnfields(r), row, col;
  int base, names, res, reg;
  column_decoder decoders[64], *dec = decoders;
  const char *tuples = PQcmdTuples(r), *status = PQcmdStatus(r);
  size_t verb;
  long tz_east = 0;
  const long *east = NULL;

  s->decoding = r; /* freed by the session if anything below raises */
  base = lua_gettop(L);
  if (ncols > 64) dec = lua_newuserdatauv(L, sizeof(column_decoder) * (size_t)ncols, 0);
  luaL_checkstack(L, 2 * ncols + 16, "too many columns");
  if (ncols > 0) { /* one query for every type not known yet */
    Oid oids[64], *list = oids;
    if (ncols > 64) list = lua_newuserdatauv(L, sizeof(Oid) * (size_t)ncols, 0);
    for (col = 0; col < ncols; col++) list[col] = PQftype(r, col);
    pgtype_fetch(s->pg, &s->types, list, ncols);
  }
  reg = push_decoders(L, s, hooks);
  names = lua_gettop(L) + 1;
  for (col = 0; col < ncols; col++) lua_pushstring(L, PQfname(r, col));
  for (col = 0; col < ncols; col++) dec[col] = decoder_for(L, s, reg, PQftype(r, col));
  if (ncols > 0 && PQfformat(r, 0) == 1) { /* binary: the TimeZone timestamptz values show in */
    const char *tz = PQparameterStatus(s->pg, "TimeZone");
    if (tz && binary_tz_offset(tz, &tz_east) == 0) east = &tz_east;
  }
  lua_createtable(L, nrows, 3);
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
      if (PQfformat(r, col) == 1) {
        if (push_binary(L, PQftype(r, col), v, len, east))
          return decode_error(L, s, r, base, col, "the binary value cannot be decoded");
      } else if (dec[col].is_array ? push_array(L, &dec[col], v, len) : push_scalar(L, &dec[col], v, len))
        return decode_error(L, s, r, base, col,
                            dec[col].is_array ? "the array cannot be decoded" : "the value cannot be decoded");
      lua_rawset(L, -3);
    }
    lua_rawseti(L, res, row + 1);
  }
  if (meta) { /* res.columns, affected_rows, command */
    push_columns(L, s, r, ncols, names);
    lua_setfield(L, res, "columns");
    if (tuples && *tuples) {
      lua_pushinteger(L, (lua_Integer)strtoll(tuples, NULL, 10));
      lua_setfield(L, res, "affected_rows");
    }
    if (status && *status) {
      for (verb = 0; status[verb] && status[verb] != ' '; verb++) {}
      lua_pushlstring(L, status, verb);
      lua_setfield(L, res, "command");
    }
  }
  if (res > base + 1) {
    lua_replace(L, base + 1); /* over the scratch values */
    lua_settop(L, base + 1);
  }
  s->decoding = NULL;
  PQclear(r);
  return 1;
}

int crpg_push_result(lua_State *L, session *s, PGresult *r, int hooks) {
  return push_result(L, s, r, hooks, 1);
}

int crpg_push_result_rows(lua_State *L, session *s, PGresult *r, int hooks) {
  return push_result(L, s, r, hooks, 0);
}

/* pg.register_type(name_or_oid, decode_fn [, executor]) -> true
 * From then on values of that type (and the elements of its arrays) decode as
 * decode_fn(text, type_oid). name_or_oid: a type name as the server resolves
 * it (to_regtype: "hstore", "public.mood", "integer"), or an OID. executor: a
 * connection or pool to register for it alone; without one, for every
 * connection of this Lua state. decode_fn nil removes the decoder. */
static int pg_register_type(lua_State *L) {
  int key = lua_type(L, 1);
  if (key != LUA_TSTRING && key != LUA_TNUMBER) return luaL_argerror(L, 1, "type name or OID expected");
  if (key == LUA_TNUMBER) {
    long long oid;
    if (!crpg_isinteger(L, 1, &oid) || oid <= 0 || oid > 4294967295LL) return luaL_argerror(L, 1, "not a type OID");
  }
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) {
    lua_getfield(L, LUA_REGISTRYINDEX, CRPG_TYPES_KEY);
  } else {
    if (!luaL_testudata(L, 3, CRPG_CONN_MT) && !luaL_testudata(L, 3, CRPG_POOL_MT))
      return luaL_argerror(L, 3, "connection or pool expected");
    crpg_getuservalue(L, 3);                 /* the hooks table */
    lua_getfield(L, -1, "types");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setfield(L, -3, "types");
    }
  }
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawset(L, -3);
  lua_pushboolean(L, 1);
  return 1;
}

void crpg_open_result(lua_State *L) {
  static const luaL_Reg functions[] = {{"register_type", pg_register_type}, {NULL, NULL}};
  lua_getfield(L, LUA_REGISTRYINDEX, CRPG_TYPES_KEY);
  if (lua_isnil(L, -1)) {
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, CRPG_TYPES_KEY);
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
}
