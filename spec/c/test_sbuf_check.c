/* The string.buffer format check: what string.buffer reads passes, counts
** that the bytes do not back, deep nesting and odd tags do not. The bytes
** are in string.buffer's format (LuaJIT 2.1). */
#include <string.h>

#include "harness.h"
#include "sbuf_check.h"

#define CHECK_OK(s) \
  CHECK(wr_sbuf_check(s, sizeof(s) - 1, WR_SBUF_MAX_DEPTH) == 0)
#define CHECK_BAD(s) \
  CHECK(wr_sbuf_check(s, sizeof(s) - 1, WR_SBUF_MAX_DEPTH) < 0)

static void accepts_what_string_buffer_reads(void) {
  CHECK_OK("\x00");                          /* nil */
  CHECK_OK("\x23" "abc");                    /* "abc" */
  CHECK_OK("\x06\x2a\x00\x00\x00");          /* 42 as an integer */
  CHECK_OK("\x07\x00\x00\x00\x00\x00\x00\xf8\x3f");  /* 1.5 */
  /* { 1, 2, t = "x" }: array from 1 of 3 slots, one hash entry. */
  CHECK_OK("\x0d\x03\x01\x06\x01\x00\x00\x00\x06\x02\x00\x00\x00"
           "\x21" "t" "\x21" "x");
  CHECK_OK("\x08");                          /* {} */
}

static void refuses_counts_the_bytes_do_not_back(void) {
  /* An array of 2^27 slots in a few bytes. */
  CHECK_BAD("\x0a\xff\x00\x00\x00\x08\x00");
  /* A hash of 200 entries holding one. */
  CHECK_BAD("\x09\xc8\x21" "a" "\x00");
  /* A string longer than what follows. */
  CHECK_BAD("\x25" "abc");
  CHECK_BAD("\x06\x01\x00");                 /* a cut integer */
}

static void refuses_deep_nesting(void) {
  char deep[2 * (WR_SBUF_MAX_DEPTH + 2) + 1];
  int i;
  for (i = 0; i < WR_SBUF_MAX_DEPTH + 2; i++) {
    deep[2 * i] = '\x0a';                    /* array of one slot */
    deep[2 * i + 1] = '\x01';
  }
  deep[sizeof(deep) - 1] = '\x00';
  CHECK(wr_sbuf_check(deep, sizeof(deep), WR_SBUF_MAX_DEPTH) < 0);
  CHECK(wr_sbuf_check(deep, sizeof(deep), WR_SBUF_MAX_DEPTH + 3) == 0);
}

static void refuses_odd_tags_and_leftovers(void) {
  CHECK_BAD("\x04\x01\x00\x00\x00");         /* light userdata */
  CHECK_BAD("\x0f\x00");                     /* dictionary string */
  CHECK_BAD("\x0e\x00\x08");                 /* dictionary metatable */
  CHECK_BAD("\x13");                         /* reserved */
  CHECK_BAD("\x00\x00");                     /* bytes after the value */
  CHECK_BAD("\x09\x01\x00\x02");             /* a nil key */
  CHECK(wr_sbuf_check("", 0, WR_SBUF_MAX_DEPTH) < 0);
}

const wr_test_t wr_sbuf_check_tests[] = {
  { "sbuf_check: accepts what string.buffer reads",
    accepts_what_string_buffer_reads },
  { "sbuf_check: refuses counts the bytes do not back",
    refuses_counts_the_bytes_do_not_back },
  { "sbuf_check: refuses deep nesting", refuses_deep_nesting },
  { "sbuf_check: refuses odd tags and leftovers",
    refuses_odd_tags_and_leftovers },
  { NULL, NULL }
};
