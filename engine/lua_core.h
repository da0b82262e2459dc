/*
** Internal helpers shared by the Lua bindings of the engine (lua_*.c).
** Each binding file adds its functions to the module table on the top of
** the stack; luaopen_weir_core (lua_core.c) calls them in turn.
*/
#ifndef WEIR_LUA_CORE_H
#define WEIR_LUA_CORE_H

#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

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

/* Parses "tcp:HOST:PORT" (IPv4 or IPv6 HOST) into sa. Returns 0 or
** UV_EINVAL. */
struct sockaddr_storage;
int wr__parse_tcp(const char* address, struct sockaddr_storage* sa);
void wr__lua_open_editline(lua_State* L);

/* Registers metatable mt whose __index holds methods (a userdata class). */
void wr__lua_new_class(lua_State* L, const char* mt, const luaL_Reg* methods);

/* Like wr__lua_new_class, with gc as the class's __gc (it frees what a
** collected object still holds). */
void wr__lua_new_gc_class(lua_State* L, const char* mt,
                          const luaL_Reg* methods, lua_CFunction gc);

/* Pushes nil, the message of err and its symbolic name; returns 3. This is
** how every recoverable failure reaches Lua. */
int wr__lua_push_error(lua_State* L, int err);

/* The loop every binding uses (libuv's default loop). */
uv_loop_t* wr__lua_loop(void);

/* Calls the function referenced by fn_ref with the nargs values on top of
** the stack, from a libuv callback. An error stops the loop; core.run()
** raises it. */
void wr__lua_callback(int fn_ref, int nargs);

/* The lua_State that callbacks run on, set while core.run() runs. */
lua_State* wr__lua_state(void);

#endif
