/* Snapshot files: round trip, and every kind of damage detected. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "error.h"
#include "fs.h"
#include "snapshot.h"

static char* sample(size_t* len) {
  size_t i, n = 200000;
  char* s = malloc(n);
  for (i = 0; i < n; i++) s[i] = (char) ("to be or not "[i % 13] + (i / 997) % 3);
  *len = n;
  return s;
}

static void round_trip_in_memory(void) {
  size_t len, image_len, out_len;
  char *data = sample(&len), *image, *out;
  uint32_t c1, c2;
  CHECK(wr_snapshot_encode(data, len, &image, &image_len, &c1) == 0);
  CHECK(image_len < len);
  CHECK(wr_snapshot_decode(image, image_len, &out, &out_len, &c2) == 0);
  CHECK(out_len == len && memcmp(out, data, len) == 0);
  CHECK(c1 == c2);
  free(out);
  free(image);
  free(data);
}

/* Content in parts (some empty, one larger than an lz4 block) decodes to
** the parts joined, with the checksum of the content in one piece. */
static void parts_round_trip_as_one_content(void) {
  size_t len, out_len, one_len, image_len, i, at = 0;
  uint32_t c1, c2, c3;
  char *data = sample(&len), *image, *one, *out, *big;
  size_t big_len = 5u << 20;
  wr_snapshot_part_t parts[4];
  char* joined;
  big = malloc(big_len);
  for (i = 0; i < big_len; i++) big[i] = (char) (i * 7 % 251);
  parts[0].data = data;
  parts[0].len = len / 3;
  parts[1].data = "";
  parts[1].len = 0;
  parts[2].data = data + len / 3;
  parts[2].len = len - len / 3;
  parts[3].data = big;
  parts[3].len = big_len;
  joined = malloc(len + big_len);
  for (i = 0; i < 4; i++) {
    memcpy(joined + at, parts[i].data, parts[i].len);
    at += parts[i].len;
  }
  CHECK(wr_snapshot_encode_parts(parts, 4, &image, &image_len, &c1) == 0);
  CHECK(wr_snapshot_decode(image, image_len, &out, &out_len, &c2) == 0);
  CHECK(out_len == at && memcmp(out, joined, at) == 0);
  CHECK(wr_snapshot_encode(joined, at, &one, &one_len, &c3) == 0);
  CHECK(c1 == c2 && c1 == c3);
  free(image);
  free(out);
  free(one);
  free(joined);
  free(big);
  free(data);
}

static void empty_content_round_trips(void) {
  size_t image_len, out_len;
  char *image, *out;
  uint32_t c;
  CHECK(wr_snapshot_encode("", 0, &image, &image_len, &c) == 0);
  CHECK(wr_snapshot_decode(image, image_len, &out, &out_len, &c) == 0);
  CHECK(out_len == 0);
  free(out);
  free(image);
}

static void every_truncation_is_detected(void) {
  size_t len, image_len, out_len, cut;
  char *data = sample(&len), *image, *out;
  uint32_t c;
  wr_snapshot_encode(data, len, &image, &image_len, &c);
  for (cut = 0; cut < image_len; cut += 1 + cut / 4) {
    int r = wr_snapshot_decode(image, cut, &out, &out_len, &c);
    CHECK(r == WR_ETRUNCATED || r == WR_ECORRUPT || r == WR_EMAGIC);
    CHECK(out == NULL);
  }
  free(image);
  free(data);
}

static void every_bit_flip_is_detected(void) {
  size_t len, image_len, out_len, i;
  char *data = sample(&len), *image, *out;
  uint32_t c;
  wr_snapshot_encode(data, len, &image, &image_len, &c);
  for (i = 0; i < image_len; i += 1 + image_len / 211) {
    int r;
    image[i] ^= 0x10;
    r = wr_snapshot_decode(image, image_len, &out, &out_len, &c);
    CHECK(r < 0);
    if (r == 0) free(out);
    image[i] ^= 0x10;
  }
  free(image);
  free(data);
}

