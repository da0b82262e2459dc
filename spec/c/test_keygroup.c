/* Key-group hashing and range assignment. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "keygroup.h"

static void hash_matches_murmur3_reference(void) {
  /* Reference values of MurmurHash3_x86_32 with seed 0. */
  CHECK(wr_keygroup_hash("", 0) == 0u);
  CHECK(wr_keygroup_hash("hello", 5) == 0x248bfa47u);
  CHECK(wr_keygroup_hash("The quick brown fox jumps over the lazy dog", 43) ==
        0x2e4ff723u);
}

static void ranges_cover_every_key_group_once(void) {
  uint32_t maxp, p, i, start, end;
  for (maxp = 1; maxp <= 300; maxp += 37) {
    for (p = 1; p <= maxp && p <= 17; p++) {
      uint32_t next = 0;
      for (i = 0; i < p; i++) {
        CHECK(wr_keygroup_range(maxp, p, i, &start, &end) == 0);
        CHECK(start == next);
        CHECK(end >= start);
        next = end + 1;
      }
      CHECK(next == maxp);
    }
  }
}

static void subtask_owns_its_range(void) {
  uint32_t p, i, kg, start, end;
  for (p = 1; p <= 9; p++) {
    for (i = 0; i < p; i++) {
      wr_keygroup_range(128, p, i, &start, &end);
      for (kg = start; kg <= end; kg++)
        CHECK(wr_keygroup_subtask(128, p, kg) == i);
    }
  }
}

static void range_rejects_bad_arguments(void) {
  uint32_t start, end;
  CHECK(wr_keygroup_range(128, 0, 0, &start, &end) < 0);
  CHECK(wr_keygroup_range(4, 5, 0, &start, &end) < 0);
  CHECK(wr_keygroup_range(128, 2, 2, &start, &end) < 0);
}

static void key_group_is_below_max_parallelism(void) {
  char key[16];
  int i;
  for (i = 0; i < 1000; i++) {
    int n = snprintf(key, sizeof(key), "k%d", i);
    CHECK(wr_keygroup_of(key, (size_t) n, 7) < 7);
  }
}

static void string_key_group_matches_its_encoding(void) {
  /* Lengths 0..300 (prefixes "s0:" to "s300:" of 3 to 5 bytes, so every
  ** alignment of the key's bytes in the hash's 4-byte blocks), bytes 0 to
  ** 255, max_parallelism a power of two or not. */
  static const uint32_t maxps[] = { 1, 7, 128, 1000, 32768 };
  char key[301], enc[320];
  size_t len, m;
  for (len = 0; len <= 300; len++) {
    key[len] = (char) (len * 37 % 256);
    int n = snprintf(enc, sizeof(enc), "s%zu:", len);
    memcpy(enc + n, key, len);
    for (m = 0; m < sizeof(maxps) / sizeof(maxps[0]); m++) {
      CHECK(wr_keygroup_of_string(key, len, maxps[m]) ==
            wr_keygroup_of(enc, (size_t) n + len, maxps[m]));
    }
  }
}

const wr_test_t wr_keygroup_tests[] = {
  { "keygroup: string key group matches its encoding's",
    string_key_group_matches_its_encoding },
  { "keygroup: hash matches murmur3 reference", hash_matches_murmur3_reference },
  { "keygroup: ranges cover every key group once",
    ranges_cover_every_key_group_once },
  { "keygroup: subtask owns its range", subtask_owns_its_range },
  { "keygroup: range rejects bad arguments", range_rejects_bad_arguments },
  { "keygroup: key group is below max parallelism",
    key_group_is_below_max_parallelism },
  { NULL, NULL }
};
