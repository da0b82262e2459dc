/*
** Lua binding of framed connections (frame.h) over Unix domain sockets and
** TCP: core.listen, core.connect, conn:on_frame, conn:send, conn:handle,
** conn:close, and core.send_raw_fn for sending from memory through the FFI;
** conn:on_data, conn:write, conn:pause, conn:resume and conn:peer for
** connections that carry plain bytes (a socket source's clients).
** Addresses are a socket path, or "tcp:HOST:PORT" (address.h).
** A connection lives until conn:close() (or the peer's end of stream
** followed by close); its memory is reclaimed in the close callback.
*/
#define _GNU_SOURCE  /* struct ucred (SO_PEERCRED) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "error.h"
#include "frame.h"
#include "lua_aux.h"

#define CONN_MT "weir.conn"
#define SERVER_MT "weir.server"

typedef struct {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
  } u;
  wr_frame_reader_t reader;
  int frame_ref;    /* Lua callback for frames, or LUA_NOREF */
  int frame_raw;    /* frames go to it as (pointer, length), not strings */
  int unframed;     /* on_data: reads go to frame_ref as they come */
  int other_ref;    /* on_connection (servers) or on_connect (connects) */
  int closing;
  int refused;      /* servers: a peer of another uid was refused (logged) */
} lconn_t;

static lconn_t** check_conn(lua_State* L, const char* mt) {
  lconn_t** box = luaL_checkudata(L, 1, mt);
  if (*box == NULL || (*box)->closing) luaL_error(L, "%s is closed", mt);
  return box;
}

static lconn_t* new_conn(lua_State* L, const char* mt, int tcp) {
  lconn_t** box = lua_newuserdata(L, sizeof(*box));
  lconn_t* c = calloc(1, sizeof(*c));
  if (c == NULL) luaL_error(L, "out of memory");
  *box = c;
  c->frame_ref = LUA_NOREF;
  c->other_ref = LUA_NOREF;
  if (tcp)
    uv_tcp_init(wr__lua_loop(), &c->u.tcp);
  else
    uv_pipe_init(wr__lua_loop(), &c->u.pipe, 0);
  c->u.handle.data = c;
  luaL_getmetatable(L, mt);
  lua_setmetatable(L, -2);
  return c;
}

static void close_cb(uv_handle_t* handle) {
  lconn_t* c = handle->data;
  wr_frame_reader_close(&c->reader);
  free(c);
}

static void close_conn(lua_State* L, lconn_t* c) {
  if (c->closing) return;
  c->closing = 1;
  c->reader.stopped = 1;
  luaL_unref(L, LUA_REGISTRYINDEX, c->frame_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->other_ref);
  c->frame_ref = c->other_ref = LUA_NOREF;
  uv_close(&c->u.handle, close_cb);
}

/* -- Reading frames -------------------------------------------------------- */

static void frame_cb(wr_frame_reader_t* r, const char* payload, size_t len,
                     int status) {
  lconn_t* c = r->data;
  lua_State* L = wr__lua_state();
  if (c->frame_ref == LUA_NOREF) return;
  if (payload != NULL && c->frame_raw) {
    lua_pushlightuserdata(L, (void*) payload);
    lua_pushinteger(L, (lua_Integer) len);
    wr__lua_callback(c->frame_ref, 2);
  } else if (payload != NULL) {
    lua_pushlstring(L, payload, len);
    wr__lua_callback(c->frame_ref, 1);
  } else {
    lua_pushnil(L);
    if (status == UV_E2BIG)
      lua_pushfstring(L, "a frame longer than %d bytes",
                      (int) r->max_bytes);
    else
      lua_pushstring(L, status == UV_EOF ? "end of stream"
                                         : wr_strerror(status));
    lua_pushstring(L, wr_err_name(status));
    wr__lua_callback(c->frame_ref, 3);
  }
}

static void alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
  static char slab[65536];
  (void) handle;
  (void) suggested;
  *buf = uv_buf_init(slab, sizeof(slab));
}

static void read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  lconn_t* c = stream->data;
  int r;
  if (nread == 0 || c->closing) return;
  if (nread < 0) {
    uv_read_stop(stream);
    frame_cb(&c->reader, NULL, 0, (int) nread);
    return;
  }
  if (c->unframed) {
    lua_pushlstring(wr__lua_state(), buf->base, (size_t) nread);
    wr__lua_callback(c->frame_ref, 1);
    return;
  }
  r = wr_frame_reader_feed(&c->reader, buf->base, (size_t) nread);
  if (r < 0 && !c->closing) {
    uv_read_stop(stream);
    frame_cb(&c->reader, NULL, 0, r);
  }
}

