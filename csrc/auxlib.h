/* Lua helpers that know no type of the module: registering a type, a
 * userdata's hooks table, pg.null, a metatable test and an option reader.
 * Every Lua-facing file may call these; they call none of them. */
#ifndef CRPG_AUXLIB_H
#define CRPG_AUXLIB_H

#include "compat.h"

/* Pushes pg.null (the light userdata NULL, as cjson.null and ngx.null). */
void crpg_push_null(lua_State *L);
/* 1 when the value at idx is pg.null. */
int crpg_is_null(lua_State *L, int idx);
/* Sets the uservalue of the userdata at ud to the table at hooks (or a new one when 0). */
void crpg_set_hooks(lua_State *L, int ud, int hooks);
/* Registers metatable `name` with its metamethods, methods as __index. */
void crpg_new_type(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *metamethods);
/* Adds methods to the __index of the registered type `name`. */
void crpg_add_methods(lua_State *L, const char *name, const luaL_Reg *methods);
/* 1 when the value at idx has the metatable registered as `name`. */
int crpg_has_mt(lua_State *L, int idx, const char *name);
/* Reads opts[key] (opts a stack index, or 0 for none) into *out, dflt when
 * absent. Returns 0, CRPG_OPT_NOT_NUMBER, or CRPG_OPT_TOO_SMALL (below min). */
#define CRPG_OPT_NOT_NUMBER 1
#define CRPG_OPT_TOO_SMALL 2
int crpg_opt_number(lua_State *L, int opts, const char *key, double dflt, double min, double *out);

#endif
