/*
** The `weir.core` Lua module and the openers of its parts. Each binding
** file (lua_<concept>.c) has one opener, which adds its functions to the
** module table on the top of the stack; luaopen_weir_core (lua_core.c)
** calls them in turn. The helpers the bindings share are in lua_aux.h.
*/
#ifndef WEIR_LUA_CORE_H
#define WEIR_LUA_CORE_H

#include <lua.h>

/* Opens the `weir.core` module: returns 1 with the module table pushed. */
int luaopen_weir_core(lua_State* L);

void wr__lua_open_loop(lua_State* L);
void wr__lua_open_fs(lua_State* L);
void wr__lua_open_keygroup(lua_State* L);
void wr__lua_open_barrier(lua_State* L);
void wr__lua_open_snapshot(lua_State* L);
void wr__lua_open_serialized(lua_State* L);
void wr__lua_open_net(lua_State* L);
void wr__lua_open_process(lua_State* L);
void wr__lua_open_heartbeat(lua_State* L);
void wr__lua_open_auth(lua_State* L);
void wr__lua_open_editline(lua_State* L);
void wr__lua_open_fork(lua_State* L);
void wr__lua_open_rocksdb(lua_State* L);
void wr__lua_open_redis(lua_State* L);
void wr__lua_open_kafka(lua_State* L);
void wr__lua_open_log(lua_State* L);
void wr__lua_open_http(lua_State* L);

#endif
