/* Length-prefixed frames: split and joined reads deliver whole frames. */
#include <string.h>

#include "harness.h"
#include "frame.h"

static char got[8][64];
static int frames;

static void collect(wr_frame_reader_t* r, const char* payload, size_t len,
                    int status) {
  (void) r;
  (void) status;
  if (frames < 8 && len < 64) {
    memcpy(got[frames], payload, len);
    got[frames][len] = '\0';
  }
  frames++;
}

static size_t encode(char* out, const char* s) {
  size_t n = strlen(s);
  wr_frame_header((uint32_t) n, (unsigned char*) out);
  memcpy(out + 4, s, n);
  return 4 + n;
}

static void delivers_frames_split_anywhere(void) {
  char stream[128];
  size_t len = 0, cut;
  len += encode(stream + len, "barrier");
  len += encode(stream + len, "");
  len += encode(stream + len, "records");
  for (cut = 0; cut <= len; cut++) {
    wr_frame_reader_t r;
    frames = 0;
    wr_frame_reader_init(&r, collect);
    CHECK(wr_frame_reader_feed(&r, stream, cut) == 0);
    CHECK(wr_frame_reader_feed(&r, stream + cut, len - cut) == 0);
    CHECK(frames == 3);
    CHECK(strcmp(got[0], "barrier") == 0 && got[1][0] == '\0' &&
          strcmp(got[2], "records") == 0);
    wr_frame_reader_close(&r);
  }
}

static void rejects_oversized_frame(void) {
  wr_frame_reader_t r;
  unsigned char header[4];
  wr_frame_header(WR_FRAME_MAX_BYTES + 1, header);
  frames = 0;
  wr_frame_reader_init(&r, collect);
  CHECK(wr_frame_reader_feed(&r, (const char*) header, 4) < 0);
  CHECK(frames == 0);
  wr_frame_reader_close(&r);
}

static void rejects_frame_over_owner_limit(void) {
  char stream[64];
  wr_frame_reader_t r;
  CHECK(encode(stream, "a frame of 23 bytes ...") == 27);
  frames = 0;
  wr_frame_reader_init(&r, collect);
  r.max_bytes = 22;
  CHECK(wr_frame_reader_feed(&r, stream, 4) < 0);
  CHECK(frames == 0);
  wr_frame_reader_close(&r);
}

static void stops_when_told(void) {
  char stream[64];
  size_t len = 0;
  wr_frame_reader_t r;
  len += encode(stream + len, "a");
  len += encode(stream + len, "b");
  frames = 0;
  wr_frame_reader_init(&r, collect);
  r.stopped = 1;
  CHECK(wr_frame_reader_feed(&r, stream, len) == 0);
  CHECK(frames == 0);
  wr_frame_reader_close(&r);
}

const wr_test_t wr_frame_tests[] = {
  { "frame: delivers frames split anywhere", delivers_frames_split_anywhere },
  { "frame: rejects oversized frame", rejects_oversized_frame },
  { "frame: rejects frame over owner limit", rejects_frame_over_owner_limit },
  { "frame: stops when told", stops_when_told },
  { NULL, NULL }
};
