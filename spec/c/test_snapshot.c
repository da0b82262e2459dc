/* Snapshot files: round trip, and every kind of damage detected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lz4frame.h>

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

/* A file copied into a snapshot on the thread pool, then extracted to a
** plain file, is the file again; a missing source is the status, and a
** damaged snapshot is not extracted. */
static void file_copied_in_and_extracted(void) {
  char dir[] = "/tmp/weir-ctest-XXXXXX", src[64], path[64], dst[64];
  size_t len, out_len;
  uint64_t size;
  uint32_t c;
  char *data = sample(&len), *out;
  wr_snapshot_write_t req;
  int done = 0;
  uv_loop_t loop;
  FILE* f;
  CHECK(mkdtemp(dir) != NULL);
  snprintf(src, sizeof(src), "%s/000012.sst", dir);
  snprintf(path, sizeof(path), "%s/shared.sst", dir);
  snprintf(dst, sizeof(dst), "%s/out.sst", dir);
  f = fopen(src, "wb");
  CHECK(f != NULL && fwrite(data, 1, len, f) == len && fclose(f) == 0);
  uv_loop_init(&loop);
  req.data = &done;
  CHECK(wr_snapshot_write_file_start(&loop, &req, path, src, async_done)
        == 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(done == 1);
  CHECK(wr_snapshot_extract(path, dst, &size, &c) == 0);
  CHECK(size == req.size_bytes && c == req.checksum);
  CHECK(wr_fs_read_all(dst, &out, &out_len) == 0);
  CHECK(out_len == len && memcmp(out, data, len) == 0);
  free(out);
  done = 0;
  CHECK(wr_snapshot_write_file_start(&loop, &req, path, "/nonexistent-weir",
                                     async_done) == 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(done == -1 && req.status == UV_ENOENT);
  /* The failed copy left the earlier snapshot; damage it: not extracted. */
  f = fopen(path, "r+b");
  CHECK(f != NULL && fseek(f, 40, SEEK_SET) == 0);
  {
    int b = fgetc(f);
    CHECK(b != EOF && fseek(f, 40, SEEK_SET) == 0 && fputc(b ^ 0xff, f) != EOF);
  }
  CHECK(fclose(f) == 0);
  CHECK(wr_snapshot_extract(path, dst, &size, &c) < 0);
  uv_loop_close(&loop);
  unlink(src);
  unlink(path);
  unlink(dst);
  rmdir(dir);
  free(data);
}

/* Writes len bytes of data to the plain file path. */
static void put_file(const char* path, const char* data, size_t len) {
  FILE* f = fopen(path, "wb");
  CHECK(f != NULL && fwrite(data, 1, len, f) == len && fclose(f) == 0);
}

/* Verifying or extracting a file a piece at a time agrees with reading it
** whole, on a file of several input pieces and blocks, on every cut and
** bit flip tried, and on an empty content. */
static void verified_in_pieces_as_read_whole(void) {
  char dir[] = "/tmp/weir-ctest-XXXXXX", path[64], bad[64], dst[64];
  size_t len = (9u << 20) + 12345, image_len, out_len, i;
  uint64_t size, size2, x = 88172645463325252ull;
  uint32_t c, c2;
  char *data = malloc(len), *image, *out;
  /* Content that compresses a little: blocks of both kinds. */
  for (i = 0; i < len; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    data[i] = (i / 65536) % 2 ? (char) x : (char) ('a' + x % 4);
  }
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof(path), "%s/s.snap", dir);
  snprintf(bad, sizeof(bad), "%s/bad.snap", dir);
  snprintf(dst, sizeof(dst), "%s/out", dir);
  CHECK(wr_snapshot_write(path, data, len, &size, &c) == 0);
  CHECK(size > (2u << 20));
  CHECK(wr_snapshot_verify(path, &size2, &c2) == 0);
  CHECK(size2 == size && c2 == c);
  CHECK(wr_snapshot_extract(path, dst, &size2, &c2) == 0);
  CHECK(size2 == size && c2 == c);
  CHECK(wr_fs_read_all(dst, &out, &out_len) == 0);
  CHECK(out_len == len && memcmp(out, data, len) == 0);
  free(out);
  CHECK(wr_fs_read_all(path, &image, &image_len) == 0);
  for (i = 0; i < 48; i++) {
    /* A cut (the first half of the tries) or a bit flip, spread over the
    ** file and its last bytes. */
    size_t at = i % 24 < 20 ? (image_len / 20) * (i % 24) + i
                            : image_len - 1 - (i % 24 - 20);
    int whole, pieces;
    if (i < 24) {
      put_file(bad, image, at);
    } else {
      image[at] ^= 0x04;
      put_file(bad, image, image_len);
      image[at] ^= 0x04;
    }
    whole = wr_snapshot_read(bad, &out, &out_len, &size2, &c2);
    if (whole == 0) free(out);
    pieces = wr_snapshot_verify(bad, &size2, &c2);
    CHECK(whole < 0 && pieces < 0);
    CHECK(wr_snapshot_extract(bad, dst, &size2, &c2) < 0);
  }
  CHECK(wr_snapshot_write(path, "", 0, &size, &c) == 0);
  CHECK(wr_snapshot_verify(path, &size2, &c2) == 0 && size2 == size &&
        c2 == c);
  CHECK(wr_snapshot_verify(dir, &size2, &c2) == WR_ENOTFILE);
  free(image);
  free(data);
  unlink(path);
  unlink(bad);
  unlink(dst);
  rmdir(dir);
}

/* Many files verified on several threads at once: each result is the one
** wr_snapshot_verify gives alone, a damaged and a missing file among them. */
static void many_verified_at_once(void) {
  char dir[] = "/tmp/weir-ctest-XXXXXX", names[9][64];
  const char* paths[9];
  uint64_t sizes[9], size;
  uint32_t checksums[9], c;
  int results[9], i;
  size_t len;
  char* data = sample(&len);
  CHECK(mkdtemp(dir) != NULL);
  for (i = 0; i < 9; i++) {
    snprintf(names[i], sizeof(names[i]), "%s/%d.snap", dir, i);
    paths[i] = names[i];
    if (i != 7) CHECK(wr_snapshot_write(names[i], data, len - (size_t) i * 100,
                                        &size, &c) == 0);
  }
  {
    FILE* f = fopen(names[4], "r+b");
    CHECK(f != NULL && fseek(f, 100, SEEK_SET) == 0 && fputc('!', f) != EOF);
    CHECK(fclose(f) == 0);
  }
  CHECK(wr_snapshot_verify_many(paths, 9, 4, sizes, checksums, results) == 0);
  for (i = 0; i < 9; i++) {
    int alone = wr_snapshot_verify(names[i], &size, &c);
    CHECK(results[i] == alone);
    if (alone == 0) CHECK(sizes[i] == size && checksums[i] == c);
    CHECK((i == 4 || i == 7) == (alone < 0));
    unlink(names[i]);
  }
  CHECK(results[7] == UV_ENOENT);
  CHECK(wr_snapshot_verify_many(paths, 0, 4, sizes, checksums, results) == 0);
  rmdir(dir);
  free(data);
}

static void write_to_missing_dir_fails_cleanly(void) {
  uint64_t size;
  uint32_t c;
  CHECK(wr_snapshot_write("/nonexistent-weir/x.snap", "a", 1, &size, &c) < 0);
}

/* The most compressible content there is (zeros, 64 MB) still decodes:
** the bound on the header's content size is lz4's greatest ratio, which
** real frames stay below. */
static void zeros_decode_within_the_ratio_bound(void) {
  size_t len = (size_t) 64 << 20, image_len, out_len;
  char *data = calloc(len, 1), *image, *out;
  uint32_t c1, c2;
  CHECK(wr_snapshot_encode(data, len, &image, &image_len, &c1) == 0);
  CHECK(wr_snapshot_decode(image, image_len, &out, &out_len, &c2) == 0);
  CHECK(out_len == len && c1 == c2);
  free(out);
  free(image);
  free(data);
}

/* A frame header may claim any content size: one that the file's bytes
** cannot hold (1 TB in 31 bytes, a valid header and no blocks) is damage,
** found before any allocation. */
static void content_size_beyond_the_file_is_corrupt(void) {
  LZ4F_preferences_t prefs;
  LZ4F_cctx* cctx;
  char image[64], *out = (char*) 1;
  size_t n, out_len = 7;
  uint32_t c;
  memset(&prefs, 0, sizeof(prefs));
  prefs.frameInfo.blockSizeID = LZ4F_max4MB;
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
  prefs.frameInfo.contentSize = (unsigned long long) 1 << 40;
  memcpy(image, "WEIR\1\0\0\0", WR_SNAPSHOT_HEADER_BYTES);
  CHECK(!LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION)));
  n = LZ4F_compressBegin(cctx, image + WR_SNAPSHOT_HEADER_BYTES,
                         sizeof(image) - WR_SNAPSHOT_HEADER_BYTES, &prefs);
  LZ4F_freeCompressionContext(cctx);
  CHECK(!LZ4F_isError(n));
  n += WR_SNAPSHOT_HEADER_BYTES;
  /* An end mark, then the content checksum of nothing (xxh32 of ""). */
  memcpy(image + n, "\0\0\0\0\x05\x5d\xcc\x02", 8);
  n += 8;
  CHECK(n == 31);
  CHECK(wr_snapshot_decode(image, n, &out, &out_len, &c) == WR_ECORRUPT);
  CHECK(out == NULL && out_len == 0);
}

