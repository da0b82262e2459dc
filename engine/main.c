/*
** The weir executable: LuaJIT with the engine linked in. It finds the Lua
** library beside itself (<dir>/lua in the build tree), else where it was
** installed (WEIR_INSTALLED_LUA_DIR, LuaJIT's share/lua/5.1 under the
** prefix, or <dir>/../share/lua/5.1 for a prefix moved as a whole), preloads `weir.core` and hands argv to weir.cli.main,
** whose return value is the exit status.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "lua_core.h"

static int file_exists(const char* path) {
  uv_fs_t req;
  int r = uv_fs_stat(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  return r == 0;
}

/* Writes the Lua library's directory into out; returns 0 or -1. */
static int find_lua_dir(char* out, size_t size) {
  char exe[4096], probe[4200 + 64];
  size_t len = sizeof(exe);
  char* slash;
  const char* env = getenv("WEIR_LUA_DIR");
  if (env != NULL) {
    snprintf(out, size, "%s", env);
    return 0;
  }
  if (uv_exepath(exe, &len) < 0) return -1;
  slash = strrchr(exe, '/');
  if (slash == NULL) return -1;
  *slash = '\0';
  snprintf(probe, sizeof(probe), "%s/lua/weir/init.lua", exe);
  if (file_exists(probe)) {
    snprintf(out, size, "%s/lua", exe);
    return 0;
  }
#ifdef WEIR_INSTALLED_LUA_DIR
  snprintf(probe, sizeof(probe), "%s/weir/init.lua", WEIR_INSTALLED_LUA_DIR);
  if (file_exists(probe)) {
    snprintf(out, size, "%s", WEIR_INSTALLED_LUA_DIR);
    return 0;
  }
#endif
  snprintf(probe, sizeof(probe), "%s/../share/lua/5.1/weir/init.lua", exe);
  if (file_exists(probe)) {
    snprintf(out, size, "%s/../share/lua/5.1", exe);
    return 0;
  }
  return -1;
}

static int traceback(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

int main(int argc, char** argv) {
  char lua_dir[8192];
  lua_State* L;
  int i, status;

  if (find_lua_dir(lua_dir, sizeof(lua_dir)) < 0) {
    fprintf(stderr, "weir: cannot find the weir Lua library beside the "
                    "executable (looked for lua/, ../share/lua/5.1 and "
                    "the install directory); "
                    "set WEIR_LUA_DIR\n");
    return 2;
  }
  /* A peer that went away shows as EPIPE from libuv, not as a signal. */
  signal(SIGPIPE, SIG_IGN);
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "weir: cannot create a Lua state (out of memory)\n");
    return 2;
  }
  luaL_openlibs(L);

  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", lua_dir, lua_dir);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_weir_core);
  lua_setfield(L, -2, "weir.core");
  lua_pop(L, 2);

  lua_pushcfunction(L, traceback);
  lua_getglobal(L, "require");
  lua_pushstring(L, "weir.cli");
  if (lua_pcall(L, 1, 1, -3) != 0) {
    fprintf(stderr, "weir: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 2;
  }
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  if (lua_pcall(L, 1, 1, -4) != 0) {
    fprintf(stderr, "weir: internal error: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 2;
  }
  status = (int) lua_tointeger(L, -1);
  lua_close(L);
  return status;
}
