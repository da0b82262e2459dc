/*
** Durable writes (Redis rdb.c style): write name.tmp in the target
** directory, fsync, close, rename, fsync the directory. Every call goes
** through libuv's synchronous file-system API so errors are libuv codes.
*/
#include "fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <uv.h>

#include "error.h"

static int fs_result(uv_fs_t* req) {
  int r = (int) req->result;
  uv_fs_req_cleanup(req);
  return r;
}

int wr_fs_fsync_path(const char* path) {
  uv_fs_t req;
  int fd, r;
  fd = uv_fs_open(NULL, &req, path, O_RDONLY, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return fd;
  r = uv_fs_fsync(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  return r;
}

int wr_fs_fsync_parent(const char* path) {
  const char* slash = strrchr(path, '/');
  char* dir;
  int r;
  if (slash == NULL) return wr_fs_fsync_path(".");
  if (slash == path) return wr_fs_fsync_path("/");
  dir = malloc((size_t) (slash - path) + 1);
  if (dir == NULL) return WR_ENOMEM;
  memcpy(dir, path, (size_t) (slash - path));
  dir[slash - path] = '\0';
  r = wr_fs_fsync_path(dir);
  free(dir);
  return r;
}

int wr__fs_write_durable(const char* path, const void* data, size_t len) {
  uv_fs_t req;
  uv_buf_t buf;
  size_t tmp_len = strlen(path) + 5;
  size_t done = 0;
  char* tmp;
  int fd, r;

  tmp = malloc(tmp_len);
  if (tmp == NULL) return WR_ENOMEM;
  snprintf(tmp, tmp_len, "%s.tmp", path);

  fd = uv_fs_open(NULL, &req, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) { r = fd; goto fail_open; }
  while (done < len) {
    buf = uv_buf_init((char*) data + done, (unsigned int) (len - done));
    r = uv_fs_write(NULL, &req, fd, &buf, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (r < 0) goto fail_write;
    done += (size_t) r;
  }
  r = uv_fs_fsync(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  if (r < 0) goto fail_write;
  r = uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  if (r < 0) goto fail_close;
  uv_fs_rename(NULL, &req, tmp, path, NULL);
  r = fs_result(&req);
  if (r < 0) goto fail_close;
  free(tmp);
  return wr_fs_fsync_parent(path);

fail_write:
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
fail_close:
  uv_fs_unlink(NULL, &req, tmp, NULL);
  uv_fs_req_cleanup(&req);
fail_open:
  free(tmp);
  return r;
}

int wr_fs_open_regular(const char* path, uint64_t* size) {
  uv_fs_t req;
  uint64_t mode;
  int fd, r, flags;

  /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
  ** writer, forever; it is refused below, as anything but a regular file
  ** is, and reads of a regular file never block anyway. */
  fd = uv_fs_open(NULL, &req, path, O_RDONLY | O_NONBLOCK, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return fd;
  r = uv_fs_fstat(NULL, &req, fd, NULL);
  *size = req.statbuf.st_size;
  mode = req.statbuf.st_mode;
  uv_fs_req_cleanup(&req);
  if (r >= 0 && (mode & S_IFMT) != S_IFREG) r = WR_ENOTFILE;
  if (r >= 0) {
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
      r = uv_translate_sys_error(errno);
  }
  if (r < 0) {
    uv_fs_close(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
    return r;
  }
  return fd;
}

int wr_fs_read_all(const char* path, char** data, size_t* len) {
  uv_fs_t req;
  uv_buf_t buf;
  uint64_t size64;
  size_t size, done = 0;
  char* out;
  int fd, r;

  *data = NULL;
  *len = 0;
  fd = wr_fs_open_regular(path, &size64);
  if (fd < 0) return fd;
  size = (size_t) size64;
  out = malloc(size ? size : 1);
  if (out == NULL) { r = WR_ENOMEM; goto fail_alloc; }
  while (done < size) {
    buf = uv_buf_init(out + done, (unsigned int) (size - done));
    r = uv_fs_read(NULL, &req, fd, &buf, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (r < 0) goto fail_read;
    if (r == 0) break;
    done += (size_t) r;
  }
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  *data = out;
  *len = done;
  return 0;

fail_read:
  free(out);
fail_alloc:
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  return r;
}
