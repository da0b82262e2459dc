/*
** The string.buffer format check (see sbuf_check.h). The tags and the
** variable-length counts (1, 2 or 5 bytes) are those of LuaJIT 2.1's
** lj_serialize.c.
*/
#include "sbuf_check.h"

#include <stdint.h>

#include "error.h"

enum {
  TAG_NIL, TAG_FALSE, TAG_TRUE, TAG_NULL, TAG_LIGHTUD32, TAG_LIGHTUD64,
  TAG_INT, TAG_NUM,
  TAG_TAB,                    /* +1: hash part, +2: array, +4: array from 1 */
  TAG_DICT_MT = TAG_TAB + 6,
  TAG_DICT_STR,
  TAG_INT64, TAG_UINT64, TAG_COMPLEX,
  TAG_STR = 0x20              /* + length of the string */
};

/* Reads a count; returns the position after it or NULL past end. */
static const uint8_t* read_u124(const uint8_t* r, const uint8_t* end,
                                uint32_t* v) {
  if (r >= end) return NULL;
  *v = *r++;
  if (*v < 0xe0) return r;
  if (*v != 0xff) {
    if (r >= end) return NULL;
    *v = ((*v & 0x1f) << 8) + *r++ + 0xe0;
    return r;
  }
  if (end - r < 4) return NULL;
  *v = (uint32_t) r[0] | (uint32_t) r[1] << 8 | (uint32_t) r[2] << 16 |
       (uint32_t) r[3] << 24;
  return r + 4;
}

/* Whether r holds a number that is NaN (not a valid table key). */
static int is_nan_number(const uint8_t* r, const uint8_t* end) {
  uint64_t bits = 0;
  int i;
  if (*r != TAG_NUM || end - r < 9) return 0;
  for (i = 8; i >= 1; i--) bits = bits << 8 | r[i];
  return (bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull &&
         (bits & 0x000fffffffffffffull) != 0;
}

/* Checks one value at r; returns the position after it or NULL. */
static const uint8_t* check_value(const uint8_t* r, const uint8_t* end,
                                  int depth) {
  uint32_t tp, narray = 0, nhash = 0, i;
  r = read_u124(r, end, &tp);
  if (r == NULL) return NULL;
  if (tp >= TAG_STR) {
    if (tp - TAG_STR > (size_t) (end - r)) return NULL;
    return r + (tp - TAG_STR);
  }
  switch (tp) {
    case TAG_NIL: case TAG_FALSE: case TAG_TRUE: case TAG_NULL:
      return r;
    case TAG_INT:
      return end - r >= 4 ? r + 4 : NULL;
    case TAG_NUM: case TAG_INT64: case TAG_UINT64:
      return end - r >= 8 ? r + 8 : NULL;
    case TAG_COMPLEX:
      return end - r >= 16 ? r + 16 : NULL;
    default:
      break;
  }
  if (tp < TAG_TAB || tp >= TAG_DICT_MT || depth <= 0) return NULL;
  if (tp >= TAG_TAB + 2 && (r = read_u124(r, end, &narray)) == NULL)
    return NULL;
  if ((tp & 1) && (r = read_u124(r, end, &nhash)) == NULL) return NULL;
  /* Slot 0 is not sent when the array starts at index 1. */
  if (tp >= TAG_TAB + 4 && narray > 0) narray--;
  if (narray > (size_t) (end - r) || nhash > (size_t) (end - r) / 2)
    return NULL;
  for (i = 0; i < narray && r != NULL; i++)
    r = check_value(r, end, depth - 1);
  for (i = 0; i < nhash && r != NULL; i++) {
    if (r < end && (*r == TAG_NIL || is_nan_number(r, end))) return NULL;
    r = check_value(r, end, depth - 1);
    if (r != NULL) r = check_value(r, end, depth - 1);
  }
  return r;
}

int wr_sbuf_check(const void* p, size_t len, int max_depth) {
  const uint8_t* begin = p;
  const uint8_t* end = begin + len;
  const uint8_t* r = check_value(begin, end, max_depth);
  return r == end ? 0 : WR_EDECODE;
}
