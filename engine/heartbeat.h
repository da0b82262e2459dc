/*
** Heartbeats from a thread of their own: a worker process tells its
** coordinator it is alive even while its loop's thread is busy for long in
** one synchronous step (serializing a large snapshot, a long collection).
** As Flink's TaskManager heartbeats, they show that the process lives, not
** that its tasks progress; a process stopped (SIGSTOP) or dead sends none.
** The thread writes on a connection of its own, with blocking writes, so
** it never touches the loop.
**
** The connection authenticates as every other connection of a job does
** (auth.h): the thread answers the coordinator's fresh nonce with the HMAC
** of its claim before its first heartbeat. Heartbeats carry no data, so a
** token computed once and replayed would only let its thief keep a hung
** worker looking alive; but the challenge costs one round trip per
** process, not per heartbeat, and a connection whose claim cannot be
** replayed leaves no such hole, so heartbeats get no weaker scheme.
**
** A heartbeat is a handle: it lives from wr_heartbeat_start until
** wr_heartbeat_close, which is the only way to reclaim it, whether or not
** the thread already ended because the peer went away.
*/
#ifndef WEIR_HEARTBEAT_H
#define WEIR_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"

typedef struct wr_heartbeat_s wr_heartbeat_t;

/* Connects a blocking socket to address (a socket path or
** "tcp:HOST:PORT", address.h) and starts a thread that sends payload
** (len bytes, copied) as one frame (frame.h) at once and then every
** interval_ns nanoseconds, until wr_heartbeat_close or until a write fails
** (the peer closed the connection). If secret is not NULL it holds the
** job's WR_AUTH_SECRET_BYTES (copied), and the thread first answers the
** peer's challenge with claim (auth.h); claim is ignored otherwise.
** Returns 0 and the handle in *out, which the caller owns; or a negative
** error, with nothing started and *out untouched: UV_EINVAL (a bad TCP
** address, or interval_ns 0), UV_ENAMETOOLONG (a path too long for a
** socket), the libuv code of a failed socket(2) or connect(2) (UV_ENOENT,
** UV_ECONNREFUSED, ...), UV_ENOMEM, or UV_EAGAIN (no thread). */
int wr_heartbeat_start(wr_heartbeat_t** out, const char* address,
                       const void* payload, size_t len, uint64_t interval_ns,
                       const uint8_t* secret, const wr_auth_claim_t* claim);

/* Ends the heartbeats (a write blocked on a full socket included), waits
** for the thread, closes the connection and frees h, wiping its copy of
** the secret. */
void wr_heartbeat_close(wr_heartbeat_t* h);

#endif
