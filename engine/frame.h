/*
** Frames: length-prefixed messages over a libuv stream (a Unix domain
** socket or a TCP connection). A frame is a u32 little-endian payload
** length followed by the payload. Channels between workers and the control
** connection to the coordinator are framed streams.
** Invariants: frames arrive whole and in order; a frame longer than the
** reader's max_bytes (at most WR_FRAME_MAX_BYTES) is a protocol error that
** closes the stream as soon as its header is read.
*/
#ifndef WEIR_FRAME_H
#define WEIR_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define WR_FRAME_MAX_BYTES (256u << 20)  /* largest payload accepted */

typedef struct wr_frame_reader_s wr_frame_reader_t;

/* Called for each complete frame (payload, len bytes; valid only during the
** call), or with payload NULL and a negative status on end of stream
** (UV_EOF) or error. */
typedef void (*wr_frame_cb)(wr_frame_reader_t* r, const char* payload,
                            size_t len, int status);

struct wr_frame_reader_s {
  void* data;           /* free for the caller's use */
  char* buf;            /* bytes received and not yet delivered */
  size_t len;           /* bytes in buf */
  size_t cap;           /* capacity of buf in bytes */
  size_t max_bytes;     /* longest payload accepted, in bytes */
  int stopped;          /* set by the owner to stop delivering frames */
  wr_frame_cb cb;
};

/* Prepares a reader accepting payloads up to WR_FRAME_MAX_BYTES (the owner
** may lower max_bytes, e.g. until a peer is authenticated). Returns 0. */
int wr_frame_reader_init(wr_frame_reader_t* r, wr_frame_cb cb);

/* Feeds nread bytes read from the stream; delivers every complete frame.
** Returns 0, or WR_ENOMEM / UV_E2BIG (frame too long) after which the
** stream must be closed. */
int wr_frame_reader_feed(wr_frame_reader_t* r, const char* bytes,
                         size_t nread);

/* Frees the reader's buffer. */
void wr_frame_reader_close(wr_frame_reader_t* r);

/* Writes the 4-byte header of a payload of len bytes into out. */
void wr_frame_header(uint32_t len, unsigned char out[4]);

#endif
