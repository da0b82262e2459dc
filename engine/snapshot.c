/*
** Snapshot files (see snapshot.h): lz4 frames with checksums, written
** durably, verified on every read. A snapshot is never returned unverified.
*/
#include "snapshot.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <lz4frame.h>

#include "error.h"
#include "fs.h"

static const char magic[4] = { 'W', 'E', 'I', 'R' };

static uint32_t read_u32le(const unsigned char* p) {
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
         (uint32_t) p[3] << 24;
}

static void write_u32le(unsigned char* p, uint32_t v) {
  p[0] = (unsigned char) v;
  p[1] = (unsigned char) (v >> 8);
  p[2] = (unsigned char) (v >> 16);
  p[3] = (unsigned char) (v >> 24);
}

static void frame_preferences(LZ4F_preferences_t* prefs, size_t len) {
  memset(prefs, 0, sizeof(*prefs));
  prefs->frameInfo.blockSizeID = LZ4F_max4MB;
  prefs->frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  prefs->frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
  prefs->frameInfo.contentSize = len;
}

/* Makes room for need more bytes after *used in *buf (of *cap bytes). */
static int reserve(char** buf, size_t* cap, size_t used, size_t need) {
  char* grown;
  size_t want = *cap;
  if (used + need <= *cap) return 0;
  while (want < used + need) want = want * 2;
  grown = realloc(*buf, want);
  if (grown == NULL) return WR_ENOMEM;
  *buf = grown;
  *cap = want;
  return 0;
}

int wr_snapshot_encode_parts(const wr_snapshot_part_t* parts, size_t n,
                             char** out, size_t* out_len,
                             uint32_t* checksum) {
  LZ4F_preferences_t prefs;
  LZ4F_cctx* cctx;
  size_t total = 0, used, cap, r, i;
  char* buf;
  int err = 0;

  for (i = 0; i < n; i++) total += parts[i].len;
  frame_preferences(&prefs, total);
  if (LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION)))
    return WR_ENOMEM;
  cap = WR_SNAPSHOT_HEADER_BYTES + LZ4F_HEADER_SIZE_MAX
    + LZ4F_compressBound(0, &prefs) + total / 2 + 4096;
  buf = malloc(cap);
  if (buf == NULL) {
    LZ4F_freeCompressionContext(cctx);
    return WR_ENOMEM;
  }
  memcpy(buf, magic, sizeof(magic));
  write_u32le((unsigned char*) buf + 4, WR_SNAPSHOT_VERSION);
  used = WR_SNAPSHOT_HEADER_BYTES;
  r = LZ4F_compressBegin(cctx, buf + used, cap - used, &prefs);
  if (LZ4F_isError(r)) err = WR_ECOMPRESS;
  else used += r;
  for (i = 0; i < n && err == 0; i++) {
    err = reserve(&buf, &cap, used, LZ4F_compressBound(parts[i].len, &prefs));
    if (err != 0) break;
    r = LZ4F_compressUpdate(cctx, buf + used, cap - used, parts[i].data,
                            parts[i].len, NULL);
    if (LZ4F_isError(r)) err = WR_ECOMPRESS;
    else used += r;
  }
  if (err == 0) err = reserve(&buf, &cap, used, LZ4F_compressBound(0, &prefs));
  if (err == 0) {
    r = LZ4F_compressEnd(cctx, buf + used, cap - used, NULL);
    if (LZ4F_isError(r)) err = WR_ECOMPRESS;
    else used += r;
  }
  LZ4F_freeCompressionContext(cctx);
  if (err != 0) {
    free(buf);
    return err;
  }
  *out = buf;
  *out_len = used;
  /* The frame ends with its content checksum. */
  *checksum = read_u32le((unsigned char*) buf + used - 4);
  return 0;
}

int wr_snapshot_encode(const void* data, size_t len, char** out,
                       size_t* out_len, uint32_t* checksum) {
  wr_snapshot_part_t part;
  part.data = data;
  part.len = len;
  return wr_snapshot_encode_parts(&part, 1, out, out_len, checksum);
}

/* The largest content that blocks of src_len bytes can decompress to. An
** lz4 sequence of n bytes (a token, length bytes of 255 each, an offset)
** yields at most about 255 * n bytes, so 255:1 is lz4's greatest ratio;
** the margin covers the last sequence and small frames. */
static uint64_t max_content_size(size_t src_len) {
  return (uint64_t) src_len * WR_SNAPSHOT_MAX_RATIO + 64;
}

