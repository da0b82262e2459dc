/*
** Lua binding of the string.buffer format check (sbuf_check.h):
** core.sbuf_check.
*/
#include "error.h"
#include "lua_core.h"
#include "sbuf_check.h"

/* core.sbuf_check(bytes [, max_depth]) or core.sbuf_check(pointer, len
** [, max_depth]) -> true when the bytes (a string, or a light userdata and
** its length in bytes) hold one string.buffer value that decodes within
** bounded memory (sbuf_check.h) | nil, message, code. max_depth: tables
** nested at most that deep (default WR_SBUF_MAX_DEPTH). */
static int l_sbuf_check(lua_State* L) {
  const void* p;
  size_t len;
  int depth_arg = 2;
  int r;
  if (lua_islightuserdata(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 0) luaL_argerror(L, 2, "length must be >= 0");
    p = lua_touserdata(L, 1);
    len = (size_t) n;
    depth_arg = 3;
  } else {
    p = luaL_checklstring(L, 1, &len);
  }
  r = wr_sbuf_check(p, len,
                    (int) luaL_optinteger(L, depth_arg, WR_SBUF_MAX_DEPTH));
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

void wr__lua_open_sbuf_check(lua_State* L) {
  lua_pushcfunction(L, l_sbuf_check);
  lua_setfield(L, -2, "sbuf_check");
}
