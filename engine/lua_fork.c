/*
** Lua binding of work in a forked child (fork.h): checkpoints serialize
** large keyed state in a copy-on-write image of the process while the
** process goes on.
*/
#include <stdlib.h>
#include <string.h>

#include "fork.h"
#include "lua_aux.h"

typedef struct {
  wr_fork_t req;
  int cb_ref;
} lfork_t;

static const char no_string[] = "the forked function returned no string";

/* In the child: calls the function on top of the stack of L. The
** collector stays stopped: marking would touch, and so copy, every page
** of the heap the child shares with its parent. */
static int child_call(void* arg, const char** out, size_t* len) {
  lua_State* L = arg;
  lua_gc(L, LUA_GCSTOP, 0);
  if (lua_pcall(L, 0, 1, 0) != 0) {
    *out = lua_tolstring(L, -1, len);
    if (*out == NULL) {
      *out = "the forked function raised an error that is not a string";
      *len = strlen(*out);
    }
    return 1;
  }
  if (lua_type(L, -1) != LUA_TSTRING) {
    *out = no_string;
    *len = sizeof(no_string) - 1;
    return 1;
  }
  *out = lua_tolstring(L, -1, len);
  return 0;
}

static void fork_done(wr_fork_t* req) {
  lfork_t* f = (lfork_t*) req;
  lua_State* L = wr__lua_state();
  int ref = f->cb_ref;
  if (req->complete && req->child_status == 0) {
    lua_pushnil(L);
    lua_pushlstring(L, req->result, req->result_len);
  } else {
    if (req->complete) {
      lua_pushlstring(L, req->result, req->result_len);
    } else if (req->term_signal != 0) {
      lua_pushfstring(L, "the forked process was killed by signal %d",
                      req->term_signal);
    } else {
      lua_pushfstring(L, "the forked process exited with status %d before "
                      "handing back its result", req->exit_status);
    }
    lua_pushnil(L);
  }
  free(req->result);
  free(f);
  wr__lua_callback(ref, 2);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

/* core.fork_call(fn, cb) -> fork_ms | nil, message, code
** Forks this process. The child, a copy-on-write image of this process at
** the call, runs fn() (no event loop, no other thread, the garbage
** collector stopped: fn must neither use the loop nor exit the process
** itself) and exits; fn returns a string. Later, on the loop:
** cb(nil, that string), or cb(message) when fn raised (its message) or
** the child died first. fork_ms is the time this
** process spent in fork() (ms). The child dies with this process. */
static int l_fork_call(lua_State* L) {
  lfork_t* f;
  int r;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  f = malloc(sizeof(*f));
  if (f == NULL) return luaL_error(L, "out of memory");
  lua_pushvalue(L, 2);
  f->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 1);  /* what the child calls */
  r = wr_fork_start(wr__lua_loop(), &f->req, child_call, L, fork_done);
  lua_pop(L, 1);
  if (r < 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, f->cb_ref);
    free(f);
    return wr__lua_push_error(L, r);
  }
  lua_pushnumber(L, f->req.fork_ms);
  return 1;
}

static const luaL_Reg fork_functions[] = {
  { "fork_call", l_fork_call },
  { NULL, NULL }
};

void wr__lua_open_fork(lua_State* L) {
  luaL_register(L, NULL, fork_functions);
}
