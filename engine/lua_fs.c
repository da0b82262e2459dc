/*
** Lua binding of the few file-system calls the Lua layer needs beyond
** io.*: directories, renames, unlinks and fsync, through libuv. Each
** returns true (or a value) on success and nil, message, code on failure.
*/
#include <fcntl.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <sys/stat.h>

#include <lualib.h>

#include "lua_aux.h"
#include "fs.h"

static int fs_status(lua_State* L, uv_fs_t* req) {
  int r = (int) req->result;
  uv_fs_req_cleanup(req);
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.mkdir(path [, mode]) -> true | nil, message, code ("EEXIST" if it
** exists). mode (default 0755) is masked by the umask, as mkdir(2) does;
** a directory that must be private is made 0700, which no umask widens. */
static int l_mkdir(lua_State* L) {
  uv_fs_t req;
  uv_fs_mkdir(NULL, &req, luaL_checkstring(L, 1),
              (int) luaL_optinteger(L, 2, 0755), NULL);
  return fs_status(L, &req);
}

/* core.chmod(path, mode) -> true | nil, message, code: sets the
** permission bits whatever the umask. */
static int l_chmod(lua_State* L) {
  uv_fs_t req;
  uv_fs_chmod(NULL, &req, luaL_checkstring(L, 1),
              (int) luaL_checkinteger(L, 2), NULL);
  return fs_status(L, &req);
}

/* core.rmdir(path) -> true | nil, message, code */
static int l_rmdir(lua_State* L) {
  uv_fs_t req;
  uv_fs_rmdir(NULL, &req, luaL_checkstring(L, 1), NULL);
  return fs_status(L, &req);
}

/* core.unlink(path) -> true | nil, message, code */
static int l_unlink(lua_State* L) {
  uv_fs_t req;
  uv_fs_unlink(NULL, &req, luaL_checkstring(L, 1), NULL);
  return fs_status(L, &req);
}

/* core.rename(from, to) -> true | nil, message, code */
static int l_rename(lua_State* L) {
  uv_fs_t req;
  uv_fs_rename(NULL, &req, luaL_checkstring(L, 1), luaL_checkstring(L, 2),
               NULL);
  return fs_status(L, &req);
}

/* core.scandir(path) -> { name, ... } (unsorted) | nil, message, code */
static int l_scandir(lua_State* L) {
  uv_fs_t req;
  uv_dirent_t ent;
  int i = 0, r;
  r = uv_fs_scandir(NULL, &req, luaL_checkstring(L, 1), 0, NULL);
  if (r < 0) {
    uv_fs_req_cleanup(&req);
    return wr__lua_push_error(L, r);
  }
  lua_newtable(L);
  while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
    lua_pushstring(L, ent.name);
    lua_rawseti(L, -2, ++i);
  }
  uv_fs_req_cleanup(&req);
  return 1;
}

/* core.stat(path) -> { size = bytes, type = "file"|"directory"|"other",
** mtime_ms = ms, mode = permission bits (e.g. 0700), uid = owner, dev,
** ino (the device and inode: which file it is) } | nil, message, code */
static int push_stat(lua_State* L, int follow) {
  uv_fs_t req;
  int r = follow ? uv_fs_stat(NULL, &req, luaL_checkstring(L, 1), NULL)
                 : uv_fs_lstat(NULL, &req, luaL_checkstring(L, 1), NULL);
  if (r < 0) {
    uv_fs_req_cleanup(&req);
    return wr__lua_push_error(L, r);
  }
  lua_createtable(L, 0, 7);
  lua_pushnumber(L, (double) req.statbuf.st_dev);
  lua_setfield(L, -2, "dev");
  lua_pushnumber(L, (double) req.statbuf.st_ino);
  lua_setfield(L, -2, "ino");
  lua_pushnumber(L, (double) req.statbuf.st_size);
  lua_setfield(L, -2, "size");
  lua_pushstring(L, (req.statbuf.st_mode & S_IFMT) == S_IFDIR ? "directory"
                    : (req.statbuf.st_mode & S_IFMT) == S_IFREG ? "file"
                    : "other");
  lua_setfield(L, -2, "type");
  lua_pushnumber(L, (double) req.statbuf.st_mtim.tv_sec * 1000 +
                        (double) (req.statbuf.st_mtim.tv_nsec / 1000000));
  lua_setfield(L, -2, "mtime_ms");
  lua_pushinteger(L, (lua_Integer) (req.statbuf.st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer) req.statbuf.st_uid);
  lua_setfield(L, -2, "uid");
  uv_fs_req_cleanup(&req);
  return 1;
}

static int l_stat(lua_State* L) { return push_stat(L, 1); }

/* core.lstat(path) -> as core.stat, of a symbolic link itself (type
** "other") rather than what it points to. */
static int l_lstat(lua_State* L) { return push_stat(L, 0); }

/* core.fsync(path) -> true | nil, message, code: makes a file's content
** durable. */
static int l_fsync(lua_State* L) {
  int r = wr_fs_fsync_path(luaL_checkstring(L, 1));
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.fsync_parent(path) -> true | nil, message, code: makes the
** directory entry of path (a create, rename or unlink in it) durable. */
static int l_fsync_parent(lua_State* L) {
  int r = wr_fs_fsync_parent(luaL_checkstring(L, 1));
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.unlocked_file(file) -> file: tells the C library that only the
** calling thread uses the Lua file handle `file`, so that its reads and
** writes skip stdio's lock (__fsetlocking FSETLOCKING_BYCALLER). Once a
** process has a second thread (a worker's heartbeat), glibc locks the
** FILE on every call otherwise: three atomic operations per line
** written.
** Raises unless file is an io library handle (open or closed). */
static int l_unlocked_file(lua_State* L) {
  FILE** fp = (FILE**) luaL_checkudata(L, 1, LUA_FILEHANDLE);
  if (*fp != NULL) __fsetlocking(*fp, FSETLOCKING_BYCALLER);
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg fs_functions[] = {
  { "mkdir", l_mkdir }, { "chmod", l_chmod }, { "rmdir", l_rmdir },
  { "unlink", l_unlink }, { "rename", l_rename }, { "scandir", l_scandir },
  { "stat", l_stat }, { "lstat", l_lstat }, { "fsync", l_fsync },
  { "fsync_parent", l_fsync_parent },
  { "unlocked_file", l_unlocked_file }, { NULL, NULL }
};

void wr__lua_open_fs(lua_State* L) {
  luaL_register(L, NULL, fs_functions);
}
