/*
** Peer authentication: every connection between the processes of a job
** (worker to worker, worker to coordinator) proves, before any frame of it
** is decoded, that its connecting side knows the job's secret.
**
** Protocol (one round trip, then frames as usual):
**   accepting side -> connecting side: a frame of WR_AUTH_NONCE_BYTES random
**     bytes, fresh for each connection;
**   connecting side -> accepting side: a frame of WR_AUTH_RESPONSE_BYTES:
**     role, worker, attempt (u32 little-endian each), then
**     HMAC-SHA256(secret, nonce || role || worker || attempt).
** Invariants: a response answers one nonce only (no replay on another
** connection); the MAC is compared in constant time; nothing but the
** response frame is read from a connection before it is verified.
*/
#ifndef WEIR_AUTH_H
#define WEIR_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define WR_AUTH_SECRET_BYTES 32   /* length of a job's secret */
#define WR_AUTH_NONCE_BYTES 32    /* length of a challenge */
#define WR_AUTH_MAC_BYTES 32      /* HMAC-SHA256 */
#define WR_AUTH_RESPONSE_BYTES (12 + WR_AUTH_MAC_BYTES)

/* What a connecting side claims to be. */
typedef enum {
  WR_AUTH_DATA = 1,       /* a worker's data connection to another worker */
  WR_AUTH_CONTROL = 2,    /* a worker's control connection to the coordinator */
  WR_AUTH_HEARTBEAT = 3,  /* a worker's heartbeat connection */
  WR_AUTH_AGENT = 4       /* a coordinator's connection to a weir agent */
} wr_auth_role_t;

typedef struct {
  uint32_t role;          /* wr_auth_role_t */
  uint32_t worker;        /* index of the connecting worker */
  uint32_t attempt;       /* the job's attempt the worker belongs to */
} wr_auth_claim_t;

/* Fills len bytes at out from the system's cryptographic random source.
** Returns 0 or WR_ERANDOM. */
int wr_auth_random(void* out, size_t len);

/* Writes the response to nonce for claim into out, with the secret of
** secret_len bytes. Returns 0 or WR_EAUTH (HMAC unavailable). */
int wr_auth_respond(const void* secret, size_t secret_len,
                    const uint8_t nonce[WR_AUTH_NONCE_BYTES],
                    const wr_auth_claim_t* claim,
                    uint8_t out[WR_AUTH_RESPONSE_BYTES]);

/* Checks a response of len bytes to nonce. Returns 0 and fills claim when
** it was made with the secret, else WR_EAUTH (claim is left undefined). */
int wr_auth_verify(const void* secret, size_t secret_len,
                   const uint8_t nonce[WR_AUTH_NONCE_BYTES],
                   const uint8_t* response, size_t len,
                   wr_auth_claim_t* claim);

#endif