/* The frame size limit at argument idx: bytes, 0 < n <= WR_FRAME_MAX_BYTES,
** or WR_FRAME_MAX_BYTES when absent. */
static size_t check_max_bytes(lua_State* L, int idx) {
  lua_Number n = luaL_optnumber(L, idx, WR_FRAME_MAX_BYTES);
  if (!(n > 0 && n <= WR_FRAME_MAX_BYTES))
    luaL_argerror(L, idx, "frame size limit out of range");
  return (size_t) n;
}

/* conn:on_frame(fn [, "pointer" [, max_bytes]]) starts reading: fn(bytes)
** per frame, or with "pointer" fn(payload, length), payload a light
** userdata valid only during the call (no Lua string is made:
** string.buffer's set() reads it in place); fn(nil, message, code) once
** at end of stream (code "EOF") or on error, e.g. a frame longer than
** max_bytes (code "E2BIG"; default WR_FRAME_MAX_BYTES), after which nothing
** more is read: fn closes conn. */
static int l_on_frame(lua_State* L) {
  lconn_t* c = *check_conn(L, CONN_MT);
  size_t max_bytes;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!lua_isnoneornil(L, 3) && strcmp(luaL_checkstring(L, 3), "pointer"))
    return luaL_argerror(L, 3, "expected \"pointer\" or nothing");
  max_bytes = check_max_bytes(L, 4);
  c->frame_raw = !lua_isnoneornil(L, 3);
  luaL_unref(L, LUA_REGISTRYINDEX, c->frame_ref);
  lua_pushvalue(L, 2);
  c->frame_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  wr_frame_reader_init(&c->reader, frame_cb);
  c->reader.data = c;
  c->reader.max_bytes = max_bytes;
  uv_read_start(&c->u.stream, alloc_cb, read_cb);
  return 0;
}

/* conn:set_max_frame(max_bytes) changes the longest frame accepted from
** the next frame on (e.g. once the peer is authenticated); max_bytes:
** 0 < n <= WR_FRAME_MAX_BYTES. */
static int l_set_max_frame(lua_State* L) {
  lconn_t* c = *check_conn(L, CONN_MT);
  luaL_checknumber(L, 2);
  c->reader.max_bytes = check_max_bytes(L, 2);
  return 0;
}

/* conn:on_data(fn) starts reading plain bytes: fn(bytes) per read (up
** to 64 KiB, cut anywhere), then fn(nil, message, code) once at end of
** stream (code "EOF") or on error, after which nothing more is read: fn
** closes conn. */
static int l_on_data(lua_State* L) {
  lconn_t* c = *check_conn(L, CONN_MT);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, c->frame_ref);
  lua_pushvalue(L, 2);
  c->frame_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  wr_frame_reader_init(&c->reader, frame_cb);
  c->reader.data = c;
  c->unframed = 1;
  uv_read_start(&c->u.stream, alloc_cb, read_cb);
  return 0;
}

/* conn:pause() stops reading (the peer's writes back up: TCP
** backpressure) until conn:resume(). */
static int l_pause(lua_State* L) {
  uv_read_stop(&(*check_conn(L, CONN_MT))->u.stream);
  return 0;
}

static int l_resume(lua_State* L) {
  lconn_t* c = *check_conn(L, CONN_MT);
  if (c->frame_ref != LUA_NOREF)
    uv_read_start(&c->u.stream, alloc_cb, read_cb);
  return 0;
}

/* Pushes the address get (uv_tcp_getpeername or uv_tcp_getsockname)
** gives for c: "tcp:HOST:PORT", or "local" for a Unix domain socket |
** nil, message, code. */
static int push_address(lua_State* L, lconn_t* c,
                        int (*get)(const uv_tcp_t*, struct sockaddr*, int*)) {
  struct sockaddr_storage sa;
  int len = sizeof(sa), r;
  char address[WR_ADDRESS_TCP_MAX_BYTES];
  if (c->u.handle.type != UV_TCP) {
    lua_pushliteral(L, "local");
    return 1;
  }
  r = get(&c->u.tcp, (struct sockaddr*) &sa, &len);
  if (r == 0) r = wr_address_format((struct sockaddr*) &sa, address,
                                    sizeof(address));
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushstring(L, address);
  return 1;
}

