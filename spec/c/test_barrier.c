/* Barrier alignment across input channels. */
#include "harness.h"
#include "barrier.h"
#include "error.h"

static void single_input_aligns_at_once(void) {
  wr_barrier_handler_t h;
  CHECK(wr_barrier_handler_init(&h, 1, WR_EXACTLY_ONCE) == 0);
  CHECK(wr_barrier_handler_on_barrier(&h, 0, 1) == WR_BARRIER_ALIGNED);
  CHECK(!wr_barrier_handler_is_blocked(&h, 0));
  wr_barrier_handler_close(&h);
}

static void holds_channel_until_all_barriers(void) {
  wr_barrier_handler_t h;
  wr_barrier_handler_init(&h, 3, WR_EXACTLY_ONCE);
  CHECK(wr_barrier_handler_on_barrier(&h, 1, 4) == WR_BARRIER_WAIT);
  CHECK(wr_barrier_handler_is_blocked(&h, 1));
  CHECK(!wr_barrier_handler_is_blocked(&h, 0));
  CHECK(wr_barrier_handler_on_barrier(&h, 0, 4) == WR_BARRIER_WAIT);
  CHECK(wr_barrier_handler_is_blocked(&h, 0));
  CHECK(!wr_barrier_handler_is_blocked(&h, 2));
  CHECK(wr_barrier_handler_on_barrier(&h, 2, 4) == WR_BARRIER_ALIGNED);
  CHECK(!wr_barrier_handler_is_blocked(&h, 0));
  CHECK(!wr_barrier_handler_is_blocked(&h, 1));
  CHECK(!wr_barrier_handler_is_blocked(&h, 2));
  wr_barrier_handler_close(&h);
}

static void at_least_once_never_blocks(void) {
  wr_barrier_handler_t h;
  wr_barrier_handler_init(&h, 2, WR_AT_LEAST_ONCE);
  CHECK(wr_barrier_handler_on_barrier(&h, 0, 1) == WR_BARRIER_WAIT);
  CHECK(!wr_barrier_handler_is_blocked(&h, 0));
  CHECK(wr_barrier_handler_on_barrier(&h, 1, 1) == WR_BARRIER_ALIGNED);
  wr_barrier_handler_close(&h);
}

static void ended_channel_counts_as_arrived(void) {
  wr_barrier_handler_t h;
  wr_barrier_handler_init(&h, 2, WR_EXACTLY_ONCE);
  CHECK(wr_barrier_handler_on_barrier(&h, 0, 1) == WR_BARRIER_WAIT);
  CHECK(wr_barrier_handler_on_end_of_input(&h, 1) == WR_BARRIER_ALIGNED);
  CHECK(!wr_barrier_handler_is_blocked(&h, 0));
  CHECK(wr_barrier_handler_on_barrier(&h, 0, 2) == WR_BARRIER_ALIGNED);
  CHECK(!wr_barrier_handler_all_ended(&h));
  CHECK(wr_barrier_handler_on_end_of_input(&h, 0) == WR_BARRIER_WAIT);
  CHECK(wr_barrier_handler_all_ended(&h));
  wr_barrier_handler_close(&h);
}

static void rejects_duplicate_and_obsolete_barriers(void) {
  wr_barrier_handler_t h;
  wr_barrier_handler_init(&h, 2, WR_EXACTLY_ONCE);
  CHECK(wr_barrier_handler_on_barrier(&h, 0, 3) == WR_BARRIER_WAIT);
  CHECK(wr_barrier_handler_on_barrier(&h, 0, 3) == WR_EBARRIER);
  CHECK(wr_barrier_handler_on_barrier(&h, 1, 2) == WR_EOBSOLETE);
  CHECK(wr_barrier_handler_on_barrier(&h, 1, 3) == WR_BARRIER_ALIGNED);
  CHECK(wr_barrier_handler_on_barrier(&h, 1, 3) == WR_EOBSOLETE);
  CHECK(wr_barrier_handler_on_barrier(&h, 5, 4) == WR_EINPUT);
  wr_barrier_handler_close(&h);
}

static void newer_barrier_aborts_pending_alignment(void) {
  wr_barrier_handler_t h;
  wr_barrier_handler_init(&h, 2, WR_EXACTLY_ONCE);
  CHECK(wr_barrier_handler_on_barrier(&h, 0, 1) == WR_BARRIER_WAIT);
  CHECK(wr_barrier_handler_on_barrier(&h, 1, 2) == WR_BARRIER_ABORTED);
  CHECK(!wr_barrier_handler_is_blocked(&h, 0));
  CHECK(wr_barrier_handler_is_blocked(&h, 1));
  CHECK(wr_barrier_handler_on_barrier(&h, 0, 2) == WR_BARRIER_ALIGNED);
  wr_barrier_handler_close(&h);
}

const wr_test_t wr_barrier_tests[] = {
  { "barrier: single input aligns at once", single_input_aligns_at_once },
  { "barrier: holds channel until all barriers",
    holds_channel_until_all_barriers },
  { "barrier: at-least-once never blocks", at_least_once_never_blocks },
  { "barrier: ended channel counts as arrived",
    ended_channel_counts_as_arrived },
  { "barrier: rejects duplicate and obsolete barriers",
    rejects_duplicate_and_obsolete_barriers },
  { "barrier: newer barrier aborts pending alignment",
    newer_barrier_aborts_pending_alignment },
  { NULL, NULL }
};
