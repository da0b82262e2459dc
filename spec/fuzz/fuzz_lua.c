/*
** One LuaJIT state for the Lua fuzz targets (see fuzz_lua.h).
*/
#include "fuzz_lua.h"

#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lua_core.h"

#ifndef WEIR_LUA_DIR
#error "WEIR_LUA_DIR names the lua/ directory of the source tree"
#endif

static lua_State* L;
static int fn_ref = LUA_NOREF;

static void die(const char* what) {
  fprintf(stderr, "fuzz: %s: %s\n", what, lua_tostring(L, -1));
  abort();
}

void wr_fuzz_lua_run(const char* code, const uint8_t* data, size_t size) {
  if (L == NULL) {
    L = luaL_newstate();
    if (L == NULL) abort();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, WEIR_LUA_DIR "/?.lua;" WEIR_LUA_DIR "/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_weir_core);
    lua_setfield(L, -2, "weir.core");
    lua_pop(L, 2);
    if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0)
      die("loading the target");
    fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
  lua_pushlstring(L, (const char*) data, size);
  if (lua_pcall(L, 1, 0, 0) != 0) die("the target raised");
}
