/*
** Checks of LuaJIT's string.buffer serialization format before decoding.
**
** string.buffer's decoder trusts the counts it reads: a table header that
** claims 2^27 array slots is allocated before a single element is read,
** nesting has no limit but the C stack, and an error raised while decoding
** on a trace crashes some LuaJIT 2.1 releases. wr_serialized_check walks
** the bytes without building anything and accepts only what the decoder
** can turn into values without running out of bytes: every count is
** backed by at least as many bytes that follow, nesting stays within
** WR_SERIALIZED_MAX_DEPTH (the encoder's own limit), table keys are never
** nil or NaN, and only the tags weir writes appear (no dictionaries, no
** light userdata). Memory for what passes is bounded by a small multiple
** of its length.
**
** The format (LuaJIT's lj_serialize.c): a value starts with a tag, a
** varint "U124" (< 0xe0: one byte; < 0x1fe0: two; else 0xff and four
** bytes, little-endian). 0 nil, 1 false, 2 true, 3 NULL, 6 int32, 7
** double, 8..13 a table (bit 0: a hash count follows, bit 1: an array
** count follows, bit 2: the array starts at index 1, not 0), 0x10..0x12 an
** int64, uint64 or complex cdata, >= 0x20 a string of (tag - 0x20) bytes.
*/
#ifndef WEIR_SERIALIZED_H
#define WEIR_SERIALIZED_H

#include <stddef.h>

#define WR_SERIALIZED_MAX_DEPTH 100  /* tables within tables, as encoded */

/* Why a check failed: a static message and the offset (bytes) it is at. */
typedef struct {
  const char* message;  /* static, e.g. "table count exceeds its bytes" */
  size_t offset;        /* bytes from the start of data */
} wr_serialized_error_t;

/* Checks one serialized value at the start of data (len bytes). On success
** returns 0 and sets *used to the value's length in bytes (the rest of data
** is not looked at). On failure returns WR_EDECODE and fills *err. */
int wr_serialized_check(const char* data, size_t len, size_t* used,
                        wr_serialized_error_t* err);

#endif
