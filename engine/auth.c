/*
** Peer authentication with HMAC-SHA256 (see auth.h), on OpenSSL's libcrypto.
*/
#include "auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "error.h"

static void put_u32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t) v;
  p[1] = (uint8_t) (v >> 8);
  p[2] = (uint8_t) (v >> 16);
  p[3] = (uint8_t) (v >> 24);
}

static uint32_t get_u32(const uint8_t* p) {
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
         (uint32_t) p[3] << 24;
}

int wr_auth_random(void* out, size_t len) {
  if (len > INT32_MAX) return WR_ERANDOM;
  return RAND_bytes(out, (int) len) == 1 ? 0 : WR_ERANDOM;
}

/* The MAC over nonce || claim (12 bytes at fields) into mac. */
static int mac_of(const void* secret, size_t secret_len, const uint8_t* nonce,
                  const uint8_t* fields, uint8_t mac[WR_AUTH_MAC_BYTES]) {
  uint8_t message[WR_AUTH_NONCE_BYTES + 12];
  unsigned int mac_len = 0;
  memcpy(message, nonce, WR_AUTH_NONCE_BYTES);
  memcpy(message + WR_AUTH_NONCE_BYTES, fields, 12);
  if (HMAC(EVP_sha256(), secret, (int) secret_len, message, sizeof(message),
           mac, &mac_len) == NULL || mac_len != WR_AUTH_MAC_BYTES)
    return WR_EAUTH;
  return 0;
}

int wr_auth_respond(const void* secret, size_t secret_len,
                    const uint8_t nonce[WR_AUTH_NONCE_BYTES],
                    const wr_auth_claim_t* claim,
                    uint8_t out[WR_AUTH_RESPONSE_BYTES]) {
  put_u32(out, claim->role);
  put_u32(out + 4, claim->worker);
  put_u32(out + 8, claim->attempt);
  return mac_of(secret, secret_len, nonce, out, out + 12);
}

int wr_auth_verify(const void* secret, size_t secret_len,
                   const uint8_t nonce[WR_AUTH_NONCE_BYTES],
                   const uint8_t* response, size_t len,
                   wr_auth_claim_t* claim) {
  uint8_t mac[WR_AUTH_MAC_BYTES];
  if (len != WR_AUTH_RESPONSE_BYTES) return WR_EAUTH;
  if (mac_of(secret, secret_len, nonce, response, mac) != 0) return WR_EAUTH;
  if (CRYPTO_memcmp(mac, response + 12, WR_AUTH_MAC_BYTES) != 0)
    return WR_EAUTH;
  claim->role = get_u32(response);
  claim->worker = get_u32(response + 4);
  claim->attempt = get_u32(response + 8);
  return 0;
}
