/*
** Snapshot files: the on-disk container of every checkpoint file (operator
** state and manifests).
**
** Layout: "WEIR" | u32 little-endian format version | one lz4 frame with
** block checksums, content size and content checksum (xxh32) on. The
** content checksum doubles as the file's checksum in the manifest.
** Invariants: a file is published only by rename after fsync; every read
** verifies the magic, the version and every lz4 checksum, and reports
** WR_EMAGIC, WR_EVERSION, WR_ETRUNCATED or WR_ECORRUPT rather than return
** unverified bytes.
*/
#ifndef WEIR_SNAPSHOT_H
#define WEIR_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define WR_SNAPSHOT_VERSION 1u  /* bump on any incompatible change */
#define WR_SNAPSHOT_HEADER_BYTES 8
/* lz4's greatest compression ratio: a frame whose header declares more
** content than its blocks can hold at this ratio is damaged. */
#define WR_SNAPSHOT_MAX_RATIO 255u

/* Compresses len bytes of data into a snapshot image. On success *out is a
** malloc'd buffer of *out_len bytes the caller frees, and *checksum the
** content checksum. Returns 0, WR_ENOMEM or WR_ECOMPRESS. */
int wr_snapshot_encode(const void* data, size_t len, char** out,
                       size_t* out_len, uint32_t* checksum);

/* A piece of a snapshot's content: the content is its parts one after the
** other, compressed as they come (they are never joined in memory). */
typedef struct {
  const void* data;
  size_t len;  /* bytes */
} wr_snapshot_part_t;

/* Like wr_snapshot_encode, for content in n parts. The image is the same
** as that of the joined content. */
int wr_snapshot_encode_parts(const wr_snapshot_part_t* parts, size_t n,
                             char** out, size_t* out_len,
                             uint32_t* checksum);

/* Verifies and decompresses a snapshot image of image_len bytes. On success
** *data is a malloc'd buffer of *len bytes (caller frees) and *checksum the
** verified content checksum. The content size the frame declares is
** trusted only up to what the image can hold (WR_SNAPSHOT_MAX_RATIO).
** Returns 0 or WR_EMAGIC, WR_EVERSION, WR_ETRUNCATED, WR_ECORRUPT,
** WR_ENOMEM. */
int wr_snapshot_decode(const char* image, size_t image_len, char** data,
                       size_t* len, uint32_t* checksum);

/* Encodes data and writes it durably to path (path.tmp, fsync, rename, fsync
** of the directory). Reports the file's size in bytes and its checksum.
** Returns 0 or a negative error; path is untouched on error. */
int wr_snapshot_write(const char* path, const void* data, size_t len,
                      uint64_t* size_bytes, uint32_t* checksum);

/* Like wr_snapshot_write, for content in n parts. */
int wr_snapshot_write_parts(const char* path,
                            const wr_snapshot_part_t* parts, size_t n,
                            uint64_t* size_bytes, uint32_t* checksum);

/* Reads and verifies the snapshot file at path (see wr_snapshot_decode);
** *size_bytes is the file's size. Only a regular file is read
** (WR_ENOTFILE otherwise, see wr_fs_read_all). */
int wr_snapshot_read(const char* path, char** data, size_t* len,
                     uint64_t* size_bytes, uint32_t* checksum);

/* Verifies the snapshot file at path as wr_snapshot_read does (the same
** checks and errors), reading it a piece at a time: about 5 MiB of memory
** whatever its size. *size_bytes is the file's size, *checksum its content
** checksum. Returns 0 or a negative error. */
int wr_snapshot_verify(const char* path, uint64_t* size_bytes,
                       uint32_t* checksum);

/* The most threads wr_snapshot_verify_many runs. */
#define WR_SNAPSHOT_VERIFY_THREADS 16u

/* Verifies the n snapshot files paths[i] as wr_snapshot_verify does, on
** up to threads threads at once (the caller's among them; at most
** WR_SNAPSHOT_VERIFY_THREADS), and returns when all are done: results[i]
** is 0 with sizes[i] and checksums[i] set, or file i's negative error.
** Returns 0, or WR_ENOMEM when nothing could be verified. */
int wr_snapshot_verify_many(const char* const* paths, size_t n,
                            unsigned threads, uint64_t* sizes,
                            uint32_t* checksums, int* results);

/* Verifies the snapshot file at path as wr_snapshot_verify does, writing
** its content to dst_path as a plain file (created or truncated, mode
** 0600, not synced: a working copy, e.g. of a database's file) as it
** comes. The content never leaves C. Returns 0 or a negative error; on an
** error dst_path may hold part of the content. */
int wr_snapshot_extract(const char* path, const char* dst_path,
                        uint64_t* size_bytes, uint32_t* checksum);

/* -- Asynchronous write on the libuv thread pool ------------------------- */

typedef struct wr_snapshot_write_s wr_snapshot_write_t;
typedef void (*wr_snapshot_write_cb)(wr_snapshot_write_t* req, int status);

struct wr_snapshot_write_s {
  void* data;             /* free for the caller's use */
  uv_work_t work;         /* thread-pool request */
  char* path;             /* owned copy of the target path */
  char* bytes;            /* owned copy of the content, or NULL */
  wr_snapshot_part_t* parts;  /* owned array: the content, in parts */
  char* src_path;         /* owned: a file whose bytes are the content
                          ** (read on the thread pool), or NULL */
  size_t n_parts;
  size_t len;             /* content size in bytes */
  uint64_t size_bytes;    /* result: size of the written file */
  uint32_t checksum;      /* result: content checksum */
  int status;             /* result: 0 or a negative error */
  uint64_t duration_ns;   /* result: time spent compressing and writing */
  wr_snapshot_write_cb cb;
};

/* Copies path and data, then compresses and writes them durably on the
** thread pool; cb runs on the loop thread with the status. Returns 0, or a
** negative error and then cb never fires. req must stay alive until cb. */
int wr_snapshot_write_start(uv_loop_t* loop, wr_snapshot_write_t* req,
                            const char* path, const void* data, size_t len,
                            wr_snapshot_write_cb cb);

/* Like wr_snapshot_write_start, but data is not copied: the caller keeps
** its len bytes alive and unchanged until cb (for large snapshots, whose
** copy would cost the loop thread a pass over every byte). */
int wr_snapshot_write_start_borrowed(uv_loop_t* loop,
                                     wr_snapshot_write_t* req,
                                     const char* path, const void* data,
                                     size_t len, wr_snapshot_write_cb cb);

/* Like wr_snapshot_write_start_borrowed, for content in n parts: the array
** is copied, the parts' bytes are borrowed until cb. */
int wr_snapshot_write_start_parts(uv_loop_t* loop, wr_snapshot_write_t* req,
                                  const char* path,
                                  const wr_snapshot_part_t* parts, size_t n,
                                  wr_snapshot_write_cb cb);

/* Like wr_snapshot_write_start, with the bytes of the file at src_path as
** the content, read on the thread pool too (a file copied into a
** snapshot without its bytes passing through the caller). A src_path
** that cannot be read is the status cb gets. */
int wr_snapshot_write_file_start(uv_loop_t* loop, wr_snapshot_write_t* req,
                                 const char* path, const char* src_path,
                                 wr_snapshot_write_cb cb);

#endif
