/*
** Work done in a forked child: the child is a copy-on-write image of this
** process at the fork, so it sees the process's memory exactly as it was
** then while this process goes on changing its own (as Redis's BGSAVE
** writes a snapshot). The child runs one function and hands back its
** bytes on a pipe; this process collects them, and reaps the child, on
** libuv's thread pool, then gets a callback on the loop.
** Invariants: the child runs only the given function, with no event loop
** and no thread but its own, then leaves with _exit (no atexit handler,
** no stdio flush); it dies with this process (PR_SET_PDEATHSIG on Linux).
*/
#ifndef WEIR_FORK_H
#define WEIR_FORK_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

/* Runs in the child: returns 0 with *out (len *out_len bytes, left valid
** until the child exits) as its result, or any other status with *out as
** a message. */
typedef int (*wr_fork_fn)(void* arg, const char** out, size_t* out_len);

typedef struct wr_fork_s wr_fork_t;
typedef void (*wr_fork_cb)(wr_fork_t* req);

struct wr_fork_s {
  uv_work_t work;       /* private */
  int fd;               /* private: the pipe's reading end */
  wr_fork_cb cb;        /* private */
  pid_t pid;            /* the child */
  double fork_ms;       /* time this process spent in fork(), ms */
  /* Set before cb runs: */
  int complete;         /* 1 when the child handed back its whole result */
  int child_status;     /* what the child's function returned */
  char* result;         /* the result or message (malloc'd; cb frees it) */
  size_t result_len;    /* bytes */
  int exit_status;      /* the child's exit status, or -1 */
  int term_signal;      /* the signal that killed it, or 0 */
};

/* Forks; the child calls fn(arg, ...) and exits. On the loop, later,
** cb(req) runs once the child's result was read and the child reaped.
** Returns 0, or a negative libuv error when the pipe or the fork fails
** (cb is not called then). req must stay valid until cb. */
int wr_fork_start(uv_loop_t* loop, wr_fork_t* req, wr_fork_fn fn, void* arg,
                  wr_fork_cb cb);

#endif
