/*
** Error codes of the weir engine.
** Every engine function returns 0 on success or a negative code. Codes from
** the operating system are libuv's (UV_ENOENT, UV_ENOSPC, ...); weir's own
** codes live below WR__ERR_BASE and are listed once, in WR_ERRNO_MAP.
*/
#ifndef WEIR_ERROR_H
#define WEIR_ERROR_H

#define WR__ERR_BASE (-30000)

/* X(name, message) */
#define WR_ERRNO_MAP(X)                                                       \
  X(EMAGIC, "not a weir snapshot")                                            \
  X(EVERSION, "unsupported snapshot format version")                          \
  X(ETRUNCATED, "snapshot is truncated")                                      \
  X(ECORRUPT, "snapshot is damaged (checksum or frame error)")                \
  X(ECOMPRESS, "lz4 compression failed")                                      \
  X(ENOMEM, "out of memory")                                                  \
  X(ENOTFILE, "not a regular file")                                           \
  X(EDECODE, "cannot be decoded")                                             \
  X(EINPUT, "no such input channel")                                          \
  X(EBARRIER, "barrier arrived twice on one channel")                         \
  X(EOBSOLETE, "barrier is older than the current checkpoint")              \
  X(EAUTH, "the peer did not prove it knows the job's secret")               \
  X(ERANDOM, "the system's random source failed")

typedef enum {
  WR__ERR_FIRST = WR__ERR_BASE,
#define WR_ERR_ENUM(name, msg) WR_##name,
  WR_ERRNO_MAP(WR_ERR_ENUM)
#undef WR_ERR_ENUM
  WR__ERR_LAST
} wr_errno_t;

/* Returns a static message for an engine or libuv error code. */
const char* wr_strerror(int err);

/* Returns the static symbolic name ("WR_ECORRUPT", "ENOENT") of a code. */
const char* wr_err_name(int err);

#endif