int wr_snapshot_decode(const char* image, size_t image_len, char** data,
                       size_t* len, uint32_t* checksum) {
  LZ4F_dctx* dctx;
  LZ4F_frameInfo_t info;
  const char* src = image + WR_SNAPSHOT_HEADER_BYTES;
  size_t src_len, consumed, dst_len, produced = 0, hint;
  char* dst = NULL;
  int r;

  *data = NULL;
  *len = 0;
  if (image_len < WR_SNAPSHOT_HEADER_BYTES ||
      memcmp(image, magic, sizeof(magic)) != 0)
    return image_len < sizeof(magic) ? WR_ETRUNCATED : WR_EMAGIC;
  if (read_u32le((const unsigned char*) image + 4) != WR_SNAPSHOT_VERSION)
    return WR_EVERSION;
  src_len = image_len - WR_SNAPSHOT_HEADER_BYTES;

  if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
    return WR_ENOMEM;
  consumed = src_len;
  hint = LZ4F_getFrameInfo(dctx, &info, src, &consumed);
  if (LZ4F_isError(hint)) {
    r = src_len < LZ4F_HEADER_SIZE_MAX ? WR_ETRUNCATED : WR_ECORRUPT;
    goto fail_header;
  }
  if (info.contentChecksumFlag != LZ4F_contentChecksumEnabled) {
    r = WR_ECORRUPT;
    goto fail_header;
  }
  /* The header's content size decides the allocation, so it is checked
  ** against what the rest of the file can hold first: a crafted header
  ** must not make a few bytes ask for a terabyte. */
  if (info.contentSize > max_content_size(src_len - consumed)) {
    r = WR_ECORRUPT;
    goto fail_header;
  }
  dst_len = (size_t) info.contentSize;
  dst = malloc(dst_len ? dst_len : 1);
  if (dst == NULL) {
    r = WR_ENOMEM;
    goto fail_header;
  }
  src += consumed;
  src_len -= consumed;
  while (hint != 0) {
    size_t in = src_len, out = dst_len - produced;
    if (src_len == 0) {
      r = WR_ETRUNCATED;
      goto fail_body;
    }
    hint = LZ4F_decompress(dctx, dst + produced, &out, src, &in, NULL);
    if (LZ4F_isError(hint)) {
      r = WR_ECORRUPT;
      goto fail_body;
    }
    if (in == 0 && out == 0) {
      r = WR_ECORRUPT;  /* no progress: the content is larger than declared */
      goto fail_body;
    }
    src += in;
    src_len -= in;
    produced += out;
  }
  if (src_len != 0 || produced != dst_len) {
    r = WR_ECORRUPT;
    goto fail_body;
  }
  LZ4F_freeDecompressionContext(dctx);
  *data = dst;
  *len = produced;
  *checksum = read_u32le((const unsigned char*) image + image_len - 4);
  return 0;

fail_body:
  free(dst);
fail_header:
  LZ4F_freeDecompressionContext(dctx);
  return r;
}

int wr_snapshot_write(const char* path, const void* data, size_t len,
                      uint64_t* size_bytes, uint32_t* checksum) {
  wr_snapshot_part_t part;
  part.data = data;
  part.len = len;
  return wr_snapshot_write_parts(path, &part, 1, size_bytes, checksum);
}

int wr_snapshot_write_parts(const char* path,
                            const wr_snapshot_part_t* parts, size_t n,
                            uint64_t* size_bytes, uint32_t* checksum) {
  char* image;
  size_t image_len;
  int r = wr_snapshot_encode_parts(parts, n, &image, &image_len, checksum);
  if (r < 0) return r;
  r = wr__fs_write_durable(path, image, image_len);
  free(image);
  if (r == 0) *size_bytes = image_len;
  return r;
}

int wr_snapshot_read(const char* path, char** data, size_t* len,
                     uint64_t* size_bytes, uint32_t* checksum) {
  char* image;
  size_t image_len;
  int r = wr_fs_read_all(path, &image, &image_len);
  if (r < 0) return r;
  r = wr_snapshot_decode(image, image_len, data, len, checksum);
  free(image);
  if (r == 0) *size_bytes = image_len;
  return r;
}

