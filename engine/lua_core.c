/*
** The `weir.core` Lua module: the engine's C functions as seen from Lua.
** Linked into the weir executable (package.preload) and built as
** weir/core.so for plain luajit.
*/
#include "lua_core.h"

#include "error.h"

int wr__lua_push_error(lua_State* L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, wr_strerror(err));
  lua_pushstring(L, wr_err_name(err));
  return 3;
}

void wr__lua_new_class(lua_State* L, const char* mt,
                       const luaL_Reg* methods) {
  luaL_newmetatable(L, mt);
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

void wr__lua_new_gc_class(lua_State* L, const char* mt,
                          const luaL_Reg* methods, lua_CFunction gc) {
  wr__lua_new_class(L, mt, methods);
  luaL_getmetatable(L, mt);
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

int luaopen_weir_core(lua_State* L) {
  lua_newtable(L);
  wr__lua_open_loop(L);
  wr__lua_open_fs(L);
  wr__lua_open_keygroup(L);
  wr__lua_open_barrier(L);
  wr__lua_open_snapshot(L);
  wr__lua_open_serialized(L);
  wr__lua_open_net(L);
  wr__lua_open_process(L);
  wr__lua_open_heartbeat(L);
  wr__lua_open_auth(L);
  wr__lua_open_editline(L);
  return 1;
}
