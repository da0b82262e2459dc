/* Heartbeats: a thread sends a frame at once and then on an interval,
** answers the peer's challenge first when asked to, and ends when closed,
** even blocked on a full socket. Every wait here is bounded. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "harness.h"
#include "auth.h"
#include "frame.h"
#include "heartbeat.h"

#define BOUND_MS 5000       /* longest any single wait may take */
#define INTERVAL_NS 5000000 /* 5 ms between heartbeats */

static const uint8_t secret[WR_AUTH_SECRET_BYTES] = { 7, 1, 9, 4 };

typedef struct {
  char dir[64];             /* temporary directory of the socket */
  char path[96];            /* socket path */
  int listener;
} peer_t;

static int peer_listen(peer_t* p) {
  struct sockaddr_un un;
  strcpy(p->dir, "/tmp/weir-heartbeat-XXXXXX");
  if (mkdtemp(p->dir) == NULL) return -1;
  snprintf(p->path, sizeof(p->path), "%s/hb.sock", p->dir);
  memset(&un, 0, sizeof(un));
  un.sun_family = AF_UNIX;
  strcpy(un.sun_path, p->path);
  p->listener = socket(AF_UNIX, SOCK_STREAM, 0);
  if (p->listener < 0) return -1;
  if (bind(p->listener, (struct sockaddr*) &un, sizeof(un)) != 0) return -1;
  return listen(p->listener, 4);
}

static void peer_close(peer_t* p) {
  close(p->listener);
  unlink(p->path);
  rmdir(p->dir);
}

/* Milliseconds left until deadline_ns (uv_hrtime), at least 0. */
static int left_ms(uint64_t deadline_ns) {
  uint64_t now = uv_hrtime();
  return now >= deadline_ns ? 0 : (int) ((deadline_ns - now) / 1000000);
}

/* Waits up to BOUND_MS for fd to be readable. Returns 1 if it is. */
static int readable(int fd) {
  struct pollfd pfd = { fd, POLLIN, 0 };
  return poll(&pfd, 1, BOUND_MS) == 1;
}

static int peer_accept(peer_t* p) {
  return readable(p->listener) ? accept(p->listener, NULL, NULL) : -1;
}

/* Reads exactly len bytes within BOUND_MS. Returns 0, or -1 on end of
** stream, error or timeout. */
static int read_within(int fd, void* buf, size_t len) {
  uint64_t deadline = uv_hrtime() + (uint64_t) BOUND_MS * 1000000;
  char* p = buf;
  while (len > 0) {
    struct pollfd pfd = { fd, POLLIN, 0 };
    ssize_t n;
    if (poll(&pfd, 1, left_ms(deadline)) != 1) return -1;
    n = recv(fd, p, len, 0);
    if (n <= 0) return -1;
    p += n;
    len -= (size_t) n;
  }
  return 0;
}

/* Reads one frame of at most size bytes into buf. Returns its length or
** -1. */
static long read_frame(int fd, char* buf, size_t size) {
  unsigned char header[4];
  uint32_t len;
  if (read_within(fd, header, 4) != 0) return -1;
  len = (uint32_t) header[0] | (uint32_t) header[1] << 8 |
        (uint32_t) header[2] << 16 | (uint32_t) header[3] << 24;
  if (len > size || read_within(fd, buf, len) != 0) return -1;
  return (long) len;
}

/* Whether the peer sees end of stream within BOUND_MS, skipping any
** heartbeats still queued. */
static int sees_end_of_stream(int fd) {
  char buf[256];
  while (readable(fd)) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return 1;
    if (n < 0) return 0;
  }
  return 0;
}

/* wr_heartbeat_close on a thread of its own, so that a close that hangs
** fails the test instead of hanging it. */
typedef struct {
  wr_heartbeat_t* h;
  uv_mutex_t lock;
  uv_cond_t done_cond;
  int done;
} closer_t;