/* conn:peer() -> "tcp:HOST:PORT" of a TCP connection's peer, or "local"
** for a Unix domain socket | nil, message, code. */
static int l_peer(lua_State* L) {
  return push_address(L, *check_conn(L, CONN_MT), uv_tcp_getpeername);
}

/* conn:local_address() -> "tcp:HOST:PORT" this end of a TCP connection
** is bound to (the address of the interface that reaches the peer), or
** "local" for a Unix domain socket | nil, message, code. */
static int l_local_address(lua_State* L) {
  return push_address(L, *check_conn(L, CONN_MT), uv_tcp_getsockname);
}

/* -- Writing frames -------------------------------------------------------- */

typedef struct {
  uv_write_t req;
  char bytes[];
} lwrite_t;

static void write_cb(uv_write_t* req, int status) {
  (void) status;  /* a failed write shows as end of stream to the reader */
  free(req);
}

/* Queues one frame of len bytes (copied). Returns 0 or a negative error. */
static int send_frame(lconn_t* c, const void* payload, size_t len) {
  lwrite_t* w;
  uv_buf_t buf;
  int r;
  if (len > WR_FRAME_MAX_BYTES) return UV_E2BIG;
  w = malloc(sizeof(*w) + 4 + len);
  if (w == NULL) return WR_ENOMEM;
  wr_frame_header((uint32_t) len, (unsigned char*) w->bytes);
  memcpy(w->bytes + 4, payload, len);
  buf = uv_buf_init(w->bytes, (unsigned int) (4 + len));
  r = uv_write(&w->req, &c->u.stream, &buf, 1, write_cb);
  if (r < 0) free(w);
  return r < 0 ? r : 0;
}