/* Input and output of a streamed read: a file is read STREAM_IN_BYTES at a
** time and its content produced a block (at most 4 MiB, the frames'
** block size) at a time, so that verifying or extracting a file of any
** size touches the same 5 MiB of memory. */
#define STREAM_IN_BYTES (1u << 20)
#define STREAM_OUT_BYTES (4u << 20)

/* Receives each piece of a streamed file's content; returns 0 or a
** negative error, which stops the read. */
typedef int (*content_sink_fn)(void* ctx, const char* data, size_t len);

typedef struct {
  int fd;
  uint64_t left;          /* bytes of the file not read yet */
  char* in;               /* STREAM_IN_BYTES */
  size_t in_len, in_pos;  /* bytes in `in`, bytes of them consumed */
  unsigned char tail[4];  /* the last 4 bytes read: the content checksum */
} stream_t;

/* Reads the next piece of the file into s->in. Returns the bytes read (0 at
** the end of the file) or a negative error. */
static int stream_fill(stream_t* s) {
  uv_fs_t req;
  uv_buf_t buf;
  size_t want = s->left < STREAM_IN_BYTES ? (size_t) s->left : STREAM_IN_BYTES;
  int r;
  s->in_len = s->in_pos = 0;
  if (want == 0) return 0;
  buf = uv_buf_init(s->in, (unsigned int) want);
  r = uv_fs_read(NULL, &req, s->fd, &buf, 1, -1, NULL);
  uv_fs_req_cleanup(&req);
  if (r <= 0) return r < 0 ? r : WR_ETRUNCATED;  /* shrank while read */
  s->in_len = (size_t) r;
  s->left -= (uint64_t) r;
  if (r >= 4) {
    memcpy(s->tail, s->in + r - 4, 4);
  } else {
    memmove(s->tail, s->tail + r, 4 - (size_t) r);
    memcpy(s->tail + 4 - r, s->in, (size_t) r);
  }
  return r;
}

/* Decompresses the frame of a snapshot file whose header s->in holds,
** handing its content to sink (NULL: only verify). The checks and errors
** are wr_snapshot_decode's. */
static int stream_frame(stream_t* s, uint64_t file_size, char* out,
                        content_sink_fn sink, void* ctx) {
  LZ4F_dctx* dctx;
  LZ4F_frameInfo_t info;
  uint64_t produced = 0, src_len = file_size - WR_SNAPSHOT_HEADER_BYTES;
  size_t consumed, hint;
  int r = 0;

  if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
    return WR_ENOMEM;
  s->in_pos = WR_SNAPSHOT_HEADER_BYTES;
  consumed = s->in_len - s->in_pos;
  hint = LZ4F_getFrameInfo(dctx, &info, s->in + s->in_pos, &consumed);
  if (LZ4F_isError(hint)) {
    r = src_len < LZ4F_HEADER_SIZE_MAX ? WR_ETRUNCATED : WR_ECORRUPT;
  } else if (info.contentChecksumFlag != LZ4F_contentChecksumEnabled ||
             info.contentSize > max_content_size(src_len - consumed)) {
    r = WR_ECORRUPT;  /* see wr_snapshot_decode */
  }
  s->in_pos += consumed;
  while (r == 0 && hint != 0) {
    size_t in, got = STREAM_OUT_BYTES;
    if (s->in_pos == s->in_len) {
      r = stream_fill(s);
      if (r == 0) r = WR_ETRUNCATED;
      if (r < 0) break;
      r = 0;
    }
    in = s->in_len - s->in_pos;
    hint = LZ4F_decompress(dctx, out, &got, s->in + s->in_pos, &in, NULL);
    if (LZ4F_isError(hint) || (in == 0 && got == 0)) {
      r = WR_ECORRUPT;
      break;
    }
    s->in_pos += in;
    produced += got;
    if (produced > info.contentSize) r = WR_ECORRUPT;
    else if (sink != NULL && got > 0) r = sink(ctx, out, got);
  }
  LZ4F_freeDecompressionContext(dctx);
  if (r == 0 && (s->in_pos != s->in_len || s->left != 0 ||
                 produced != info.contentSize))
    r = WR_ECORRUPT;
  return r;
}