static void close_heartbeat(void* arg) {
  closer_t* c = arg;
  wr_heartbeat_close(c->h);
  uv_mutex_lock(&c->lock);
  c->done = 1;
  uv_cond_signal(&c->done_cond);
  uv_mutex_unlock(&c->lock);
}

/* Closes h; returns 1 if the close returned within BOUND_MS. */
static int closes_within_bound(wr_heartbeat_t* h) {
  closer_t c;
  uv_thread_t thread;
  uint64_t deadline = uv_hrtime() + (uint64_t) BOUND_MS * 1000000;
  int done;
  c.h = h;
  c.done = 0;
  uv_mutex_init(&c.lock);
  uv_cond_init(&c.done_cond);
  if (uv_thread_create(&thread, close_heartbeat, &c) != 0) return 0;
  uv_mutex_lock(&c.lock);
  while (!c.done && uv_hrtime() < deadline)
    uv_cond_timedwait(&c.done_cond, &c.lock, deadline - uv_hrtime());
  done = c.done;
  uv_mutex_unlock(&c.lock);
  if (!done) return 0;  /* leaves the thread and c behind: the test failed */
  uv_thread_join(&thread);
  uv_cond_destroy(&c.done_cond);
  uv_mutex_destroy(&c.lock);
  return 1;
}

static void sends_the_payload_at_once_and_on_each_interval(void) {
  peer_t p;
  wr_heartbeat_t* h = NULL;
  char buf[64];
  int fd;
  CHECK(peer_listen(&p) == 0);
  CHECK(wr_heartbeat_start(&h, p.path, "alive", 5, INTERVAL_NS, NULL,
                           NULL) == 0);
  fd = peer_accept(&p);
  CHECK(fd >= 0);
  CHECK(read_frame(fd, buf, sizeof(buf)) == 5);
  CHECK(memcmp(buf, "alive", 5) == 0);
  CHECK(read_frame(fd, buf, sizeof(buf)) == 5);
  CHECK(memcmp(buf, "alive", 5) == 0);
  CHECK(read_frame(fd, buf, sizeof(buf)) == 5);
  if (h != NULL) CHECK(closes_within_bound(h));
  CHECK(sees_end_of_stream(fd));
  close(fd);
  peer_close(&p);
}

static void sends_an_empty_payload_as_an_empty_frame(void) {
  peer_t p;
  wr_heartbeat_t* h = NULL;
  char buf[8];
  int fd;
  CHECK(peer_listen(&p) == 0);
  CHECK(wr_heartbeat_start(&h, p.path, "", 0, INTERVAL_NS, NULL, NULL) == 0);
  fd = peer_accept(&p);
  CHECK(fd >= 0);
  CHECK(read_frame(fd, buf, sizeof(buf)) == 0);
  if (h != NULL) CHECK(closes_within_bound(h));
  close(fd);
  peer_close(&p);
}

static void answers_the_challenge_before_the_first_heartbeat(void) {
  peer_t p;
  wr_heartbeat_t* h = NULL;
  wr_auth_claim_t claim = { WR_AUTH_HEARTBEAT, 3, 7 }, got;
  unsigned char nonce[4 + WR_AUTH_NONCE_BYTES];
  char response[WR_AUTH_RESPONSE_BYTES + 1], buf[64];
  int fd;
  CHECK(peer_listen(&p) == 0);
  CHECK(wr_heartbeat_start(&h, p.path, "hb", 2, INTERVAL_NS, secret,
                           &claim) == 0);
  fd = peer_accept(&p);
  CHECK(fd >= 0);
  /* Nothing comes before the challenge is answered. */
  {
    struct pollfd pfd = { fd, POLLIN, 0 };
    CHECK(poll(&pfd, 1, 20) == 0);
  }
  wr_frame_header(WR_AUTH_NONCE_BYTES, nonce);
  memset(nonce + 4, 0x5a, WR_AUTH_NONCE_BYTES);
  CHECK(send(fd, nonce, sizeof(nonce), MSG_NOSIGNAL) ==
        (ssize_t) sizeof(nonce));
  CHECK(read_frame(fd, response, sizeof(response)) ==
        WR_AUTH_RESPONSE_BYTES);
  CHECK(wr_auth_verify(secret, sizeof(secret), nonce + 4,
                       (const uint8_t*) response, WR_AUTH_RESPONSE_BYTES,
                       &got) == 0);
  CHECK(got.role == WR_AUTH_HEARTBEAT);
  CHECK(got.worker == 3);
  CHECK(got.attempt == 7);
  CHECK(read_frame(fd, buf, sizeof(buf)) == 2);
  CHECK(memcmp(buf, "hb", 2) == 0);
  if (h != NULL) CHECK(closes_within_bound(h));
  close(fd);
  peer_close(&p);
}

