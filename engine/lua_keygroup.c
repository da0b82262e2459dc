/*
** Lua binding of key groups (keygroup.h). Key-group numbers and subtask
** indexes are 0-based, as in the snapshot files.
*/
#include "lua_aux.h"
#include "keygroup.h"

static uint32_t check_max_parallelism(lua_State* L, int idx) {
  lua_Number maxp = luaL_checknumber(L, idx);
  if (maxp < 1 || maxp > 32768 || maxp != (lua_Number) (uint32_t) maxp)
    luaL_argerror(L, idx, "max_parallelism must be an integer in 1..32768");
  return (uint32_t) maxp;
}

/* core.key_group(canonical_key_bytes, max_parallelism) -> key group */
static int l_key_group(lua_State* L) {
  size_t len;
  const char* key = luaL_checklstring(L, 1, &len);
  uint32_t maxp = check_max_parallelism(L, 2);
  lua_pushinteger(L, (lua_Integer) wr_keygroup_of(key, len, maxp));
  return 1;
}

/* core.key_group_range(max_parallelism, parallelism, index) -> first, last
** (inclusive); raises on arguments out of range. */
static int l_key_group_range(lua_State* L) {
  uint32_t start, end;
  uint32_t maxp = check_max_parallelism(L, 1);
  if (wr_keygroup_range(maxp, (uint32_t) luaL_checkinteger(L, 2),
                        (uint32_t) luaL_checkinteger(L, 3), &start, &end) < 0)
    return luaL_error(L, "key_group_range: need 1 <= parallelism <= "
                         "max_parallelism and 0 <= index < parallelism");
  lua_pushinteger(L, (lua_Integer) start);
  lua_pushinteger(L, (lua_Integer) end);
  return 2;
}

/* core.key_group_subtask(max_parallelism, parallelism, key_group) -> index */
static int l_key_group_subtask(lua_State* L) {
  uint32_t maxp = check_max_parallelism(L, 1);
  lua_pushinteger(L, (lua_Integer) wr_keygroup_subtask(
      maxp, (uint32_t) luaL_checkinteger(L, 2),
      (uint32_t) luaL_checkinteger(L, 3)));
  return 1;
}

/* core.hash(bytes) -> murmur3_32 of the bytes (0 .. 2^32-1) */
static int l_hash(lua_State* L) {
  size_t len;
  const char* key = luaL_checklstring(L, 1, &len);
  lua_pushnumber(L, (lua_Number) wr_keygroup_hash(key, len));
  return 1;
}

/* core.key_group_string_fn() -> light userdata: the address of
** uint32_t wr_keygroup_of_string(const char*, size_t, uint32_t), to cast
** with the FFI (see keygroup.h). */
static int l_key_group_string_fn(lua_State* L) {
  lua_pushlightuserdata(L, (void*) (uintptr_t) wr_keygroup_of_string);
  return 1;
}

static const luaL_Reg keygroup_functions[] = {
  { "key_group", l_key_group }, { "key_group_range", l_key_group_range },
  { "key_group_subtask", l_key_group_subtask }, { "hash", l_hash },
  { "key_group_string_fn", l_key_group_string_fn }, { NULL, NULL }
};

void wr__lua_open_keygroup(lua_State* L) {
  luaL_register(L, NULL, keygroup_functions);
}
