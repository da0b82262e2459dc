/*
** A check of LuaJIT's string.buffer serialization format before decoding
** bytes that no authenticated peer vouches for. string.buffer's decoder
** trusts the counts it reads: a table header may claim 2^32 array slots,
** which are allocated before a single element is read, and nested tables
** recurse without a bound. The check walks the bytes without allocating
** and accepts them only when every string and every number fits in the
** bytes, every table's array and hash counts are backed by at least one
** byte per slot (two per hash entry) still to come, and tables nest at
** most max_depth deep. What it accepts decodes into objects whose memory
** is within a small constant factor of the byte count.
** Tags a weir message never holds (light userdata, dictionary references,
** the reserved tags) are refused.
*/
#ifndef WEIR_SBUF_CHECK_H
#define WEIR_SBUF_CHECK_H

#include <stddef.h>

#define WR_SBUF_MAX_DEPTH 32  /* default bound on nested tables */

/* Checks that the len bytes at p hold exactly one encoded value within the
** bounds above. Returns 0 or WR_EDECODE. */
int wr_sbuf_check(const void* p, size_t len, int max_depth);

#endif
