/*
** Lua binding of peer authentication (auth.h): core.random_bytes,
** core.auth_respond, core.auth_verify, core.sha256 and base64
** (core.base64, core.unbase64), all on OpenSSL's libcrypto. Roles are named "data",
** "control", "heartbeat" and "agent" on the Lua side.
*/
#include <string.h>

#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "auth.h"
#include "error.h"
#include "lua_aux.h"

static const char* const role_names[] = { "data", "control", "heartbeat",
                                          "agent", NULL };

/* The bytes of argument idx: a string, or a light userdata followed by
** its length in bytes (a frame received with on_frame's "pointer"). */
static const uint8_t* check_bytes(lua_State* L, int idx, size_t* len) {
  if (lua_islightuserdata(L, idx)) {
    lua_Integer n = luaL_checkinteger(L, idx + 1);
    if (n < 0) luaL_argerror(L, idx + 1, "length must be >= 0");
    *len = (size_t) n;
    return lua_touserdata(L, idx);
  }
  return (const uint8_t*) luaL_checklstring(L, idx, len);
}

static const uint8_t* check_nonce(lua_State* L, int idx) {
  size_t len;
  const char* nonce = luaL_checklstring(L, idx, &len);
  if (len != WR_AUTH_NONCE_BYTES) luaL_argerror(L, idx, "not a nonce");
  return (const uint8_t*) nonce;
}

/* core.random_bytes(n) -> string of n bytes from the system's
** cryptographic random source | nil, message, code. */
static int l_random_bytes(lua_State* L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_Buffer b;
  char* p;
  int r;
  if (n < 0 || n > LUAL_BUFFERSIZE) luaL_argerror(L, 1, "bad length");
  luaL_buffinit(L, &b);
  p = luaL_prepbuffer(&b);
  r = wr_auth_random(p, (size_t) n);
  if (r < 0) return wr__lua_push_error(L, r);
  luaL_addsize(&b, (size_t) n);
  luaL_pushresult(&b);
  return 1;
}

/* core.auth_respond(secret, nonce, role, worker, attempt) -> the response
** frame's bytes (auth.h) | nil, message, code. role: "data", "control" or
** "heartbeat"; worker and attempt: integers >= 0. */
static int l_auth_respond(lua_State* L) {
  size_t secret_len;
  const char* secret = luaL_checklstring(L, 1, &secret_len);
  const uint8_t* nonce = check_nonce(L, 2);
  wr_auth_claim_t claim;
  uint8_t out[WR_AUTH_RESPONSE_BYTES];
  int r;
  claim.role = (uint32_t) luaL_checkoption(L, 3, NULL, role_names) + 1;
  claim.worker = (uint32_t) luaL_checkinteger(L, 4);
  claim.attempt = (uint32_t) luaL_checkinteger(L, 5);
  r = wr_auth_respond(secret, secret_len, nonce, &claim, out);
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushlstring(L, (const char*) out, sizeof(out));
  return 1;
}

/* core.auth_verify(secret, nonce, response [, len]) -> role, worker,
** attempt | nil, message, code when the response (a string, or a light
** userdata and its length) was not made with the secret for this nonce. */
static int l_auth_verify(lua_State* L) {
  size_t secret_len, len;
  const char* secret = luaL_checklstring(L, 1, &secret_len);
  const uint8_t* nonce = check_nonce(L, 2);
  const uint8_t* response = check_bytes(L, 3, &len);
  wr_auth_claim_t claim;
  int r = wr_auth_verify(secret, secret_len, nonce, response, len, &claim);
  if (r < 0) return wr__lua_push_error(L, r);
  if (claim.role < WR_AUTH_DATA || claim.role > WR_AUTH_AGENT)
    return wr__lua_push_error(L, WR_EAUTH);
  lua_pushstring(L, role_names[claim.role - 1]);
  lua_pushnumber(L, (lua_Number) claim.worker);
  lua_pushnumber(L, (lua_Number) claim.attempt);
  return 3;
}

/* core.sha256(bytes) -> the SHA-256 digest of bytes (a string) as 64
** lower-case hex digits: the content address of a file shipped to an
** agent. */
static int l_sha256(lua_State* L) {
  static const char hex[] = "0123456789abcdef";
  size_t len, i;
  const char* bytes = luaL_checklstring(L, 1, &len);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  char out[2 * SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char*) bytes, len, digest);
  for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 15];
  }
  lua_pushlstring(L, out, sizeof(out));
  return 1;
}

/* core.base64(bytes) -> bytes in base64 (RFC 4648, padded), as etcd's
** JSON API takes keys and values. */
static int l_base64(lua_State* L) {
  size_t len;
  const char* bytes = luaL_checklstring(L, 1, &len);
  size_t cap = 4 * ((len + 2) / 3) + 1;
  unsigned char* out = malloc(cap);
  int n;
  if (out == NULL) return wr__lua_push_error(L, WR_ENOMEM);
  n = EVP_EncodeBlock(out, (const unsigned char*) bytes, (int) len);
  lua_pushlstring(L, (const char*) out, (size_t) n);
  free(out);
  return 1;
}

/* core.unbase64(text) -> the bytes text encodes in base64 | nil, message
** when it is not base64. */
static int l_unbase64(lua_State* L) {
  size_t len, pad = 0;
  const char* text = luaL_checklstring(L, 1, &len);
  unsigned char* out;
  int n;
  if (len % 4 != 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "not base64: its length is not a multiple of 4");
    return 2;
  }
  out = malloc(len / 4 * 3 + 1);
  if (out == NULL) return wr__lua_push_error(L, WR_ENOMEM);
  n = EVP_DecodeBlock(out, (const unsigned char*) text, (int) len);
  if (n < 0) {
    free(out);
    lua_pushnil(L);
    lua_pushliteral(L, "not base64");
    return 2;
  }
  /* EVP_DecodeBlock counts the padding as bytes: take them off. */
  if (len >= 1 && text[len - 1] == '=') pad++;
  if (len >= 2 && text[len - 2] == '=') pad++;
  lua_pushlstring(L, (const char*) out, (size_t) n - pad);
  free(out);
  return 1;
}

static const luaL_Reg functions[] = {
  { "random_bytes", l_random_bytes },
  { "sha256", l_sha256 },
  { "base64", l_base64 },
  { "unbase64", l_unbase64 },
  { "auth_respond", l_auth_respond },
  { "auth_verify", l_auth_verify },
  { NULL, NULL }
};

void wr__lua_open_auth(lua_State* L) {
  luaL_register(L, NULL, functions);
}