/* conn:send(bytes) queues one frame. Returns true | nil, message, code. */
static int l_send(lua_State* L) {
  lconn_t* c = *check_conn(L, CONN_MT);
  size_t len;
  const char* payload = luaL_checklstring(L, 2, &len);
  int r = send_frame(c, payload, len);
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:write(bytes) queues plain bytes (copied), no frame header.
** Returns true | nil, message, code. */
static int l_write(lua_State* L) {
  lconn_t* c = *check_conn(L, CONN_MT);
  size_t len;
  const char* bytes = luaL_checklstring(L, 2, &len);
  lwrite_t* w = malloc(sizeof(*w) + len);
  uv_buf_t buf;
  int r;
  if (w == NULL) return wr__lua_push_error(L, WR_ENOMEM);
  memcpy(w->bytes, bytes, len);
  buf = uv_buf_init(w->bytes, (unsigned int) len);
  r = uv_write(&w->req, &c->u.stream, &buf, 1, write_cb);
  if (r < 0) {
    free(w);
    return wr__lua_push_error(L, r);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Sends len bytes at payload as one frame on the connection whose handle
** (conn:handle()) is box, for Lua code to call through the FFI with a
** string.buffer's contents (buf:ref()), no Lua string made. Returns 0, or
** a negative error (UV_EPIPE once the connection is closed). */
static int send_raw(void* box, const uint8_t* payload, size_t len) {
  lconn_t* c = *(lconn_t**) box;
  if (c == NULL || c->closing) return UV_EPIPE;
  return send_frame(c, payload, len);
}

/* conn:handle() -> light userdata for core.send_raw_fn(): valid while conn
** itself is referenced (the Lua object, not the connection, must live). */
static int l_handle(lua_State* L) {
  lua_pushlightuserdata(L, luaL_checkudata(L, 1, CONN_MT));
  return 1;
}

/* core.send_raw_fn() -> light userdata: the address of
** int send_raw(void* handle, const uint8_t* payload, size_t len), to cast
** with the FFI. */
static int l_send_raw_fn(lua_State* L) {
  lua_pushlightuserdata(L, (void*) (uintptr_t) send_raw);
  return 1;
}

static void shutdown_cb(uv_shutdown_t* req, int status) {
  lconn_t* c = req->data;
  (void) status;
  free(req);
  uv_close(&c->u.handle, close_cb);
}

/* conn:shutdown() sends what is queued, then closes the connection. */
static int l_shutdown(lua_State* L) {
  lconn_t** box = luaL_checkudata(L, 1, CONN_MT);
  lconn_t* c = *box;
  uv_shutdown_t* req;
  if (c == NULL || c->closing) return 0;
  *box = NULL;
  c->closing = 1;
  c->reader.stopped = 1;
  uv_read_stop(&c->u.stream);
  luaL_unref(L, LUA_REGISTRYINDEX, c->frame_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->other_ref);
  c->frame_ref = c->other_ref = LUA_NOREF;
  req = malloc(sizeof(*req));
  if (req != NULL) req->data = c;
  if (req == NULL || uv_shutdown(req, &c->u.stream, shutdown_cb) < 0) {
    free(req);
    uv_close(&c->u.handle, close_cb);
  }
  return 0;
}

static int l_conn_close(lua_State* L) {
  lconn_t** box = luaL_checkudata(L, 1, CONN_MT);
  if (*box != NULL) {
    close_conn(L, *box);
    *box = NULL;
  }
  return 0;
}

/* -- Listening and connecting ---------------------------------------------- */

/* Whether the peer of an accepted Unix domain connection runs as this
** process's user (SO_PEERCRED, Linux). Where the system cannot say, the
** socket's 0600 mode is the only check. */
static int peer_is_own_user(lconn_t* c) {
#ifdef SO_PEERCRED
  struct ucred cred;
  socklen_t len = sizeof(cred);
  uv_os_fd_t fd;
  if (uv_fileno(&c->u.handle, &fd) < 0) return 0;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return 0;
  return cred.uid == getuid();
#else
  (void) c;
  return 1;
#endif
}

static void connection_cb(uv_stream_t* server, int status) {
  lconn_t* s = server->data;
  lua_State* L = wr__lua_state();
  lconn_t* c;
  if (status < 0 || s->closing) return;
  c = new_conn(L, CONN_MT, server->type == UV_TCP);
  if (uv_accept(server, &c->u.stream) < 0) {
    lua_pop(L, 1);
    close_conn(L, c);
    return;
  }
  if (server->type == UV_NAMED_PIPE && !peer_is_own_user(c)) {
    /* Logged once per socket: a peer that retries must not flood stderr. */
    if (!s->refused) {
      char path[1024];
      size_t plen = sizeof(path) - 1;
      if (uv_pipe_getsockname(&s->u.pipe, path, &plen) < 0) plen = 0;
      path[plen] = '\0';
      fprintf(stderr, "weir: refused a connection to %s from another user "
              "(only user %d may connect); further ones are refused "
              "silently\n", path, (int) getuid());
      s->refused = 1;
    }
    lua_pop(L, 1);
    close_conn(L, c);
    return;
  }
  wr__lua_callback(s->other_ref, 1);
}

/* core.listen(address, fn) -> server | nil, message, code. fn(conn) for
** each accepted connection. A socket path that exists is replaced. A
** socket path is made 0600 before it listens, whatever the umask, and a
** connection from a process of another user is refused and closed. */
static int l_listen(lua_State* L) {
  const char* address = luaL_checkstring(L, 1);
  int tcp = wr_address_is_tcp(address);
  lconn_t* s;
  int r;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  s = new_conn(L, SERVER_MT, tcp);
  if (tcp) {
    struct sockaddr_storage sa;
    r = wr_address_parse_tcp(address, &sa);
    if (r == 0) r = uv_tcp_bind(&s->u.tcp, (struct sockaddr*) &sa, 0);
  } else {
    uv_fs_t req;
    uv_fs_unlink(NULL, &req, address, NULL);
    uv_fs_req_cleanup(&req);
    r = uv_pipe_bind(&s->u.pipe, address);
    /* Before listen: until then a connect is refused, so no peer ever
    ** reaches the socket while the umask's mode is on it. */
    if (r == 0 && chmod(address, S_IRUSR | S_IWUSR) < 0)
      r = uv_translate_sys_error(errno);
  }
  if (r == 0) r = uv_listen(&s->u.stream, 128, connection_cb);
  if (r < 0) {
    close_conn(L, s);
    *(lconn_t**) lua_touserdata(L, -1) = NULL;
    return wr__lua_push_error(L, r);
  }
  lua_pushvalue(L, 2);
  s->other_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* server:address() -> "tcp:HOST:PORT" with the port actually bound (for a
** TCP server bound to port 0), or the socket path | nil, message, code. */
static int l_server_address(lua_State* L) {
  lconn_t* s = *check_conn(L, SERVER_MT);
  if (s->u.handle.type == UV_TCP) {
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    char address[WR_ADDRESS_TCP_MAX_BYTES];
    int r = uv_tcp_getsockname(&s->u.tcp, (struct sockaddr*) &sa, &len);
    if (r == 0) r = wr_address_format((struct sockaddr*) &sa, address,
                                      sizeof(address));
    if (r < 0) return wr__lua_push_error(L, r);
    lua_pushstring(L, address);
  } else {
    char path[1024];
    size_t len = sizeof(path);
    uv_pipe_getsockname(&s->u.pipe, path, &len);
    lua_pushlstring(L, path, len);
  }
  return 1;
}

static int l_server_close(lua_State* L) {
  lconn_t** box = luaL_checkudata(L, 1, SERVER_MT);
  if (*box != NULL) {
    close_conn(L, *box);
    *box = NULL;
  }
  return 0;
}

static void connect_cb(uv_connect_t* req, int status) {
  lconn_t* c = req->data;
  lua_State* L = wr__lua_state();
  int ref = c->other_ref;
  free(req);
  if (c->closing) return;  /* closed while connecting: fn is not called */
  c->other_ref = LUA_NOREF;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->frame_ref);  /* the conn userdata */
  luaL_unref(L, LUA_REGISTRYINDEX, c->frame_ref);
  c->frame_ref = LUA_NOREF;
  if (status < 0) {
    lua_pop(L, 1);
    lua_pushstring(L, wr_strerror(status));
    lua_pushnil(L);
    close_conn(L, c);
  } else {
    lua_pushnil(L);
    lua_insert(L, -2);
  }
  wr__lua_callback(ref, 2);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

/* core.connect(address, fn) -> true, conn | nil, message, code. Later
** fn(nil, conn) once connected, or fn(message) if that failed; closing
** conn before then gives up the attempt (fn is not called). */
static int l_connect(lua_State* L) {
  const char* address = luaL_checkstring(L, 1);
  int tcp = wr_address_is_tcp(address);
  uv_connect_t* req;
  lconn_t* c;
  int r = 0;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  req = malloc(sizeof(*req));
  if (req == NULL) return wr__lua_push_error(L, WR_ENOMEM);
  c = new_conn(L, CONN_MT, tcp);
  req->data = c;
  if (tcp) {
    struct sockaddr_storage sa;
    r = wr_address_parse_tcp(address, &sa);
    if (r == 0)
      r = uv_tcp_connect(req, &c->u.tcp, (struct sockaddr*) &sa, connect_cb);
  } else {
    uv_pipe_connect(req, &c->u.pipe, address, connect_cb);
  }
  if (r < 0) {
    free(req);
    close_conn(L, c);
    *(lconn_t**) lua_touserdata(L, -1) = NULL;
    return wr__lua_push_error(L, r);
  }
  /* Until connected, frame_ref keeps the userdata alive. */
  c->frame_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 2);
  c->other_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->frame_ref);
  return 2;
}

static const luaL_Reg conn_methods[] = {
  { "on_frame", l_on_frame }, { "send", l_send }, { "handle", l_handle },
  { "set_max_frame", l_set_max_frame },
  { "on_data", l_on_data }, { "write", l_write }, { "pause", l_pause },
  { "resume", l_resume }, { "peer", l_peer },
  { "local_address", l_local_address },
  { "shutdown", l_shutdown },
  { "close", l_conn_close },
  { NULL, NULL }
};

static const luaL_Reg server_methods[] = {
  { "address", l_server_address }, { "close", l_server_close },
  { NULL, NULL }
};

/* core.strerror(code) -> the message of a negative error code, as the
** send function of core.send_raw_fn() returns. */
static int l_strerror(lua_State* L) {
  lua_pushstring(L, wr_strerror((int) luaL_checkinteger(L, 1)));
  return 1;
}

static const luaL_Reg net_functions[] = {
  { "strerror", l_strerror },
  { "listen", l_listen }, { "connect", l_connect },
  { "send_raw_fn", l_send_raw_fn }, { NULL, NULL }
};

void wr__lua_open_net(lua_State* L) {
  wr__lua_new_class(L, CONN_MT, conn_methods);
  wr__lua_new_class(L, SERVER_MT, server_methods);
  luaL_register(L, NULL, net_functions);
  /* core.MAX_FRAME_BYTES: the longest frame any connection accepts. */
  lua_pushnumber(L, WR_FRAME_MAX_BYTES);
  lua_setfield(L, -2, "MAX_FRAME_BYTES");
}
