/*
** Barrier alignment (see barrier.h). A subtask with one input channel is
** aligned by the arrival of the barrier itself; with several it holds the
** channels that delivered barrier n until the others deliver it too.
*/
#include "barrier.h"

#include <stdlib.h>
#include <uv.h>

#include "error.h"

#define WR__CH_ARRIVED 1  /* delivered the pending barrier */
#define WR__CH_ENDED 2    /* reached end of input */

static void reset_alignment(wr_barrier_handler_t* h) {
  int i;
  for (i = 0; i < h->num_inputs; i++) h->state[i] &= ~WR__CH_ARRIVED;
  h->pending_id = -1;
  h->arrived = 0;
}

static int complete_alignment(wr_barrier_handler_t* h) {
  h->last_alignment_ns = uv_hrtime() - h->align_start_ns;
  h->last_id = h->pending_id;
  reset_alignment(h);
  return WR_BARRIER_ALIGNED;
}

int wr_barrier_handler_init(wr_barrier_handler_t* h, int num_inputs,
                            wr_checkpoint_mode_t mode) {
  if (num_inputs < 1) return UV_EINVAL;
  h->state = calloc((size_t) num_inputs, 1);
  if (h->state == NULL) return WR_ENOMEM;
  h->num_inputs = num_inputs;
  h->mode = mode;
  h->pending_id = -1;
  h->last_id = 0;
  h->arrived = 0;
  h->ended = 0;
  h->align_start_ns = 0;
  h->last_alignment_ns = 0;
  return 0;
}

int wr_barrier_handler_on_barrier(wr_barrier_handler_t* h, int channel,
                                  int64_t checkpoint_id) {
  int result = WR_BARRIER_WAIT;
  if (channel < 0 || channel >= h->num_inputs) return WR_EINPUT;
  if (checkpoint_id <= h->last_id) return WR_EOBSOLETE;
  if (h->pending_id >= 0 && checkpoint_id < h->pending_id) return WR_EOBSOLETE;
  if (h->pending_id >= 0 && checkpoint_id > h->pending_id) {
    /* The coordinator moved on: give up the older alignment. */
    h->last_id = h->pending_id;
    reset_alignment(h);
    result = WR_BARRIER_ABORTED;
  }
  if (h->pending_id < 0) {
    h->pending_id = checkpoint_id;
    h->align_start_ns = uv_hrtime();
  }
  if (h->state[channel] & WR__CH_ARRIVED) return WR_EBARRIER;
  h->state[channel] |= WR__CH_ARRIVED;
  h->arrived++;
  if (h->arrived + h->ended >= h->num_inputs) {
    complete_alignment(h);
    return result == WR_BARRIER_ABORTED ? WR_BARRIER_ABORTED
                                        : WR_BARRIER_ALIGNED;
  }
  return result;
}

int wr_barrier_handler_on_end_of_input(wr_barrier_handler_t* h, int channel) {
  if (channel < 0 || channel >= h->num_inputs) return WR_EINPUT;
  if (h->state[channel] & WR__CH_ENDED) return WR_BARRIER_WAIT;
  if (h->state[channel] & WR__CH_ARRIVED) {
    h->state[channel] &= ~WR__CH_ARRIVED;
    h->arrived--;
  }
  h->state[channel] |= WR__CH_ENDED;
  h->ended++;
  if (h->pending_id >= 0 && h->arrived + h->ended >= h->num_inputs)
    return complete_alignment(h);
  return WR_BARRIER_WAIT;
}

int wr_barrier_handler_is_blocked(const wr_barrier_handler_t* h, int channel) {
  if (h->mode != WR_EXACTLY_ONCE) return 0;
  if (channel < 0 || channel >= h->num_inputs) return 0;
  return (h->state[channel] & WR__CH_ARRIVED) != 0;
}

int wr_barrier_handler_all_ended(const wr_barrier_handler_t* h) {
  return h->ended >= h->num_inputs;
}

void wr_barrier_handler_close(wr_barrier_handler_t* h) {
  free(h->state);
  h->state = NULL;
}
