/*
** Fuzz target: the frame reader (engine/frame.c). The input is a byte
** stream fed in pieces whose sizes come from the input's first byte, so
** frames split across reads are covered too.
*/
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

static void on_frame(wr_frame_reader_t* r, const char* payload, size_t len,
                     int status) {
  size_t* total = r->data;
  (void) payload;
  (void) status;
  *total += len;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wr_frame_reader_t r;
  size_t total = 0, at = 1, step;
  if (size == 0) return 0;
  step = (size_t) data[0] % 17 + 1;
  wr_frame_reader_init(&r, on_frame);
  r.data = &total;
  while (at < size) {
    size_t n = size - at < step ? size - at : step;
    if (wr_frame_reader_feed(&r, (const char*) data + at, n) != 0) break;
    at += n;
  }
  wr_frame_reader_close(&r);
  return 0;
}
