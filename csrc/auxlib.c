/* Lua helpers that know no type of the module (see auxlib.h). */
#include "auxlib.h"

/* pg.null is the light userdata NULL: the same value as cjson.null and
 * ngx.null, and the same in every Lua state. */
void crpg_push_null(lua_State *L) {
  lua_pushlightuserdata(L, NULL);
}

int crpg_is_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

void crpg_set_hooks(lua_State *L, int ud, int hooks) {
  ud = lua_absindex(L, ud);
  if (hooks) lua_pushvalue(L, hooks);
  else lua_newtable(L);
  crpg_setuservalue(L, ud);
}

void crpg_new_type(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *metamethods) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, metamethods, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

int crpg_has_mt(lua_State *L, int idx, const char *name) {
  int same;
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, name);
  same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

int crpg_opt_number(lua_State *L, int opts, const char *key, double dflt, double min, double *out) {
  *out = dflt;
  if (!opts) return 0;
  lua_getfield(L, opts, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_type(L, -1) != LUA_TNUMBER) {
    lua_pop(L, 1);
    return CRPG_OPT_NOT_NUMBER;
  }
  *out = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return *out >= min ? 0 : CRPG_OPT_TOO_SMALL;
}

void crpg_add_methods(lua_State *L, const char *name, const luaL_Reg *methods) {
  luaL_getmetatable(L, name);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 2);
}
