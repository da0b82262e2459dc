/*
** Lua binding of the serialization check (serialized.h): what weir runs on
** bytes from a file before string.buffer decodes them.
*/
#include "lua_aux.h"
#include "serialized.h"

/* core.serialized_check(bytes [, offset]) -> used_bytes
**   | nil, message. Checks the one serialized value that starts at byte
** offset (0-based, default 0) of bytes; used_bytes is its length. The
** message says what is wrong and at which byte (0-based). Never raises on
** any bytes. */
static int l_serialized_check(lua_State* L) {
  size_t len, used;
  const char* data = luaL_checklstring(L, 1, &len);
  lua_Number offset = luaL_optnumber(L, 2, 0);
  wr_serialized_error_t err;
  if (!(offset >= 0 && offset <= (lua_Number) len))
    return luaL_argerror(L, 2, "offset out of range");
  if (wr_serialized_check(data + (size_t) offset, len - (size_t) offset,
                          &used, &err) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s at byte %d", err.message,
                    (int) ((size_t) offset + err.offset));
    return 2;
  }
  lua_pushnumber(L, (lua_Number) used);
  return 1;
}

static const luaL_Reg serialized_functions[] = {
  { "serialized_check", l_serialized_check },
  { NULL, NULL }
};

void wr__lua_open_serialized(lua_State* L) {
  luaL_register(L, NULL, serialized_functions);
}
