/*
** Lua binding of an append-only file whose appends are made durable off
** the loop: core.log_open(path) -> log; log:append(bytes, fn) writes
** bytes at the file's end and fdatasyncs it on libuv's thread pool, then
** calls fn on the loop. A write-ahead log's group commit (many records,
** one fdatasync) is the caller's: it gathers what arrived while the last
** append was in flight and appends it in one call.
*/
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lua_aux.h"

#define LOG_MT "weir.log"

typedef struct {
  uv_fs_t req;
  uv_file fd;
  int64_t size;       /* bytes in the file, appends that completed */
  int busy;           /* an append is in flight */
  int closed;         /* log:close() was called (the fd closes once idle) */
  int fn_ref;         /* the append's callback */
  int bytes_ref;      /* the append's string, alive until it is written */
  uv_buf_t buf;       /* what is left to write of it */
} llog_t;

static llog_t* check_log(lua_State* L) {
  llog_t** box = luaL_checkudata(L, 1, LOG_MT);
  if (*box == NULL || (*box)->closed) luaL_error(L, "the log is closed");
  return *box;
}

static void close_fd(llog_t* g) {
  uv_fs_t req;
  uv_fs_close(NULL, &req, g->fd, NULL);
  uv_fs_req_cleanup(&req);
  free(g);
}

/* The append ended with status (0 or a negative error): fn(nil) or
** fn(message, code). */
static void finish(llog_t* g, int status) {
  lua_State* L = wr__lua_state();
  int fn_ref = g->fn_ref;
  luaL_unref(L, LUA_REGISTRYINDEX, g->bytes_ref);
  g->fn_ref = g->bytes_ref = LUA_NOREF;
  g->busy = 0;
  if (g->closed) {
    luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
    close_fd(g);
    return;
  }
  if (status < 0) {
    lua_pushstring(L, wr_strerror(status));
    lua_pushstring(L, wr_err_name(status));
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  wr__lua_callback(fn_ref, 2);
  luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
}

static void sync_cb(uv_fs_t* req) {
  llog_t* g = req->data;
  int r = (int) req->result;
  uv_fs_req_cleanup(req);
  finish(g, r < 0 ? r : 0);
}

static void write_cb(uv_fs_t* req) {
  llog_t* g = req->data;
  ssize_t n = req->result;
  int r;
  uv_fs_req_cleanup(req);
  if (n < 0) return finish(g, (int) n);
  g->size += n;
  g->buf.base += n;
  g->buf.len -= (size_t) n;
  if (g->buf.len > 0)  /* a short write: the rest */
    r = uv_fs_write(wr__lua_loop(), &g->req, g->fd, &g->buf, 1, -1,
                    write_cb);
  else
    r = uv_fs_fdatasync(wr__lua_loop(), &g->req, g->fd, sync_cb);
  if (r < 0) finish(g, r);
}

/* core.log_open(path) -> log, size_bytes | nil, message, code: opens (or
** creates, mode 0644) path for appending; size_bytes is what it holds. */
static int l_log_open(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  uv_fs_t req;
  llog_t** box;
  llog_t* g;
  int fd, r;
  fd = uv_fs_open(NULL, &req, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                  0644, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return wr__lua_push_error(L, fd);
  r = uv_fs_fstat(NULL, &req, fd, NULL);
  if (r < 0) {
    uv_fs_req_cleanup(&req);
    uv_fs_close(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
    return wr__lua_push_error(L, r);
  }
  g = calloc(1, sizeof(*g));
  if (g == NULL) {
    uv_fs_req_cleanup(&req);
    uv_fs_close(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
    return luaL_error(L, "out of memory");
  }
  g->size = (int64_t) req.statbuf.st_size;
  uv_fs_req_cleanup(&req);
  g->fd = fd;
  g->fn_ref = g->bytes_ref = LUA_NOREF;
  g->req.data = g;
  box = lua_newuserdata(L, sizeof(*box));
  *box = g;
  luaL_getmetatable(L, LOG_MT);
  lua_setmetatable(L, -2);
  lua_pushnumber(L, (lua_Number) g->size);
  return 2;
}

/* log:append(bytes, fn) -> true | nil, message, code: writes bytes at the
** end and fdatasyncs the file on the thread pool, then fn(nil) on the
** loop once they are durable, or fn(message, code) if the write or the
** sync failed (what the file holds past its last good size is then
** unknown). One append at a time: raises if one is in flight. */
static int l_log_append(lua_State* L) {
  llog_t* g = check_log(L);
  size_t len;
  const char* bytes = luaL_checklstring(L, 2, &len);
  int r;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (g->busy) return luaL_error(L, "an append to this log is in flight");
  lua_pushvalue(L, 2);
  g->bytes_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 3);
  g->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  g->buf = uv_buf_init((char*) bytes, (unsigned int) len);
  g->busy = 1;
  g->req.data = g;
  if (len == 0)
    r = uv_fs_fdatasync(wr__lua_loop(), &g->req, g->fd, sync_cb);
  else
    r = uv_fs_write(wr__lua_loop(), &g->req, g->fd, &g->buf, 1, -1,
                    write_cb);
  if (r < 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, g->bytes_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, g->fn_ref);
    g->fn_ref = g->bytes_ref = LUA_NOREF;
    g->busy = 0;
    return wr__lua_push_error(L, r);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* log:size() -> bytes in the file once the appends that completed. */
static int l_log_size(lua_State* L) {
  lua_pushnumber(L, (lua_Number) check_log(L)->size);
  return 1;
}

/* log:busy() -> whether an append is in flight. */
static int l_log_busy(lua_State* L) {
  lua_pushboolean(L, check_log(L)->busy);
  return 1;
}

/* log:close(): closes the file, once the append in flight (if any) ended;
** its callback is then not called. */
static int l_log_close(lua_State* L) {
  llog_t** box = luaL_checkudata(L, 1, LOG_MT);
  llog_t* g = *box;
  if (g == NULL) return 0;
  *box = NULL;
  g->closed = 1;
  if (!g->busy) close_fd(g);
  return 0;
}

static const luaL_Reg log_methods[] = {
  { "append", l_log_append }, { "size", l_log_size },
  { "busy", l_log_busy }, { "close", l_log_close }, { NULL, NULL }
};

static const luaL_Reg log_functions[] = {
  { "log_open", l_log_open }, { NULL, NULL }
};

void wr__lua_open_log(lua_State* L) {
  wr__lua_new_gc_class(L, LOG_MT, log_methods, l_log_close);
  luaL_register(L, NULL, log_functions);
}
