/*
** Helpers every Lua binding of the engine (lua_*.c) uses: userdata
** classes, the shape of a recoverable failure, and the loop the bindings
** share with the state their callbacks run on.
** Invariant: a Lua error raised by a callback never unwinds through
** libuv; it stops the loop and is handed to whoever ran it
** (wr__lua_run), which raises it again.
*/
#ifndef WEIR_LUA_AUX_H
#define WEIR_LUA_AUX_H

#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

/* Registers metatable mt whose __index holds methods (a userdata class). */
void wr__lua_new_class(lua_State* L, const char* mt, const luaL_Reg* methods);

/* Like wr__lua_new_class, with gc as the class's __gc (it frees what a
** collected object still holds). */
void wr__lua_new_gc_class(lua_State* L, const char* mt,
                          const luaL_Reg* methods, lua_CFunction gc);

/* Pushes nil, the message of err and its symbolic name; returns 3. This is
** how every recoverable failure reaches Lua. */
int wr__lua_push_error(lua_State* L, int err);

/* -- Callbacks from the loop ---------------------------------------------- */

/* The loop every binding uses (libuv's default loop). */
uv_loop_t* wr__lua_loop(void);

/* Calls the function referenced by fn_ref with the nargs values on top of
** the stack, from a libuv callback. An error stops the loop and is kept
** for wr__lua_run to return. */
void wr__lua_callback(int fn_ref, int nargs);

/* The lua_State that callbacks run on, set while wr__lua_run runs. */
lua_State* wr__lua_state(void);

/* Runs the loop in mode with L as the state callbacks run on (restoring
** the previous one after). Stores uv_run's result in *alive unless alive
** is NULL. Returns the registry reference of the first error a callback
** raised, which the caller owns, or LUA_NOREF. */
int wr__lua_run(lua_State* L, uv_run_mode mode, int* alive);

#endif
