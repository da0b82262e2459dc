/* Work in a forked child: the child sees memory as it was at the fork,
** its result comes back on the loop, and a child that dies or fails is
** told apart from one that succeeded. The loop runs until the callback,
** which comes once the child exited. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "harness.h"
#include "fork.h"

static char shared[32];
static int called;

static void on_done(wr_fork_t* req) {
  called++;
  (void) req;
}

/* Reads shared as it was at the fork. */
static int read_shared(void* arg, const char** out, size_t* len) {
  (void) arg;
  *out = shared;
  *len = strlen(shared);
  return 0;
}

static int fail_with_message(void* arg, const char** out, size_t* len) {
  *out = arg;
  *len = strlen(arg);
  return 3;
}

static int die(void* arg, const char** out, size_t* len) {
  (void) arg;
  (void) out;
  (void) len;
  raise(SIGKILL);
  return 0;
}

/* Forks fn(arg), then (in this process) writes "after" into shared, and
** runs a loop of its own until the callback came. */
static void run_child(wr_fork_fn fn, void* arg, wr_fork_t* req) {
  uv_loop_t loop;
  called = 0;
  CHECK(uv_loop_init(&loop) == 0);
  CHECK(wr_fork_start(&loop, req, fn, arg, on_done) == 0);
  strcpy(shared, "after");
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(called == 1);
  uv_loop_close(&loop);
}

static void hands_back_memory_as_it_was_at_the_fork(void) {
  wr_fork_t req;
  strcpy(shared, "before");
  run_child(read_shared, NULL, &req);
  CHECK(req.complete == 1);
  CHECK(req.child_status == 0);
  CHECK(req.result_len == 6 && memcmp(req.result, "before", 6) == 0);
  CHECK(req.exit_status == 0);
  CHECK(req.fork_ms >= 0);
  free(req.result);
  CHECK(strcmp(shared, "after") == 0);
}

static void hands_back_a_failure_with_its_message(void) {
  wr_fork_t req;
  run_child(fail_with_message, "cannot serialize", &req);
  CHECK(req.complete == 1);
  CHECK(req.child_status == 3);
  CHECK(req.result_len == 16);
  free(req.result);
}

static void tells_a_child_that_died(void) {
  wr_fork_t req;
  run_child(die, NULL, &req);
  CHECK(req.complete == 0);
  CHECK(req.result == NULL);
  CHECK(req.term_signal == SIGKILL);
}

const wr_test_t wr_fork_tests[] = {
  { "fork: hands back memory as it was at the fork",
    hands_back_memory_as_it_was_at_the_fork },
  { "fork: hands back a failure with its message",
    hands_back_a_failure_with_its_message },
  { "fork: tells a child that died", tells_a_child_that_died },
  { NULL, NULL }
};