static void wrong_magic_and_version_are_named(void) {
  size_t image_len, out_len;
  char *image, *out;
  uint32_t c;
  wr_snapshot_encode("abc", 3, &image, &image_len, &c);
  image[4] = 9;
  CHECK(wr_snapshot_decode(image, image_len, &out, &out_len, &c) ==
        WR_EVERSION);
  image[0] = 'X';
  CHECK(wr_snapshot_decode(image, image_len, &out, &out_len, &c) == WR_EMAGIC);
  free(image);
}

static void file_round_trip_is_durable(void) {
  char dir[] = "/tmp/weir-ctest-XXXXXX", path[64], tmp[80];
  size_t len, out_len;
  uint64_t size1, size2;
  uint32_t c1, c2;
  char *data = sample(&len), *out;
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof(path), "%s/op-0.snap", dir);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  CHECK(wr_snapshot_write(path, data, len, &size1, &c1) == 0);
  CHECK(access(tmp, F_OK) != 0);
  CHECK(wr_snapshot_read(path, &out, &out_len, &size2, &c2) == 0);
  CHECK(size1 == size2 && c1 == c2);
  CHECK(out_len == len && memcmp(out, data, len) == 0);
  free(out);
  free(data);
  unlink(path);
  rmdir(dir);
}

static void async_done(wr_snapshot_write_t* req, int status) {
  *(int*) req->data = status == 0 ? 1 : -1;
}

/* Both asynchronous writes, copied and borrowed, write the content; a
** borrowed write reads the caller's bytes on the thread pool. */
static void async_writes_copied_and_borrowed(void) {
  char dir[] = "/tmp/weir-ctest-XXXXXX", path[64];
  size_t len, out_len;
  uint64_t size;
  uint32_t c;
  char *data = sample(&len), *out;
  int borrowed;
  CHECK(mkdtemp(dir) != NULL);
  for (borrowed = 0; borrowed < 2; borrowed++) {
    wr_snapshot_write_t req;
    int done = 0;
    uv_loop_t loop;
    uv_loop_init(&loop);
    req.data = &done;
    snprintf(path, sizeof(path), "%s/op-%d.snap", dir, borrowed);
    CHECK((borrowed ? wr_snapshot_write_start_borrowed(&loop, &req, path,
               data, len, async_done)
                    : wr_snapshot_write_start(&loop, &req, path, data, len,
               async_done)) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(done == 1);
    CHECK(wr_snapshot_read(path, &out, &out_len, &size, &c) == 0);
    CHECK(out_len == len && memcmp(out, data, len) == 0);
    CHECK(size == req.size_bytes && c == req.checksum);
    free(out);
    unlink(path);
    uv_loop_close(&loop);
  }
  free(data);
  rmdir(dir);
}

static void write_to_missing_dir_fails_cleanly(void) {
  uint64_t size;
  uint32_t c;
  CHECK(wr_snapshot_write("/nonexistent-weir/x.snap", "a", 1, &size, &c) < 0);
}

const wr_test_t wr_snapshot_tests[] = {
  { "snapshot: round trip in memory", round_trip_in_memory },
  { "snapshot: empty content round trips", empty_content_round_trips },
  { "snapshot: parts round trip as one content",
    parts_round_trip_as_one_content },
  { "snapshot: every truncation is detected", every_truncation_is_detected },
  { "snapshot: every bit flip is detected", every_bit_flip_is_detected },
  { "snapshot: wrong magic and version are named",
    wrong_magic_and_version_are_named },
  { "snapshot: file round trip is durable", file_round_trip_is_durable },
  { "snapshot: write to missing dir fails cleanly",
    write_to_missing_dir_fails_cleanly },
  { "snapshot: async writes, copied and borrowed",
    async_writes_copied_and_borrowed },
  { NULL, NULL }
};
