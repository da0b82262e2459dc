/*
** Lua binding of the barrier handler (barrier.h). Channels are numbered
** from 1 in Lua, as Lua arrays are.
*/
#include "lua_aux.h"
#include "barrier.h"
#include "error.h"

#define BARRIER_MT "weir.barrier_handler"

static const char* const results[] = { "wait", "aligned", "aborted" };

static wr_barrier_handler_t* check_handler(lua_State* L) {
  return luaL_checkudata(L, 1, BARRIER_MT);
}

static int push_result(lua_State* L, int r) {
  if (r < 0) return luaL_error(L, "barrier handler: %s", wr_strerror(r));
  lua_pushstring(L, results[r]);
  return 1;
}

/* core.barrier_handler(num_inputs, mode) -> handler; mode is
** "exactly_once" (default, aligned) or "at_least_once". */
static int l_barrier_handler(lua_State* L) {
  static const char* const modes[] = { "exactly_once", "at_least_once", NULL };
  int n = (int) luaL_checkinteger(L, 1);
  int mode = luaL_checkoption(L, 2, "exactly_once", modes);
  wr_barrier_handler_t* h = lua_newuserdata(L, sizeof(*h));
  if (wr_barrier_handler_init(h, n, (wr_checkpoint_mode_t) mode) < 0)
    return luaL_error(L, "barrier_handler: need at least one input channel");
  luaL_getmetatable(L, BARRIER_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* handler:on_barrier(channel, checkpoint_id) -> "wait"|"aligned"|"aborted";
** raises on a duplicate or obsolete barrier. */
static int l_on_barrier(lua_State* L) {
  wr_barrier_handler_t* h = check_handler(L);
  int ch = (int) luaL_checkinteger(L, 2) - 1;
  return push_result(L, wr_barrier_handler_on_barrier(
                            h, ch, (int64_t) luaL_checknumber(L, 3)));
}

/* handler:on_end_of_input(channel) -> "wait"|"aligned" */
static int l_on_end_of_input(lua_State* L) {
  wr_barrier_handler_t* h = check_handler(L);
  int ch = (int) luaL_checkinteger(L, 2) - 1;
  return push_result(L, wr_barrier_handler_on_end_of_input(h, ch));
}

/* handler:is_blocked(channel) -> boolean */
static int l_is_blocked(lua_State* L) {
  wr_barrier_handler_t* h = check_handler(L);
  int ch = (int) luaL_checkinteger(L, 2) - 1;
  lua_pushboolean(L, wr_barrier_handler_is_blocked(h, ch));
  return 1;
}

/* handler:all_ended() -> boolean */
static int l_all_ended(lua_State* L) {
  lua_pushboolean(L, wr_barrier_handler_all_ended(check_handler(L)));
  return 1;
}

/* handler:pending() -> checkpoint id being aligned, or nil */
static int l_pending(lua_State* L) {
  wr_barrier_handler_t* h = check_handler(L);
  if (h->pending_id < 0) return 0;
  lua_pushnumber(L, (lua_Number) h->pending_id);
  return 1;
}

/* handler:last_alignment_ms() -> duration of the last alignment in ms */
static int l_last_alignment_ms(lua_State* L) {
  lua_pushnumber(L, (double) check_handler(L)->last_alignment_ns / 1e6);
  return 1;
}

static int l_gc(lua_State* L) {
  wr_barrier_handler_close(check_handler(L));
  return 0;
}

static const luaL_Reg methods[] = {
  { "on_barrier", l_on_barrier }, { "on_end_of_input", l_on_end_of_input },
  { "is_blocked", l_is_blocked }, { "all_ended", l_all_ended },
  { "pending", l_pending }, { "last_alignment_ms", l_last_alignment_ms },
  { NULL, NULL }
};

void wr__lua_open_barrier(lua_State* L) {
  wr__lua_new_gc_class(L, BARRIER_MT, methods, l_gc);
  lua_pushcfunction(L, l_barrier_handler);
  lua_setfield(L, -2, "barrier_handler");
}