static void closes_after_the_peer_went_away(void) {
  peer_t p;
  wr_heartbeat_t* h = NULL;
  char buf[8];
  int fd;
  CHECK(peer_listen(&p) == 0);
  CHECK(wr_heartbeat_start(&h, p.path, "x", 1, INTERVAL_NS, NULL, NULL) ==
        0);
  fd = peer_accept(&p);
  CHECK(fd >= 0);
  CHECK(read_frame(fd, buf, sizeof(buf)) == 1);
  close(fd);  /* the next writes fail and the thread ends */
  if (h != NULL) CHECK(closes_within_bound(h));
  peer_close(&p);
}

static void closes_while_blocked_on_a_full_socket(void) {
  peer_t p;
  wr_heartbeat_t* h = NULL;
  size_t len = 16u << 20;  /* far more than a socket buffers */
  char* payload = calloc(1, len);
  int fd;
  CHECK(payload != NULL);
  CHECK(peer_listen(&p) == 0);
  CHECK(wr_heartbeat_start(&h, p.path, payload, len, INTERVAL_NS, NULL,
                           NULL) == 0);
  fd = peer_accept(&p);
  CHECK(fd >= 0);
  CHECK(readable(fd));  /* the thread writes, and nobody reads */
  if (h != NULL) CHECK(closes_within_bound(h));
  CHECK(sees_end_of_stream(fd));
  close(fd);
  peer_close(&p);
  free(payload);
}

static void refuses_an_address_it_cannot_reach(void) {
  peer_t p;
  wr_heartbeat_t* h = NULL;
  char missing[128];
  CHECK(peer_listen(&p) == 0);
  snprintf(missing, sizeof(missing), "%s/none.sock", p.dir);
  CHECK(wr_heartbeat_start(&h, missing, "x", 1, INTERVAL_NS, NULL, NULL) ==
        UV_ENOENT);
  CHECK(wr_heartbeat_start(&h, "tcp:127.0.0.1:x", "x", 1, INTERVAL_NS, NULL,
                           NULL) == UV_EINVAL);
  CHECK(h == NULL);
  peer_close(&p);
}

static void refuses_a_zero_interval(void) {
  peer_t p;
  wr_heartbeat_t* h = NULL;
  CHECK(peer_listen(&p) == 0);
  CHECK(wr_heartbeat_start(&h, p.path, "x", 1, 0, NULL, NULL) == UV_EINVAL);
  CHECK(h == NULL);
  peer_close(&p);
}

const wr_test_t wr_heartbeat_tests[] = {
  { "heartbeat: sends the payload at once and on each interval",
    sends_the_payload_at_once_and_on_each_interval },
  { "heartbeat: sends an empty payload as an empty frame",
    sends_an_empty_payload_as_an_empty_frame },
  { "heartbeat: answers the challenge before the first heartbeat",
    answers_the_challenge_before_the_first_heartbeat },
  { "heartbeat: closes after the peer went away",
    closes_after_the_peer_went_away },
  { "heartbeat: closes while blocked on a full socket",
    closes_while_blocked_on_a_full_socket },
  { "heartbeat: refuses an address it cannot reach",
    refuses_an_address_it_cannot_reach },
  { "heartbeat: refuses a zero interval", refuses_a_zero_interval },
  { NULL, NULL }
};
