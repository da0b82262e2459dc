/* The string.buffer format check (serialized.h): what string.buffer reads
** passes, counts that the bytes do not back, deep nesting and odd tags do
** not. The bytes are in string.buffer's format (LuaJIT 2.1). */
#include <string.h>

#include "harness.h"
#include "serialized.h"

/* Whether len bytes at s hold exactly one value the check accepts. */
static int one_value(const char* s, size_t len) {
  size_t used = 0;
  wr_serialized_error_t err;
  return wr_serialized_check(s, len, &used, &err) == 0 && used == len;
}

#define CHECK_OK(s) CHECK(one_value(s, sizeof(s) - 1))
#define CHECK_BAD(s) CHECK(!one_value(s, sizeof(s) - 1))

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
  char deep[2 * (WR_SERIALIZED_MAX_DEPTH + 2) + 1];
  int i;
  for (i = 0; i < WR_SERIALIZED_MAX_DEPTH + 2; i++) {
    deep[2 * i] = '\x0a';                    /* array of one slot */
    deep[2 * i + 1] = '\x01';
  }
  deep[sizeof(deep) - 1] = '\x00';
  CHECK(!one_value(deep, sizeof(deep)));
  /* Within the bound it passes. */
  CHECK(one_value(deep + 6, sizeof(deep) - 6));
}

static void refuses_odd_tags(void) {
  CHECK_BAD("\x04\x01\x00\x00\x00");         /* light userdata */
  CHECK_BAD("\x0f\x00");                     /* dictionary string */
  CHECK_BAD("\x0e\x00\x08");                 /* dictionary metatable */
  CHECK_BAD("\x13");                         /* reserved */
  CHECK_BAD("\x09\x01\x00\x02");             /* a nil key */
  CHECK(!one_value("", 0));
}

const wr_test_t wr_serialized_tests[] = {
  { "serialized: accepts what string.buffer reads",
    accepts_what_string_buffer_reads },
  { "serialized: refuses counts the bytes do not back",
    refuses_counts_the_bytes_do_not_back },
  { "serialized: refuses deep nesting", refuses_deep_nesting },
  { "serialized: refuses odd tags", refuses_odd_tags },
  { NULL, NULL }
};
