/*
** Lua binding of snapshot files (snapshot.h): synchronous write and read,
** and the asynchronous write on the libuv thread pool used by checkpoints.
*/
#include <stdlib.h>

#include "lua_aux.h"
#include "error.h"
#include "snapshot.h"

/* Reads content (a string, or a list of strings) at index idx into
** parts: *parts is one or a malloc'd array the caller frees when it is not
** one. The strings stay owned by Lua. Raises on anything else. */
static size_t content_parts(lua_State* L, int idx, wr_snapshot_part_t* one,
                            wr_snapshot_part_t** parts) {
  size_t n, i;
  *parts = one;
  if (!lua_istable(L, idx)) {
    one->data = luaL_checklstring(L, idx, &one->len);
    return 1;
  }
  n = lua_objlen(L, idx);
  *parts = malloc((n ? n : 1) * sizeof(**parts));
  if (*parts == NULL) luaL_error(L, "out of memory");
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (int) i + 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      free(*parts);
      *parts = one;
      luaL_error(L, "snapshot content: part %d is not a string", (int) i + 1);
    }
    (*parts)[i].data = lua_tolstring(L, -1, &(*parts)[i].len);
    lua_pop(L, 1);  /* the string stays alive in the table */
  }
  return n;
}

/* Pushes a snapshot file's size in bytes and its checksum, as numbers. */
static int push_size_checksum(lua_State* L, uint64_t size_bytes,
                              uint32_t checksum) {
  lua_pushnumber(L, (lua_Number) size_bytes);
  lua_pushnumber(L, (lua_Number) checksum);
  return 2;
}

/* core.snapshot_write(path, content) -> size_bytes, checksum
**   | nil, message, code. content: a string, or a list of strings written
** one after the other (never joined). Durable: temp file, fsync, rename,
** fsync dir. */
static int l_snapshot_write(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  wr_snapshot_part_t one, *parts;
  size_t n = content_parts(L, 2, &one, &parts);
  uint64_t size_bytes;
  uint32_t checksum;
  int r = wr_snapshot_write_parts(path, parts, n, &size_bytes, &checksum);
  if (parts != &one) free(parts);
  if (r < 0) return wr__lua_push_error(L, r);
  return push_size_checksum(L, size_bytes, checksum);
}

/* core.snapshot_read(path) -> bytes, size_bytes, checksum
**   | nil, message, code. Every checksum is verified first. */
static int l_snapshot_read(lua_State* L) {
  char* data;
  size_t len;
  uint64_t size_bytes;
  uint32_t checksum;
  int r = wr_snapshot_read(luaL_checkstring(L, 1), &data, &len, &size_bytes,
                           &checksum);
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushlstring(L, data, len);
  free(data);
  return 1 + push_size_checksum(L, size_bytes, checksum);
}

typedef struct {
  wr_snapshot_write_t req;
  int fn_ref;
  int bytes_ref;  /* the Lua string or table of strings written, kept
                  ** alive (and unchanged) until the end */
} lwrite_t;

static void write_cb(wr_snapshot_write_t* req, int status) {
  lwrite_t* w = (lwrite_t*) req;
  lua_State* L = wr__lua_state();
  int fn_ref = w->fn_ref;
  luaL_unref(L, LUA_REGISTRYINDEX, w->bytes_ref);
  if (status < 0) {
    lua_pushstring(L, wr_strerror(status));
    lua_pushnil(L);
    lua_pushnil(L);
  } else {
    lua_pushnil(L);
    lua_pushnumber(L, (lua_Number) req->size_bytes);
    lua_pushnumber(L, (lua_Number) req->checksum);
  }
  lua_pushnumber(L, (double) req->duration_ns / 1e6);
  free(w);
  wr__lua_callback(fn_ref, 4);
  luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
}

/* core.snapshot_write_async(path, content, fn) -> true | nil, message,
** code. content: a string, or a list of strings written one after the
** other (never joined). Compresses and writes on the thread pool; later,
** on the loop, calls fn(err_message_or_nil, size_bytes, checksum,
** duration_ms). The thread reads the Lua strings themselves (strings
** neither change nor move), which stay referenced until then: no copy;
** the list must not change meanwhile. */
static int l_snapshot_write_async(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  wr_snapshot_part_t one, *parts;
  size_t n;
  lwrite_t* w;
  int r;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  n = content_parts(L, 2, &one, &parts);
  w = malloc(sizeof(*w));
  if (w == NULL) {
    if (parts != &one) free(parts);
    return luaL_error(L, "out of memory");
  }
  lua_pushvalue(L, 3);
  w->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 2);
  w->bytes_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r = wr_snapshot_write_start_parts(wr__lua_loop(), &w->req, path, parts, n,
                                    write_cb);
  if (parts != &one) free(parts);
  if (r < 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, w->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, w->bytes_ref);
    free(w);
    return wr__lua_push_error(L, r);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.snapshot_verify(path) -> size_bytes, checksum | nil, message, code
