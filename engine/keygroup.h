/*
** Key groups: the unit of keyed-state partitioning.
** key_group = murmur3_32(canonical key bytes) % max_parallelism, and subtask
** i of p owns the contiguous range [start, end] given by wr_keygroup_range.
** The hash depends only on the bytes, so it is stable across runs, machines
** and endianness. The canonical byte encoding of a key is built by the Lua
** layer (lua/weir/key.lua).
*/
#ifndef WEIR_KEYGROUP_H
#define WEIR_KEYGROUP_H

#include <stddef.h>
#include <stdint.h>

/* MurmurHash3_x86_32 of len bytes with seed 0 (Austin Appleby, public
** domain), read little-endian byte by byte so every platform agrees. */
uint32_t wr_keygroup_hash(const void* key, size_t len);

/* Returns the key group (0 .. max_parallelism-1) of the canonical key
** bytes; max_parallelism must be >= 1. */
uint32_t wr_keygroup_of(const void* key, size_t len, uint32_t max_parallelism);

/* Returns the key group of the string key s of len bytes: that of its
** canonical encoding "s<len>:<s>" (lua/weir/key.lua), without the caller
** building it. For the Lua router through the FFI
** (core.key_group_string_fn). */
uint32_t wr_keygroup_of_string(const char* s, size_t len,
                               uint32_t max_parallelism);

/* Computes the key groups [*start, *end] owned by subtask `index` of
** `parallelism` subtasks, as Flink's KeyGroupRangeAssignment does:
** start = ceil(index * maxp / p), end = ceil((index + 1) * maxp / p) - 1.
** Returns 0, or UV_EINVAL unless 1 <= parallelism <= max_parallelism and
** index < parallelism. */
int wr_keygroup_range(uint32_t max_parallelism, uint32_t parallelism,
                      uint32_t index, uint32_t* start, uint32_t* end);

/* Returns the subtask index (0 .. parallelism-1) that owns key_group:
** key_group * parallelism / max_parallelism. */
uint32_t wr_keygroup_subtask(uint32_t max_parallelism, uint32_t parallelism,
                             uint32_t key_group);

#endif