/* Reads and verifies the snapshot file at path in pieces, as
** wr_snapshot_read does without holding it whole, handing its content to
** sink (NULL: only verify). Returns 0 or a negative error. */
static int stream_file(const char* path, content_sink_fn sink, void* ctx,
                       uint64_t* size_bytes, uint32_t* checksum) {
  stream_t s;
  uv_fs_t req;
  uint64_t size;
  char* out;
  int r;

  memset(&s, 0, sizeof(s));
  s.fd = wr_fs_open_regular(path, &size);
  if (s.fd < 0) return s.fd;
  s.left = size;
  s.in = malloc(STREAM_IN_BYTES);
  out = malloc(STREAM_OUT_BYTES);
  if (s.in == NULL || out == NULL) {
    r = WR_ENOMEM;
  } else {
    r = stream_fill(&s);
    if (r >= 0 && (s.in_len < WR_SNAPSHOT_HEADER_BYTES ||
                   memcmp(s.in, magic, sizeof(magic)) != 0))
      r = s.in_len < sizeof(magic) ? WR_ETRUNCATED : WR_EMAGIC;
    else if (r >= 0 && read_u32le((const unsigned char*) s.in + 4) !=
                           WR_SNAPSHOT_VERSION)
      r = WR_EVERSION;
    else if (r >= 0)
      r = stream_frame(&s, size, out, sink, ctx);
  }
  free(out);
  free(s.in);
  uv_fs_close(NULL, &req, s.fd, NULL);
  uv_fs_req_cleanup(&req);
  if (r < 0) return r;
  *size_bytes = size;
  *checksum = read_u32le(s.tail);
  return 0;
}

int wr_snapshot_verify(const char* path, uint64_t* size_bytes,
                       uint32_t* checksum) {
  return stream_file(path, NULL, NULL, size_bytes, checksum);
}

/* The files of one wr_snapshot_verify_many call, taken in turn by its
** threads. */
typedef struct {
  const char* const* paths;
  size_t n, next;
  uv_mutex_t lock;
  uint64_t* sizes;
  uint32_t* checksums;
  int* results;
} verify_many_t;

static void verify_thread(void* arg) {
  verify_many_t* v = arg;
  for (;;) {
    size_t i;
    uv_mutex_lock(&v->lock);
    i = v->next++;
    uv_mutex_unlock(&v->lock);
    if (i >= v->n) return;
    v->results[i] = wr_snapshot_verify(v->paths[i], &v->sizes[i],
                                       &v->checksums[i]);
  }
}

int wr_snapshot_verify_many(const char* const* paths, size_t n,
                            unsigned threads, uint64_t* sizes,
                            uint32_t* checksums, int* results) {
  verify_many_t v;
  uv_thread_t tids[WR_SNAPSHOT_VERIFY_THREADS];
  unsigned started = 0, t;
  v.paths = paths;
  v.n = n;
  v.next = 0;
  v.sizes = sizes;
  v.checksums = checksums;
  v.results = results;
  if (uv_mutex_init(&v.lock) != 0) return WR_ENOMEM;
  if (threads > WR_SNAPSHOT_VERIFY_THREADS) threads = WR_SNAPSHOT_VERIFY_THREADS;
  if (threads > n) threads = (unsigned) n;
  /* The calling thread verifies too: with no thread started, it does all. */
  for (t = 1; t < threads; t++) {
    if (uv_thread_create(&tids[started], verify_thread, &v) != 0) break;
    started++;
  }
  verify_thread(&v);
  for (t = 0; t < started; t++) uv_thread_join(&tids[t]);
  uv_mutex_destroy(&v.lock);
  return 0;
}

