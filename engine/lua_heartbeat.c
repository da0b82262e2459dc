/*
** Lua binding of heartbeats (heartbeat.h): core.heartbeat starts the
** thread that sends them, handle:stop() (or collecting the handle) ends it.
*/
#include "auth.h"
#include "heartbeat.h"
#include "lua_aux.h"

#define HEARTBEAT_MT "weir.heartbeat"

/* core.heartbeat(address, payload, interval_ms [, auth]) -> handle | nil,
** message, name. Connects to address (a Unix socket path or
** "tcp:HOST:PORT") and from a new thread sends payload (bytes) as one frame
** at once and then every interval_ms, until handle:stop() or until a write
** fails (the peer closed the connection). auth: { secret = the job's
** secret (WR_AUTH_SECRET_BYTES), worker = index, attempt = n }: the thread
** first answers the peer's challenge as a heartbeat connection of that
** worker (auth.h). */
static int l_heartbeat(lua_State* L) {
  const char* address = luaL_checkstring(L, 1);
  size_t len, secret_len = 0;
  const char* payload = luaL_checklstring(L, 2, &len);
  lua_Number interval_ms = luaL_checknumber(L, 3);
  const char* secret = NULL;
  wr_auth_claim_t claim = { WR_AUTH_HEARTBEAT, 0, 0 };
  wr_heartbeat_t** box;
  int r;
  if (interval_ms <= 0) luaL_argerror(L, 3, "interval must be > 0 ms");
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_getfield(L, 4, "secret");
    secret = lua_tolstring(L, -1, &secret_len);
    if (secret == NULL || secret_len != WR_AUTH_SECRET_BYTES)
      luaL_argerror(L, 4, "auth.secret must be the job's secret");
    lua_getfield(L, 4, "worker");
    claim.worker = (uint32_t) luaL_checkinteger(L, -1);
    lua_getfield(L, 4, "attempt");
    claim.attempt = (uint32_t) luaL_checkinteger(L, -1);
    lua_pop(L, 2);  /* the secret stays referenced by the auth table */
  }
  /* The userdata first: once the thread runs, nothing may raise before
  ** the handle is where __gc will find it. */
  box = lua_newuserdata(L, sizeof(*box));
  *box = NULL;
  luaL_getmetatable(L, HEARTBEAT_MT);
  lua_setmetatable(L, -2);
  r = wr_heartbeat_start(box, address, payload, len,
                         (uint64_t) (interval_ms * 1e6),
                         (const uint8_t*) secret, &claim);
  if (r < 0) return wr__lua_push_error(L, r);
  return 1;
}

/* handle:stop() ends the heartbeats and closes their connection (also
** when the handle is collected). */
static int l_stop(lua_State* L) {
  wr_heartbeat_t** box = luaL_checkudata(L, 1, HEARTBEAT_MT);
  if (*box != NULL) {
    wr_heartbeat_close(*box);
    *box = NULL;
  }
  return 0;
}

static const luaL_Reg methods[] = {
  { "stop", l_stop }, { NULL, NULL }
};

void wr__lua_open_heartbeat(lua_State* L) {
  wr__lua_new_gc_class(L, HEARTBEAT_MT, methods, l_stop);
  lua_pushcfunction(L, l_heartbeat);
  lua_setfield(L, -2, "heartbeat");
}
