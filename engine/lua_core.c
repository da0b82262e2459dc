/*
** The `weir.core` Lua module: the engine's C functions as seen from Lua.
** This file only opens the module, one binding file after another; the
** helpers those files share are in lua_aux.c. Linked into the weir
** executable (package.preload) and built as weir/core.so for plain luajit.
*/
#include "lua_core.h"

typedef void (*opener_t)(lua_State* L);

static const opener_t openers[] = {
  wr__lua_open_loop, wr__lua_open_fs, wr__lua_open_keygroup,
  wr__lua_open_barrier, wr__lua_open_snapshot, wr__lua_open_serialized,
  wr__lua_open_net, wr__lua_open_process, wr__lua_open_heartbeat,
  wr__lua_open_auth, wr__lua_open_editline, wr__lua_open_fork,
  wr__lua_open_rocksdb, wr__lua_open_redis,
  wr__lua_open_kafka, wr__lua_open_log, wr__lua_open_http, NULL
};

int luaopen_weir_core(lua_State* L) {
  const opener_t* open;
  lua_newtable(L);
  for (open = openers; *open != NULL; open++) (*open)(L);
  return 1;
}