** Verifies the snapshot file at path as core.snapshot_read does, a piece
** at a time, without handing its content to Lua. */
static int l_snapshot_verify(lua_State* L) {
  uint64_t size_bytes;
  uint32_t checksum;
  int r = wr_snapshot_verify(luaL_checkstring(L, 1), &size_bytes, &checksum);
  if (r < 0) return wr__lua_push_error(L, r);
  return push_size_checksum(L, size_bytes, checksum);
}

/* core.snapshot_verify_all(paths, threads) -> results. Verifies every
** snapshot file of the list paths as core.snapshot_verify does, on up to
** threads threads at once (default 1), returning when all are done.
** results[i] is { size_bytes, checksum } or { nil, message, code } for
** paths[i]. Raises on a path that is not a string, or out of memory. */
static int l_snapshot_verify_all(lua_State* L) {
  size_t n, i;
  unsigned threads;
  const char** paths;
  uint64_t* sizes;
  uint32_t* checksums;
  int* results;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = lua_objlen(L, 1);
  threads = (unsigned) luaL_optinteger(L, 2, 1);
  paths = malloc((n ? n : 1) * sizeof(*paths));
  sizes = malloc((n ? n : 1) * sizeof(*sizes));
  checksums = malloc((n ? n : 1) * sizeof(*checksums));
  results = malloc((n ? n : 1) * sizeof(*results));
  if (!paths || !sizes || !checksums || !results) goto fail;
  /* The strings stay referenced by the table, which the call holds. */
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 1, (int) i + 1);
    paths[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (paths[i] == NULL) {
      free(paths); free(sizes); free(checksums); free(results);
      return luaL_error(L, "paths[%d] is not a string", (int) i + 1);
    }
  }
  if (wr_snapshot_verify_many(paths, n, threads ? threads : 1, sizes,
                              checksums, results) < 0)
    goto fail;
  lua_createtable(L, (int) n, 0);
  for (i = 0; i < n; i++) {
    if (results[i] < 0) {
      lua_createtable(L, 3, 0);
      lua_pushstring(L, wr_strerror(results[i]));
      lua_rawseti(L, -2, 2);
      lua_pushstring(L, wr_err_name(results[i]));
      lua_rawseti(L, -2, 3);
    } else {
      lua_createtable(L, 2, 0);
      lua_pushnumber(L, (lua_Number) sizes[i]);
      lua_rawseti(L, -2, 1);
      lua_pushnumber(L, (lua_Number) checksums[i]);
      lua_rawseti(L, -2, 2);
    }
    lua_rawseti(L, -2, (int) i + 1);
  }
  free(paths); free(sizes); free(checksums); free(results);
  return 1;
fail:
  free(paths); free(sizes); free(checksums); free(results);
  return luaL_error(L, "out of memory");
}

/* core.snapshot_extract(path, dst_path) -> size_bytes, checksum | nil,
** message, code. Reads and verifies the snapshot file at path and writes
** its content to dst_path, a plain file (mode 0600, not synced): a
** working copy. size_bytes and checksum are the snapshot file's, to be
** compared with what a manifest lists. */
static int l_snapshot_extract(lua_State* L) {
  uint64_t size_bytes;
  uint32_t checksum;
  int r = wr_snapshot_extract(luaL_checkstring(L, 1), luaL_checkstring(L, 2),
                              &size_bytes, &checksum);
  if (r < 0) return wr__lua_push_error(L, r);
  return push_size_checksum(L, size_bytes, checksum);
}

/* core.snapshot_copy_async(src_path, path, fn) -> true | nil, message,
** code. Writes the bytes of the file at src_path as the snapshot file
** path, both read and written on the thread pool (the bytes never reach
** Lua); later, on the loop, calls fn(err_message_or_nil, size_bytes,
** checksum, duration_ms) as core.snapshot_write_async does. */
static int l_snapshot_copy_async(lua_State* L) {
  const char* src = luaL_checkstring(L, 1);
  const char* path = luaL_checkstring(L, 2);
  lwrite_t* w;
  int r;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  w = malloc(sizeof(*w));
  if (w == NULL) return luaL_error(L, "out of memory");
  lua_pushvalue(L, 3);
  w->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  w->bytes_ref = LUA_NOREF;
  r = wr_snapshot_write_file_start(wr__lua_loop(), &w->req, path, src,
                                   write_cb);
  if (r < 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, w->fn_ref);
    free(w);
    return wr__lua_push_error(L, r);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg snapshot_functions[] = {
  { "snapshot_verify", l_snapshot_verify },
  { "snapshot_verify_all", l_snapshot_verify_all },
  { "snapshot_extract", l_snapshot_extract },
  { "snapshot_copy_async", l_snapshot_copy_async },
  { "snapshot_write", l_snapshot_write },
  { "snapshot_read", l_snapshot_read },
  { "snapshot_write_async", l_snapshot_write_async },
  { NULL, NULL }
};

void wr__lua_open_snapshot(lua_State* L) {
  luaL_register(L, NULL, snapshot_functions);
}
