/*
** Heartbeats from a thread of their own: a worker process tells its
** coordinator it is alive even while its loop's thread is busy for long in
** one synchronous step (serializing a large snapshot, a long collection).
** As Flink's TaskManager heartbeats, they show that the process lives, not
** that its tasks progress; a process stopped (SIGSTOP) or dead sends none.
** The thread writes on a connection of its own, with blocking writes, so
** it never touches the loop.
**
** The connection authenticates as every other connection of a job does
** (auth.h): the thread answers the coordinator's fresh nonce with the HMAC
** of its claim before its first heartbeat. Heartbeats carry no data, so a
** token computed once and replayed would only let its thief keep a hung
** worker looking alive; but the challenge costs one round trip per
** process, not per heartbeat, and a connection whose claim cannot be
** replayed leaves no such hole, so heartbeats get no weaker scheme.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "address.h"
#include "auth.h"
#include "frame.h"
#include "lua_aux.h"

#define HEARTBEAT_MT "weir.heartbeat"

typedef struct {
  uv_thread_t thread;
  uv_mutex_t lock;
  uv_cond_t wake;
  int fd;
  int stop;             /* set under lock to end the thread */
  uint64_t interval_ns;
  size_t len;           /* bytes in frame */
  unsigned char* frame; /* header and payload, sent as is */
  int authenticate;     /* answer the coordinator's challenge first */
  uint8_t secret[WR_AUTH_SECRET_BYTES];
  wr_auth_claim_t claim;
} heartbeat_t;

/* Writes all len bytes; returns 0 or -1 (the peer is gone). */
static int write_all(int fd, const unsigned char* p, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t) n;
  }
  return 0;
}

/* Reads exactly len bytes; returns 0 or -1 (the peer is gone). */
static int read_all(int fd, unsigned char* p, size_t len) {
  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t) n;
  }
  return 0;
}

/* Answers the coordinator's challenge (auth.h). Returns 0 or -1. */
static int answer_challenge(heartbeat_t* h) {
  unsigned char nonce[4 + WR_AUTH_NONCE_BYTES];
  unsigned char response[4 + WR_AUTH_RESPONSE_BYTES];
  unsigned char expected[4];
  if (read_all(h->fd, nonce, sizeof(nonce)) != 0) return -1;
  wr_frame_header(WR_AUTH_NONCE_BYTES, expected);
  if (memcmp(nonce, expected, 4) != 0) return -1;
  wr_frame_header(WR_AUTH_RESPONSE_BYTES, response);
  if (wr_auth_respond(h->secret, sizeof(h->secret), nonce + 4, &h->claim,
                      response + 4) != 0)
    return -1;
  return write_all(h->fd, response, sizeof(response));
}

static void beat(void* arg) {
  heartbeat_t* h = arg;
  if (h->authenticate && answer_challenge(h) != 0) return;
  uv_mutex_lock(&h->lock);
  while (!h->stop) {
    uv_mutex_unlock(&h->lock);
    if (write_all(h->fd, h->frame, h->len) != 0) return;
    uv_mutex_lock(&h->lock);
    if (!h->stop) uv_cond_timedwait(&h->wake, &h->lock, h->interval_ns);
  }
  uv_mutex_unlock(&h->lock);
}

/* Connects a blocking socket to address. Returns the fd or a negative
** libuv error code. */
static int connect_to(const char* address) {
  struct sockaddr_storage sa;
  socklen_t sa_len;
  int fd, r;
  r = wr_address_parse(address, &sa, &sa_len);
  if (r < 0) return r;
  fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  if (connect(fd, (struct sockaddr*) &sa, sa_len) != 0) {
    r = uv_translate_sys_error(errno);
    close(fd);
    return r;
  }
  return fd;
}

