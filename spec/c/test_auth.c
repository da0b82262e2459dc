/* Peer authentication: a response verifies only with its secret, nonce
** and claim. */
#include <string.h>

#include "harness.h"
#include "auth.h"

static const char secret[] = "0123456789abcdef0123456789abcdef";
static const wr_auth_claim_t claim = { WR_AUTH_DATA, 3, 7 };

static void respond(const uint8_t* nonce, uint8_t* out) {
  CHECK(wr_auth_respond(secret, 32, nonce, &claim, out) == 0);
}

static void verifies_its_own_response(void) {
  uint8_t nonce[WR_AUTH_NONCE_BYTES], out[WR_AUTH_RESPONSE_BYTES];
  wr_auth_claim_t got;
  CHECK(wr_auth_random(nonce, sizeof(nonce)) == 0);
  respond(nonce, out);
  CHECK(wr_auth_verify(secret, 32, nonce, out, sizeof(out), &got) == 0);
  CHECK(got.role == WR_AUTH_DATA && got.worker == 3 && got.attempt == 7);
}

static void refuses_another_nonce(void) {
  uint8_t nonce[WR_AUTH_NONCE_BYTES], out[WR_AUTH_RESPONSE_BYTES];
  wr_auth_claim_t got;
  memset(nonce, 1, sizeof(nonce));
  respond(nonce, out);
  nonce[31] ^= 1;
  CHECK(wr_auth_verify(secret, 32, nonce, out, sizeof(out), &got) < 0);
}

static void refuses_another_secret(void) {
  uint8_t nonce[WR_AUTH_NONCE_BYTES], out[WR_AUTH_RESPONSE_BYTES];
  wr_auth_claim_t got;
  memset(nonce, 1, sizeof(nonce));
  respond(nonce, out);
  CHECK(wr_auth_verify("another secret", 14, nonce, out, sizeof(out),
                       &got) < 0);
}

static void refuses_a_changed_claim(void) {
  uint8_t nonce[WR_AUTH_NONCE_BYTES], out[WR_AUTH_RESPONSE_BYTES];
  wr_auth_claim_t got;
  memset(nonce, 2, sizeof(nonce));
  respond(nonce, out);
  out[4] = 2;  /* claims worker 2 */
  CHECK(wr_auth_verify(secret, 32, nonce, out, sizeof(out), &got) < 0);
}

static void refuses_a_short_response(void) {
  uint8_t nonce[WR_AUTH_NONCE_BYTES], out[WR_AUTH_RESPONSE_BYTES];
  wr_auth_claim_t got;
  memset(nonce, 3, sizeof(nonce));
  respond(nonce, out);
  CHECK(wr_auth_verify(secret, 32, nonce, out, sizeof(out) - 1, &got) < 0);
}

const wr_test_t wr_auth_tests[] = {
  { "auth: verifies its own response", verifies_its_own_response },
  { "auth: refuses another nonce", refuses_another_nonce },
  { "auth: refuses another secret", refuses_another_secret },
  { "auth: refuses a changed claim", refuses_a_changed_claim },
  { "auth: refuses a short response", refuses_a_short_response },
  { NULL, NULL }
};
