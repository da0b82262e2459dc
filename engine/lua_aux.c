/*
** Helpers every Lua binding of the engine uses (see lua_aux.h): userdata
** classes, failures as nil, message, name, and Lua callbacks from the
** libuv loop.
*/
#include "lua_aux.h"

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

/* -- Callbacks from the loop ---------------------------------------------- */

static lua_State* running_L = NULL;  /* set while wr__lua_run runs */
static int pending_error_ref = LUA_NOREF;  /* first error of a callback */

uv_loop_t* wr__lua_loop(void) { return uv_default_loop(); }

lua_State* wr__lua_state(void) { return running_L; }

void wr__lua_callback(int fn_ref, int nargs) {
  lua_State* L = running_L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
  lua_insert(L, -nargs - 1);
  if (lua_pcall(L, nargs, 0, 0) != 0) {
    if (pending_error_ref == LUA_NOREF)
      pending_error_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else
      lua_pop(L, 1);
    uv_stop(wr__lua_loop());
  }
}

int wr__lua_run(lua_State* L, uv_run_mode mode, int* alive) {
  lua_State* outer = running_L;
  int err_ref, r;
  running_L = L;
  r = uv_run(wr__lua_loop(), mode);
  running_L = outer;
  if (alive != NULL) *alive = r;
  err_ref = pending_error_ref;
  pending_error_ref = LUA_NOREF;
  return err_ref;
}
