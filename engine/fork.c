/*
** Work done in a forked child (see fork.h).
** The child writes: i32 status | u64 length | length bytes, in host order
** (both ends are the same program on the same machine).
*/
#define _GNU_SOURCE
#include "fork.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int write_all(int fd, const void* data, size_t len) {
  const char* p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t) n;
  }
  return 0;
}

static int read_all(int fd, void* data, size_t len) {
  char* p = data;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t) n;
  }
  return 0;
}

static void run_child(int fd, pid_t parent, wr_fork_fn fn, void* arg) {
  const char* out = NULL;
  size_t len = 0;
  int32_t status;
  uint64_t len64;
#ifdef __linux__
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(1);
#else
  (void) parent;
#endif
  status = (int32_t) fn(arg, &out, &len);
  if (out == NULL) len = 0;
  len64 = len;
  if (write_all(fd, &status, sizeof(status)) != 0 ||
      write_all(fd, &len64, sizeof(len64)) != 0 ||
      write_all(fd, out, len) != 0) {
    _exit(1);
  }
  _exit(0);
}

static void collect_work(uv_work_t* work) {
  wr_fork_t* req = work->data;
  int32_t status;
  uint64_t len;
  int wstatus;
  pid_t r;
  if (read_all(req->fd, &status, sizeof(status)) == 0 &&
      read_all(req->fd, &len, sizeof(len)) == 0 && len < SIZE_MAX) {
    req->result = malloc(len ? (size_t) len : 1);
    if (req->result != NULL && read_all(req->fd, req->result, len) == 0) {
      req->complete = 1;
      req->child_status = status;
      req->result_len = (size_t) len;
    }
  }
  close(req->fd);
  req->fd = -1;
  do {
    r = waitpid(req->pid, &wstatus, 0);
  } while (r < 0 && errno == EINTR);
  if (r == req->pid && WIFEXITED(wstatus)) {
    req->exit_status = WEXITSTATUS(wstatus);
  } else if (r == req->pid && WIFSIGNALED(wstatus)) {
    req->term_signal = WTERMSIG(wstatus);
  }
  if (!req->complete) {
    free(req->result);
    req->result = NULL;
    req->result_len = 0;
  }
}

static void collect_after(uv_work_t* work, int status) {
  wr_fork_t* req = work->data;
  (void) status;
  req->cb(req);
}

int wr_fork_start(uv_loop_t* loop, wr_fork_t* req, wr_fork_fn fn, void* arg,
                  wr_fork_cb cb) {
  int fds[2];
  pid_t parent = getpid(), pid;
  double start;
  int r;
  memset(req, 0, sizeof(*req));
  req->exit_status = -1;
  req->cb = cb;
  if (pipe2(fds, O_CLOEXEC) != 0) return uv_translate_sys_error(errno);
  start = now_ms();
  pid = fork();
  if (pid < 0) {
    r = uv_translate_sys_error(errno);
    close(fds[0]);
    close(fds[1]);
    return r;
  }
  if (pid == 0) {
    close(fds[0]);
    run_child(fds[1], parent, fn, arg);
  }
  req->fork_ms = now_ms() - start;
  close(fds[1]);
  req->pid = pid;
  req->fd = fds[0];
  req->work.data = req;
  r = uv_queue_work(loop, &req->work, collect_work, collect_after);
  if (r < 0) {
    /* Nothing will read: the child is killed and reaped here. */
    close(fds[0]);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return r;
  }
  return 0;
}
