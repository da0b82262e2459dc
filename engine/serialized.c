/*
** Checks of the string.buffer serialization format (see serialized.h). The
** walk is recursive in tables only, at most WR_SERIALIZED_MAX_DEPTH deep.
*/
#include "serialized.h"

#include <stdint.h>
#include <string.h>

#include "error.h"

/* Tags of lj_serialize.c. */
enum {
  TAG_NIL = 0x00, TAG_FALSE, TAG_TRUE, TAG_NULL, TAG_LIGHTUD32,
  TAG_LIGHTUD64, TAG_INT, TAG_NUM, TAG_TAB = 0x08, TAG_TAB_LAST = 0x0d,
  TAG_INT64 = 0x10, TAG_UINT64, TAG_COMPLEX, TAG_STR = 0x20
};

/* LuaJIT's largest array part (LJ_MAX_ASIZE) and hash part (2^LJ_MAX_HBITS
** nodes): larger counts raise "table overflow" in the decoder. */
#define MAX_ARRAY ((uint32_t) 1 << 27)
#define MAX_HASH ((uint32_t) 1 << 26)

typedef struct {
  const unsigned char* p;    /* next byte */
  const unsigned char* end;  /* one past the last byte */
  const unsigned char* start;
  wr_serialized_error_t* err;
} reader_t;

static int fail(reader_t* r, const char* message) {
  r->err->message = message;
  r->err->offset = (size_t) (r->p - r->start);
  return WR_EDECODE;
}

static size_t left(const reader_t* r) {
  return (size_t) (r->end - r->p);
}

/* Reads a U124 varint into *v. */
static int read_u124(reader_t* r, uint32_t* v) {
  uint32_t b;
  if (left(r) < 1) return fail(r, "value ends early");
  b = *r->p++;
  if (b < 0xe0) {
    *v = b;
  } else if (b != 0xff) {
    if (left(r) < 1) return fail(r, "value ends early");
    *v = ((b & 0x1f) << 8) + *r->p++ + 0xe0;
  } else {
    if (left(r) < 4) return fail(r, "value ends early");
    *v = (uint32_t) r->p[0] | (uint32_t) r->p[1] << 8 |
         (uint32_t) r->p[2] << 16 | (uint32_t) r->p[3] << 24;
    r->p += 4;
  }
  return 0;
}

static int skip(reader_t* r, size_t n) {
  if (left(r) < n) return fail(r, "value ends early");
  r->p += n;
  return 0;
}

static int check_value(reader_t* r, int depth, int is_key);

/* A table whose tag tp has just been read. */
static int check_table(reader_t* r, uint32_t tp, int depth) {
  uint32_t narray = 0, nhash = 0, i;
  int e;
  if (depth >= WR_SERIALIZED_MAX_DEPTH)
    return fail(r, "tables nested too deep");
  if (tp >= TAG_TAB + 2 && (e = read_u124(r, &narray)) != 0) return e;
  if ((tp & 1) && (e = read_u124(r, &nhash)) != 0) return e;
  /* Array slot 0 is only encoded when bit 2 is clear. */
  if (tp >= TAG_TAB + 4 && narray > 0) narray--;
  /* Every element takes one byte at least, every pair two: a count that
  ** the bytes left cannot back is a lie, caught before the decoder would
  ** allocate for it. */
  if (narray > MAX_ARRAY || nhash > MAX_HASH ||
      (uint64_t) narray + 2 * (uint64_t) nhash > left(r))
    return fail(r, "table counts exceed the bytes left");
  for (i = 0; i < narray; i++)
    if ((e = check_value(r, depth + 1, 0)) != 0) return e;
  for (i = 0; i < nhash; i++) {
    if ((e = check_value(r, depth + 1, 1)) != 0) return e;
    if ((e = check_value(r, depth + 1, 0)) != 0) return e;
  }
  return 0;
}

static int check_value(reader_t* r, int depth, int is_key) {
  uint32_t tp;
  int e = read_u124(r, &tp);
  if (e != 0) return e;
  if (tp >= TAG_STR) return skip(r, tp - TAG_STR);
  switch (tp) {
    case TAG_NIL:
      return is_key ? fail(r, "table key is nil") : 0;
    case TAG_FALSE: case TAG_TRUE: case TAG_NULL:
      return 0;
    case TAG_INT:
      return skip(r, 4);
    case TAG_NUM: {
      uint64_t u;
      double d;
      if (left(r) < 8) return fail(r, "value ends early");
      memcpy(&u, r->p, 8);
      memcpy(&d, &u, 8);
      /* The decoder turns any NaN pattern into NaN: no table key. */
      if (is_key && d != d) return fail(r, "table key is NaN");
      return skip(r, 8);
    }
    case TAG_INT64: case TAG_UINT64:
      return skip(r, 8);
    case TAG_COMPLEX:
      return skip(r, 16);
    default:
      if (tp >= TAG_TAB && tp <= TAG_TAB_LAST)
        return check_table(r, tp, depth);
      /* Light userdata, dictionary references and unknown tags: weir never
      ** writes them. */
      r->p--;
      return fail(r, "unexpected type tag");
  }
}

int wr_serialized_check(const char* data, size_t len, size_t* used,
                        wr_serialized_error_t* err) {
  reader_t r;
  int e;
  r.start = r.p = (const unsigned char*) data;
  r.end = r.p + len;
  r.err = err;
  e = check_value(&r, 0, 0);
  if (e != 0) return e;
  *used = (size_t) (r.p - r.start);
  return 0;
}
