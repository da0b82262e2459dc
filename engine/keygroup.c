/*
** Key-group hashing and range assignment (see keygroup.h).
** The range arithmetic follows Flink's KeyGroupRangeAssignment so that the
** ranges of all subtasks cover 0 .. max_parallelism-1 exactly once.
*/
#include "keygroup.h"

#include <uv.h>

static uint32_t rotl32(uint32_t x, int r) {
  return (x << r) | (x >> (32 - r));
}

/* MurmurHash3_x86_32, seed 0, of the bytes of a then those of b (a may be
** empty: keys hashed whole are b, read a block at a time). */
static uint32_t murmur_of_two(const uint8_t* a, size_t alen,
                              const uint8_t* b, size_t blen) {
  const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
  size_t len = alen + blen, i = 0, j;
  uint32_t h = 0, k;
#define BYTE_AT(n) ((uint32_t) ((n) < alen ? a[n] : b[(n) - alen]))
  for (; i + 4 <= len; i += 4) {
    if (i >= alen) {
      j = i - alen;
      k = (uint32_t) b[j] | (uint32_t) b[j + 1] << 8 |
          (uint32_t) b[j + 2] << 16 | (uint32_t) b[j + 3] << 24;
    } else {
      k = BYTE_AT(i) | BYTE_AT(i + 1) << 8 | BYTE_AT(i + 2) << 16 |
          BYTE_AT(i + 3) << 24;
    }
    k *= c1;
    k = rotl32(k, 15);
    k *= c2;
    h ^= k;
    h = rotl32(h, 13);
    h = h * 5 + 0xe6546b64u;
  }
  k = 0;
  switch (len - i) {
    case 3: k ^= BYTE_AT(i + 2) << 16; /* fall through */
    case 2: k ^= BYTE_AT(i + 1) << 8;  /* fall through */
    case 1:
      k ^= BYTE_AT(i);
      k *= c1;
      k = rotl32(k, 15);
      k *= c2;
      h ^= k;
  }
#undef BYTE_AT
  h ^= (uint32_t) len;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

uint32_t wr_keygroup_hash(const void* key, size_t len) {
  return murmur_of_two(NULL, 0, key, len);
}

/* The key group of hash h: h modulo max_parallelism. A power of two, as
** the default 128, needs no division. */
static uint32_t key_group_of_hash(uint32_t h, uint32_t max_parallelism) {
  if ((max_parallelism & (max_parallelism - 1)) == 0)
    return h & (max_parallelism - 1);
  return h % max_parallelism;
}

uint32_t wr_keygroup_of(const void* key, size_t len,
                        uint32_t max_parallelism) {
  return key_group_of_hash(wr_keygroup_hash(key, len), max_parallelism);
}

uint32_t wr_keygroup_of_string(const char* s, size_t len,
                               uint32_t max_parallelism) {
  uint8_t prefix[24], digits[20];
  size_t n = 0, d = 0, v = len;
  do {
    digits[d++] = (uint8_t) ('0' + v % 10);
    v /= 10;
  } while (v > 0);
  prefix[n++] = 's';
  while (d > 0) prefix[n++] = digits[--d];
  prefix[n++] = ':';
  return key_group_of_hash(murmur_of_two(prefix, n, (const uint8_t*) s, len),
                           max_parallelism);
}

int wr_keygroup_range(uint32_t max_parallelism, uint32_t parallelism,
                      uint32_t index, uint32_t* start, uint32_t* end) {
  uint64_t maxp = max_parallelism, p = parallelism;
  if (parallelism < 1 || parallelism > max_parallelism || index >= parallelism)
    return UV_EINVAL;
  *start = (uint32_t) ((index * maxp + p - 1) / p);
  *end = (uint32_t) (((index + 1) * maxp + p - 1) / p - 1);
  return 0;
}

uint32_t wr_keygroup_subtask(uint32_t max_parallelism, uint32_t parallelism,
                             uint32_t key_group) {
  return (uint32_t) ((uint64_t) key_group * parallelism / max_parallelism);
}