/* Appends len bytes of data to the file descriptor *ctx. */
static int write_fd(void* ctx, const char* data, size_t len) {
  uv_fs_t req;
  uv_buf_t buf;
  int fd = *(int*) ctx, r;
  while (len > 0) {
    buf = uv_buf_init((char*) data, (unsigned int) len);
    r = uv_fs_write(NULL, &req, fd, &buf, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (r < 0) return r;
    data += r;
    len -= (size_t) r;
  }
  return 0;
}

int wr_snapshot_extract(const char* path, const char* dst_path,
                        uint64_t* size_bytes, uint32_t* checksum) {
  uv_fs_t req;
  int fd, r, closed;
  fd = uv_fs_open(NULL, &req, dst_path, O_WRONLY | O_CREAT | O_TRUNC, 0600,
                  NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return fd;
  r = stream_file(path, write_fd, &fd, size_bytes, checksum);
  closed = uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  return r < 0 ? r : closed < 0 ? closed : 0;
}

/* -- Asynchronous write on the libuv thread pool ------------------------- */

static void write_work(uv_work_t* work) {
  wr_snapshot_write_t* req = work->data;
  uint64_t start = uv_hrtime();
  if (req->src_path != NULL) {
    size_t len;
    req->status = wr_fs_read_all(req->src_path, &req->bytes, &len);
    if (req->status < 0) return;
    req->parts[0].data = req->bytes;
    req->parts[0].len = len;
    req->n_parts = 1;
    req->len = len;
  }
  req->status = wr_snapshot_write_parts(req->path, req->parts, req->n_parts,
                                        &req->size_bytes, &req->checksum);
  req->duration_ns = uv_hrtime() - start;
}

static void write_after(uv_work_t* work, int status) {
  wr_snapshot_write_t* req = work->data;
  free(req->path);
  free(req->bytes);
  free(req->parts);
  free(req->src_path);
  req->path = NULL;
  req->bytes = NULL;
  req->parts = NULL;
  req->src_path = NULL;
  if (status < 0) req->status = status;  /* UV_ECANCELED */
  req->cb(req, req->status);
}

/* Starts writing the n parts (the array is copied; with copy, their bytes
** too, joined, else borrowed), or, with src_path, the bytes of that file
** (read on the thread pool; n is 0). */
static int write_start(uv_loop_t* loop, wr_snapshot_write_t* req,
                       const char* path, const wr_snapshot_part_t* parts,
                       size_t n, wr_snapshot_write_cb cb, int copy,
                       const char* src_path) {
  size_t i, len = 0;
  int r;
  for (i = 0; i < n; i++) len += parts[i].len;
  req->src_path = src_path != NULL ? strdup(src_path) : NULL;
  req->path = strdup(path);
  req->bytes = copy ? malloc(len ? len : 1) : NULL;
  req->parts = malloc((copy ? 1 : n ? n : 1) * sizeof(*req->parts));
  if (req->path == NULL || (copy && req->bytes == NULL) ||
      req->parts == NULL || (src_path != NULL && req->src_path == NULL)) {
    r = WR_ENOMEM;
    goto fail_alloc;
  }
  if (copy) {
    size_t at = 0;
    for (i = 0; i < n; i++) {
      memcpy(req->bytes + at, parts[i].data, parts[i].len);
      at += parts[i].len;
    }
    req->parts[0].data = req->bytes;
    req->parts[0].len = len;
    req->n_parts = 1;
  } else {
    if (n > 0) memcpy(req->parts, parts, n * sizeof(*parts));
    req->n_parts = n;
  }
  req->len = len;
  req->cb = cb;
  req->status = 0;
  req->size_bytes = 0;
  req->checksum = 0;
  req->duration_ns = 0;
  req->work.data = req;
  r = uv_queue_work(loop, &req->work, write_work, write_after);
  if (r < 0) goto fail_alloc;
  return 0;

fail_alloc:
  free(req->path);
  free(req->bytes);
  free(req->parts);
  free(req->src_path);
  req->path = NULL;
  req->bytes = NULL;
  req->parts = NULL;
  req->src_path = NULL;
  return r;
}

int wr_snapshot_write_start(uv_loop_t* loop, wr_snapshot_write_t* req,
                            const char* path, const void* data, size_t len,
                            wr_snapshot_write_cb cb) {
  wr_snapshot_part_t part;
  part.data = data;
  part.len = len;
  return write_start(loop, req, path, &part, 1, cb, 1, NULL);
}

int wr_snapshot_write_start_borrowed(uv_loop_t* loop,
                                     wr_snapshot_write_t* req,
                                     const char* path, const void* data,
                                     size_t len, wr_snapshot_write_cb cb) {
  wr_snapshot_part_t part;
  part.data = data;
  part.len = len;
  return write_start(loop, req, path, &part, 1, cb, 0, NULL);
}

int wr_snapshot_write_start_parts(uv_loop_t* loop, wr_snapshot_write_t* req,
                                  const char* path,
                                  const wr_snapshot_part_t* parts, size_t n,
                                  wr_snapshot_write_cb cb) {
  return write_start(loop, req, path, parts, n, cb, 0, NULL);
}

int wr_snapshot_write_file_start(uv_loop_t* loop, wr_snapshot_write_t* req,
                                 const char* path, const char* src_path,
                                 wr_snapshot_write_cb cb) {
  return write_start(loop, req, path, NULL, 0, cb, 0, src_path);
}
