/*
** Barrier handler: alignment of checkpoint barriers across the input
** channels of one subtask (asynchronous barrier snapshotting, Carbone et al.
** 2015, "Lightweight Asynchronous Snapshots for Distributed Dataflows").
**
** Invariants, exactly-once mode: once barrier n arrived on a channel, that
** channel is blocked (not read) until barrier n arrived on every live
** channel; then the subtask snapshots, forwards n and every channel is
** released. A channel that reached end of input counts as having delivered
** every later barrier. At-least-once mode tracks arrivals but never blocks.
*/
#ifndef WEIR_BARRIER_H
#define WEIR_BARRIER_H

#include <stdint.h>

typedef enum {
  WR_EXACTLY_ONCE = 0,  /* aligned: hold channels until all barriers came */
  WR_AT_LEAST_ONCE = 1  /* track barriers, never hold a channel */
} wr_checkpoint_mode_t;

/* Results of wr_barrier_handler_on_barrier (non-negative). */
typedef enum {
  WR_BARRIER_WAIT = 0,     /* barrier n still missing on some channel */
  WR_BARRIER_ALIGNED = 1,  /* barrier n arrived on all: snapshot, forward */
  WR_BARRIER_ABORTED = 2   /* a newer barrier superseded a pending one */
} wr_barrier_result_t;

typedef struct {
  int num_inputs;                /* input channels of the subtask */
  wr_checkpoint_mode_t mode;     /* exactly-once (aligned) or at-least-once */
  int64_t pending_id;            /* checkpoint being aligned, -1 if none */
  int64_t last_id;               /* newest checkpoint aligned or aborted */
  int arrived;                   /* live channels that delivered pending_id */
  int ended;                     /* channels that reached end of input */
  uint8_t* state;                /* per channel: WR__CH_* flags */
  uint64_t align_start_ns;       /* uv_hrtime() of the first barrier */
  uint64_t last_alignment_ns;    /* duration of the last completed alignment */
} wr_barrier_handler_t;

/* Prepares h for num_inputs >= 1 channels. Returns 0, UV_EINVAL or
** WR_ENOMEM. Release with wr_barrier_handler_close. */
int wr_barrier_handler_init(wr_barrier_handler_t* h, int num_inputs,
                            wr_checkpoint_mode_t mode);

/* Records barrier checkpoint_id (>= 1) on channel (0-based). Returns a
** wr_barrier_result_t, or WR_EINPUT (no such channel), WR_EBARRIER (the
** channel already delivered this barrier) or WR_EOBSOLETE (older than a
** checkpoint already aligned or aborted). WR_BARRIER_ABORTED means a newer
** barrier replaced an unfinished alignment; the newer one is now pending. */
int wr_barrier_handler_on_barrier(wr_barrier_handler_t* h, int channel,
                                  int64_t checkpoint_id);

/* Records end of input on channel. Returns WR_BARRIER_ALIGNED when that
** completes the pending alignment, WR_BARRIER_WAIT otherwise, or
** WR_EINPUT. */
int wr_barrier_handler_on_end_of_input(wr_barrier_handler_t* h, int channel);

/* Returns 1 if the channel must not be read now, 0 otherwise. */
int wr_barrier_handler_is_blocked(const wr_barrier_handler_t* h, int channel);

/* Returns 1 once every channel reached end of input. */
int wr_barrier_handler_all_ended(const wr_barrier_handler_t* h);

/* Frees what init allocated. */
void wr_barrier_handler_close(wr_barrier_handler_t* h);

#endif
