/* Lua 5.1 / LuaJIT 2.1 versus Lua 5.4, in one place.
 * LuaJIT 2.1 already has luaL_setfuncs, luaL_newlib, luaL_testudata and
 * lua_tointegerx; guard only on what it lacks. */
#ifndef CRPG_COMPAT_H
#define CRPG_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 501
/* LuaJIT 2.1's lauxlib.h has the 5.2 API the core uses (luaL_setfuncs,
 * luaL_testudata) and defines luaL_newlib; plain Lua 5.1's has none of them, and
 * a module built on it crashes (implicit declarations) or fails to load. */
#if !defined(luaL_newlib)
#error "coderunner.pg needs LuaJIT 2.1's headers for the Lua 5.1 ABI (luaL_setfuncs, luaL_testudata); these look like plain Lua 5.1's: build with LUA_INCDIR=$(pkg-config --variable=includedir luajit)/luajit-2.1"
#endif
#define CRPG_LUAJIT 1
#ifndef lua_rawlen
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif
#ifndef lua_absindex
#define lua_absindex(L, i) \
  (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#endif
#define lua_newuserdatauv(L, size, nuv) lua_newuserdata((L), (size))
#define crpg_setuservalue(L, i) lua_setfenv((L), (i))
#define crpg_getuservalue(L, i) lua_getfenv((L), (i))
#else
#define CRPG_LUAJIT 0
#define crpg_setuservalue(L, i) lua_setiuservalue((L), (i), 1)
#define crpg_getuservalue(L, i) ((void)lua_getiuservalue((L), (i), 1))
#endif

/* True when the value at i is a Lua integer (5.4), or a number with an integral
 * value that fits in int64 (LuaJIT, where every number is a double). */
static inline int crpg_isinteger(lua_State *L, int i, long long *out) {
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, i)) { *out = (long long)lua_tointeger(L, i); return 1; }
  return 0;
#else
  lua_Number n = lua_tonumber(L, i);
  /* -0.0 is a float: its sign must survive */
  if (n >= -9223372036854775808.0 && n < 9223372036854775808.0 && n == (lua_Number)(long long)n &&
      !(n == 0 && 1 / n < 0)) {
    *out = (long long)n;
    return 1;
  }
  return 0;
#endif
}

/* Pushes an int64 without losing precision: a Lua integer on 5.4; on LuaJIT a
 * number when |v| <= 2^53, else the exact decimal string. */
static inline void crpg_pushint64(lua_State *L, long long v) {
#if LUA_VERSION_NUM >= 503
  lua_pushinteger(L, (lua_Integer)v);
#else
  if (v >= -9007199254740992LL && v <= 9007199254740992LL) {
    lua_pushnumber(L, (lua_Number)v);
  } else {
    char tmp[24], buf[24];
    int n = 0, k = 0, neg = v < 0;
    unsigned long long u = neg ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do { tmp[n++] = (char)('0' + (int)(u % 10)); u /= 10; } while (u);
    if (neg) buf[k++] = '-';
    while (n) buf[k++] = tmp[--n];
    lua_pushlstring(L, buf, (size_t)k);
  }
#endif
}

#endif