/* A FIFO in place of a snapshot file is refused at once, not waited on. */
static void a_fifo_is_not_read(void) {
  char path[] = "/tmp/weir-ctest-fifo-XXXXXX";
  char fifo[64];
  char* data;
  size_t len;
  uint64_t size;
  uint32_t c;
  CHECK(mkdtemp(path) != NULL);
  snprintf(fifo, sizeof(fifo), "%s/x.snap", path);
  CHECK(mkfifo(fifo, 0600) == 0);
  CHECK(wr_fs_read_all(fifo, &data, &len) == WR_ENOTFILE);
  CHECK(wr_snapshot_read(fifo, &data, &len, &size, &c) == WR_ENOTFILE);
  CHECK(wr_fs_read_all(path, &data, &len) == WR_ENOTFILE);
  unlink(fifo);
  rmdir(path);
}

const wr_test_t wr_snapshot_tests[] = {
  { "snapshot: zeros decode within the ratio bound",
    zeros_decode_within_the_ratio_bound },
  { "snapshot: content size beyond the file is corrupt",
    content_size_beyond_the_file_is_corrupt },
  { "snapshot: a FIFO is not read", a_fifo_is_not_read },
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
  { "snapshot: a file copied in and extracted", file_copied_in_and_extracted },
  { "snapshot: verified in pieces as read whole",
    verified_in_pieces_as_read_whole },
  { "snapshot: many verified at once", many_verified_at_once },
  { NULL, NULL }
};
