/*
** Heartbeats from a thread of their own (see heartbeat.h). The thread
** owns nothing but its reads and writes on fd; every field it reads is
** set before it starts, except stop, which is read and written under
** lock.
*/
#include "heartbeat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "address.h"
#include "frame.h"

struct wr_heartbeat_s {
  uv_thread_t thread;
  uv_mutex_t lock;
  uv_cond_t wake;
  int fd;
  int stop;             /* set under lock to end the thread */
  uint64_t interval_ns; /* time between heartbeats */
  size_t len;           /* bytes in frame */
  unsigned char* frame; /* header and payload, sent as is */
  int authenticate;     /* answer the coordinator's challenge first */
  uint8_t secret[WR_AUTH_SECRET_BYTES];
  wr_auth_claim_t claim;
};

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
static int answer_challenge(wr_heartbeat_t* h) {
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
  wr_heartbeat_t* h = arg;
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

int wr_heartbeat_start(wr_heartbeat_t** out, const char* address,
                       const void* payload, size_t len, uint64_t interval_ns,
                       const uint8_t* secret, const wr_auth_claim_t* claim) {
  wr_heartbeat_t* h;
  int fd, r;
  if (interval_ns == 0) return UV_EINVAL;
  fd = connect_to(address);
  if (fd < 0) return fd;
  r = UV_ENOMEM;
  h = calloc(1, sizeof(*h));
  if (h == NULL) goto fail_alloc;
  h->frame = malloc(4 + len);
  if (h->frame == NULL) goto fail_frame;
  wr_frame_header((uint32_t) len, h->frame);
  memcpy(h->frame + 4, payload, len);
  h->len = 4 + len;
  h->fd = fd;
  if (secret != NULL) {
    h->authenticate = 1;
    memcpy(h->secret, secret, WR_AUTH_SECRET_BYTES);
    h->claim = *claim;
  }
  h->interval_ns = interval_ns;
  uv_mutex_init(&h->lock);
  uv_cond_init(&h->wake);
  r = UV_EAGAIN;
  if (uv_thread_create(&h->thread, beat, h) != 0) goto fail_thread;
  *out = h;
  return 0;

fail_thread:
  uv_cond_destroy(&h->wake);
  uv_mutex_destroy(&h->lock);
  memset(h->secret, 0, sizeof(h->secret));
  free(h->frame);
fail_frame:
  free(h);
fail_alloc:
  close(fd);
  return r;
}

void wr_heartbeat_close(wr_heartbeat_t* h) {
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
}
