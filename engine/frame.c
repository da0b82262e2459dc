/*
** Length-prefixed frames (see frame.h).
*/
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

int wr_frame_reader_init(wr_frame_reader_t* r, wr_frame_cb cb) {
  r->buf = NULL;
  r->len = 0;
  r->cap = 0;
  r->max_bytes = WR_FRAME_MAX_BYTES;
  r->stopped = 0;
  r->cb = cb;
  return 0;
}

void wr_frame_header(uint32_t len, unsigned char out[4]) {
  out[0] = (unsigned char) len;
  out[1] = (unsigned char) (len >> 8);
  out[2] = (unsigned char) (len >> 16);
  out[3] = (unsigned char) (len >> 24);
}

static uint32_t read_header(const char* p) {
  const unsigned char* u = (const unsigned char*) p;
  return (uint32_t) u[0] | (uint32_t) u[1] << 8 | (uint32_t) u[2] << 16 |
         (uint32_t) u[3] << 24;
}

int wr_frame_reader_feed(wr_frame_reader_t* r, const char* bytes,
                         size_t nread) {
  size_t off = 0;
  if (nread == 0) return 0;  /* every complete frame was delivered before */
  if (r->len + nread > r->cap) {
    size_t cap = r->cap ? r->cap : 65536;
    char* buf;
    while (cap < r->len + nread) cap *= 2;
    buf = realloc(r->buf, cap);
    if (buf == NULL) return WR_ENOMEM;
    r->buf = buf;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, bytes, nread);
  r->len += nread;
  while (!r->stopped && r->len - off >= 4) {
    uint32_t flen = read_header(r->buf + off);
    if (flen > r->max_bytes) return UV_E2BIG;
    if (r->len - off - 4 < flen) break;
    r->cb(r, r->buf + off + 4, flen, 0);
    off += 4 + (size_t) flen;
  }
  if (off > 0) {
    memmove(r->buf, r->buf + off, r->len - off);
    r->len -= off;
  }
  return 0;
}

void wr_frame_reader_close(wr_frame_reader_t* r) {
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = 0;
}