/* core.heartbeat(address, payload, interval_ms [, auth]) -> handle | nil,
** message, name. Connects to address (a Unix socket path or
** "tcp:HOST:PORT") and from a new thread sends payload (bytes) as one frame
** at once and then every interval_ms, until handle:stop() or until a write
** fails (the peer closed the connection). auth: { secret = the job's
** secret (WR_AUTH_SECRET_BYTES), worker = index, attempt = n }: the thread
** first answers the peer's challenge as a heartbeat connection of that
** worker (auth.h). */
static int l_heartbeat(lua_State* L) {
  const char* address = luaL_checkstring(L, 1);
  size_t len, secret_len = 0;
  const char* payload = luaL_checklstring(L, 2, &len);
  lua_Number interval_ms = luaL_checknumber(L, 3);
  const char* secret = NULL;
  wr_auth_claim_t claim = { WR_AUTH_HEARTBEAT, 0, 0 };
  heartbeat_t** box;
  heartbeat_t* h;
  int fd;
  if (interval_ms <= 0) luaL_argerror(L, 3, "interval must be > 0 ms");
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_getfield(L, 4, "secret");
    secret = lua_tolstring(L, -1, &secret_len);
    if (secret == NULL || secret_len != WR_AUTH_SECRET_BYTES)
      luaL_argerror(L, 4, "auth.secret must be the job's secret");
    lua_getfield(L, 4, "worker");
    claim.worker = (uint32_t) luaL_checkinteger(L, -1);
    lua_getfield(L, 4, "attempt");
    claim.attempt = (uint32_t) luaL_checkinteger(L, -1);
    lua_pop(L, 2);  /* the secret stays referenced by the auth table */
  }
  fd = connect_to(address);
  if (fd < 0) return wr__lua_push_error(L, fd);
  h = calloc(1, sizeof(*h));
  if (h != NULL) h->frame = malloc(4 + len);
  if (h == NULL || h->frame == NULL) {
    if (h != NULL) free(h);
    close(fd);
    return wr__lua_push_error(L, UV_ENOMEM);
  }
  wr_frame_header((uint32_t) len, h->frame);
  memcpy(h->frame + 4, payload, len);
  h->len = 4 + len;
  h->fd = fd;
  if (secret != NULL) {
    h->authenticate = 1;
    memcpy(h->secret, secret, WR_AUTH_SECRET_BYTES);
    h->claim = claim;
  }
  h->interval_ns = (uint64_t) (interval_ms * 1e6);
  uv_mutex_init(&h->lock);
  uv_cond_init(&h->wake);
  if (uv_thread_create(&h->thread, beat, h) != 0) {
    uv_cond_destroy(&h->wake);
    uv_mutex_destroy(&h->lock);
    close(fd);
    free(h->frame);
    free(h);
    return wr__lua_push_error(L, UV_EAGAIN);
  }
  box = lua_newuserdata(L, sizeof(*box));
  *box = h;
  luaL_getmetatable(L, HEARTBEAT_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* handle:stop() ends the heartbeats and closes their connection (also
** when the handle is collected). */
static int l_stop(lua_State* L) {
  heartbeat_t** box = luaL_checkudata(L, 1, HEARTBEAT_MT);
  heartbeat_t* h = *box;
  if (h == NULL) return 0;
  *box = NULL;
  uv_mutex_lock(&h->lock);
  h->stop = 1;
  uv_cond_signal(&h->wake);
  uv_mutex_unlock(&h->lock);
  shutdown(h->fd, SHUT_RDWR);  /* ends a write blocked on a full socket */
  uv_thread_join(&h->thread);
  close(h->fd);
  uv_cond_destroy(&h->wake);
  uv_mutex_destroy(&h->lock);
  free(h->frame);
  memset(h->secret, 0, sizeof(h->secret));
  free(h);
  return 0;
}

static const luaL_Reg methods[] = {
  { "stop", l_stop }, { NULL, NULL }
};

void wr__lua_open_heartbeat(lua_State* L) {
  wr__lua_new_gc_class(L, HEARTBEAT_MT, methods, l_stop);
  lua_pushcfunction(L, l_heartbeat);
  lua_setfield(L, -2, "heartbeat");
}
