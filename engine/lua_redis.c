/*
** Lua binding of hiredis's asynchronous client (Debian's libhiredis, with
** its libuv adapter): connections to a Redis server on the loop every
** binding shares, for the Redis Streams source and sink (weir.redis).
** Replies reach Lua as values: a bulk or status string as a string, an
** integer as a number, a nil reply as false, an array as a table; a Redis
** error as (nil, message). Built only where hiredis is found
** (WEIR_HAVE_HIREDIS); elsewhere core.redis_connect is absent.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lua_aux.h"

#ifdef WEIR_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#define REDIS_MT "weir.redis"
#define MAX_ARGS (1 << 20)
#define STACK_ARGS 64

typedef struct {
  redisAsyncContext* ctx;  /* NULL once disconnected */
  int event_ref;           /* on_event(kind, message) */
  int self_ref;            /* the userdata, alive while ctx is */
  lua_State* closing_L;    /* set while conn:close() runs */
} lredis_t;

/* The state a callback of c runs on: the loop's, or, when hiredis calls
** back from within conn:close() outside the loop, close's caller's (then
** NULL is returned for events: a close asked for needs no news). */
static lua_State* state_of(const lredis_t* c, int for_event) {
  lua_State* L = wr__lua_state();
  if (L != NULL) return L;
  return for_event ? NULL : c->closing_L;
}

/* -- The connection on the loop -------------------------------------------
** hiredis's own libuv adapter (adapters/libuv.h, BSD licence), with one
** change: its version in Debian (0.14) drops a poll error, so a refused
** connect or a reset connection is never reported and the connection
** hangs. Here an error hands the context to hiredis as an event, which
** then finds the socket's error and reports it (connect or disconnect
** callback). */
typedef struct {
  redisAsyncContext* context;  /* NULL once hiredis cleaned up */
  uv_poll_t handle;
  int events;
} poll_events_t;

static void on_poll(uv_poll_t* handle, int status, int events) {
  poll_events_t* p = handle->data;
  if (status != 0) events = p->events;  /* libuv stopped the handle */
  if (p->context != NULL && (events & UV_READABLE))
    redisAsyncHandleRead(p->context);
  if (p->context != NULL && (events & UV_WRITABLE))
    redisAsyncHandleWrite(p->context);
}

static void set_events(poll_events_t* p, int events) {
  p->events = events;
  if (events) uv_poll_start(&p->handle, events, on_poll);
  else uv_poll_stop(&p->handle);
}

static void add_read(void* d) {
  poll_events_t* p = d;
  set_events(p, p->events | UV_READABLE);
}

static void del_read(void* d) {
  poll_events_t* p = d;
  set_events(p, p->events & ~UV_READABLE);
}

static void add_write(void* d) {
  poll_events_t* p = d;
  set_events(p, p->events | UV_WRITABLE);
}

static void del_write(void* d) {
  poll_events_t* p = d;
  set_events(p, p->events & ~UV_WRITABLE);
}

static void free_on_close(uv_handle_t* handle) { free(handle->data); }

static void cleanup(void* d) {
  poll_events_t* p = d;
  p->context = NULL;
  uv_close((uv_handle_t*) &p->handle, free_on_close);
}

/* Attaches ac to loop; returns 0 or -1 (out of memory, a bad socket). */
static int attach(redisAsyncContext* ac, uv_loop_t* loop) {
  poll_events_t* p = calloc(1, sizeof(*p));
  if (p == NULL) return -1;
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    free(p);
    return -1;
  }
  p->handle.data = p;
  p->context = ac;
  ac->ev.data = p;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  return 0;
}

/* Pushes reply r as a Lua value (see the file's comment). */
static void push_reply(lua_State* L, const redisReply* r) {
  size_t i;
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      lua_pushlstring(L, r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      lua_pushnumber(L, (lua_Number) r->integer);
      break;
    case REDIS_REPLY_ARRAY:
      lua_createtable(L, (int) r->elements, 0);
      for (i = 0; i < r->elements; i++) {
        push_reply(L, r->element[i]);
        lua_rawseti(L, -2, (int) i + 1);
      }
      break;
    case REDIS_REPLY_ERROR:  /* inside an array (EXEC): its message */
      lua_pushlstring(L, r->str, r->len);
      break;
    default:                 /* REDIS_REPLY_NIL */
      lua_pushboolean(L, 0);
  }
}

/* A reply, or NULL when the connection went before it came. */
static void on_reply(redisAsyncContext* ctx, void* reply, void* privdata) {
  lua_State* L = wr__lua_state();
  int ref = (int) (intptr_t) privdata;
  const redisReply* r = reply;
  if (r == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, ctx->errstr[0] ? ctx->errstr : "connection closed");
    lua_pushboolean(L, 1);
  } else if (r->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    lua_pushlstring(L, r->str, r->len);
    lua_pushboolean(L, 0);
  } else {
    push_reply(L, r);
    lua_pushnil(L);
    lua_pushboolean(L, 0);
  }
  wr__lua_callback(ref, 3);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

/* Calls on_event(kind, message) of the connection ctx belongs to. */
static void event(const redisAsyncContext* ctx, const char* kind,
                  const char* message) {
  lredis_t* c = ctx->data;
  lua_State* L = state_of(c, 1);
  if (L == NULL) return;
  lua_pushstring(L, kind);
  if (message) lua_pushstring(L, message); else lua_pushnil(L);
  wr__lua_callback(c->event_ref, 2);
}

/* The end of a connection: hiredis frees ctx after this returns. */
static void forget(lredis_t* c) {
  lua_State* L = state_of(c, 0);
  c->ctx = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, c->event_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->self_ref);
  c->event_ref = c->self_ref = LUA_NOREF;
}

static void on_connect(const redisAsyncContext* ctx, int status) {
  lredis_t* c = ctx->data;
  if (status == REDIS_OK) {
    event(ctx, "connected", NULL);
    return;
  }
  event(ctx, "disconnected", ctx->errstr);
  forget(c);  /* hiredis frees a context whose connect failed */
}

static void on_disconnect(const redisAsyncContext* ctx, int status) {
  lredis_t* c = ctx->data;
  event(ctx, "disconnected", status == REDIS_OK ? NULL : ctx->errstr);
  forget(c);
}

/* core.redis_connect(host, port, on_event) -> conn | nil, message
** Connects to the Redis server at host (an IP address or name) and port
** without blocking. on_event(kind, message) is called from the loop:
** ("connected") once the connection is up, ("disconnected", why) when it
** failed or went (why is nil after conn:close()). Commands may be sent
** before "connected": they go once it is up. */
static int l_redis_connect(lua_State* L) {
  const char* host = luaL_checkstring(L, 1);
  int port = (int) luaL_checkinteger(L, 2);
  lredis_t* c;
  redisAsyncContext* ctx;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  ctx = redisAsyncConnect(host, port);
  if (ctx == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, "redis: out of memory");
    return 2;
  }
  if (ctx->err) {
    lua_pushnil(L);
    lua_pushfstring(L, "redis %s:%d: %s", host, port, ctx->errstr);
    redisAsyncFree(ctx);
    return 2;
  }
  if (attach(ctx, wr__lua_loop()) != 0) {
    redisAsyncFree(ctx);
    lua_pushnil(L);
    lua_pushfstring(L, "redis %s:%d: cannot watch the connection", host,
                    port);
    return 2;
  }
  c = lua_newuserdata(L, sizeof(*c));
  luaL_getmetatable(L, REDIS_MT);
  lua_setmetatable(L, -2);
  c->ctx = ctx;
  c->closing_L = NULL;
  ctx->data = c;
  lua_pushvalue(L, 3);
  c->event_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  redisAsyncSetConnectCallback(ctx, on_connect);
  redisAsyncSetDisconnectCallback(ctx, on_disconnect);
  return 1;
}

/* What conn:command and conn:command_raw return once hiredis took the
** command (ok) or refused it; a refused command's callback (ref) is
** released, for no reply will come. */
static int push_sent(lua_State* L, int ok, int ref) {
  if (!ok) {
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    lua_pushnil(L);
    lua_pushstring(L, "redis: cannot send the command");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:command(args, callback) -> true | nil, message
** Sends the command args (an array of strings and numbers, e.g.
** { "XADD", "s", "*", "f", "v" }; numbers in it are replaced by their
** strings); callback(reply, err, lost) gets the
** reply (see the file's comment) or nil and Redis's error, or nil, why
** and true when the connection went before the reply came. */
static int l_command(lua_State* L) {
  lredis_t* c = luaL_checkudata(L, 1, REDIS_MT);
  const char* stack_argv[STACK_ARGS];
  size_t stack_lens[STACK_ARGS];
  const char** argv = stack_argv;
  size_t* lens = stack_lens;
  int n, i, ref, ok;
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (c->ctx == NULL || (c->ctx->c.flags & REDIS_DISCONNECTING)) {
    lua_pushnil(L);
    lua_pushstring(L, "redis: the connection is closed");
    return 2;
  }
  n = (int) lua_objlen(L, 2);
  if (n < 1 || n > MAX_ARGS)
    return luaL_error(L, "redis: a command has 1 to %d arguments, not %d",
                      MAX_ARGS, n);
  lua_settop(L, 3);
  /* Numbers become strings in args itself, which then anchors every
  ** string while hiredis formats the command (no allocation between). */
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      lua_tostring(L, -1);
      lua_rawseti(L, 2, i + 1);
    } else if (lua_type(L, -1) != LUA_TSTRING) {
      return luaL_error(L, "redis: argument %d of the command is a %s, "
                        "not a string or number", i + 1, luaL_typename(L, -1));
    } else {
      lua_pop(L, 1);
    }
  }
  if (n > STACK_ARGS) {
    argv = malloc(sizeof(*argv) * (size_t) n);
    lens = malloc(sizeof(*lens) * (size_t) n);
    if (argv == NULL || lens == NULL) {
      free(argv);
      free(lens);
      return luaL_error(L, "redis: out of memory for %d arguments", n);
    }
  }
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    argv[i] = lua_tolstring(L, -1, &lens[i]);  /* anchored by args */
    lua_pop(L, 1);
  }
  lua_pushvalue(L, 3);
  ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ok = redisAsyncCommandArgv(c->ctx, on_reply, (void*) (intptr_t) ref, n,
                             argv, lens) == REDIS_OK;
  if (argv != stack_argv) {
    free(argv);
    free(lens);
  }
  return push_sent(L, ok, ref);
}

/* conn:command_raw(bytes, cb) -> true | nil, message: sends a command
** already in the Redis protocol (RESP: "*<n>\r\n" then n bulk strings),
** as conn:command does otherwise. The bytes are copied; they are not
** checked, so a malformed command is the server's to refuse. */
static int l_command_raw(lua_State* L) {
  lredis_t* c = luaL_checkudata(L, 1, REDIS_MT);
  size_t len;
  const char* bytes = luaL_checklstring(L, 2, &len);
  int ref, ok;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (c->ctx == NULL || (c->ctx->c.flags & REDIS_DISCONNECTING)) {
    lua_pushnil(L);
    lua_pushstring(L, "redis: the connection is closed");
    return 2;
  }
  lua_pushvalue(L, 3);
  ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ok = redisAsyncFormattedCommand(c->ctx, on_reply, (void*) (intptr_t) ref,
                                  bytes, len) == REDIS_OK;
  return push_sent(L, ok, ref);
}

/* conn:close(): replies still due arrive, then the connection closes and
** on_event("disconnected", nil) is called. Safe to call more than once. */
static int l_close(lua_State* L) {
  lredis_t* c = luaL_checkudata(L, 1, REDIS_MT);
  if (c->ctx != NULL && !(c->ctx->c.flags & REDIS_DISCONNECTING)) {
    c->closing_L = L;
    redisAsyncDisconnect(c->ctx);  /* may free ctx and call back now */
    c->closing_L = NULL;
  }
  return 0;
}

/* conn:connected() -> whether the connection is up (or coming up). */
static int l_connected(lua_State* L) {
  lredis_t* c = luaL_checkudata(L, 1, REDIS_MT);
  lua_pushboolean(L, c->ctx != NULL);
  return 1;
}

static const luaL_Reg methods[] = {
  { "command", l_command }, { "command_raw", l_command_raw },
  { "close", l_close },
  { "connected", l_connected }, { NULL, NULL }
};

void wr__lua_open_redis(lua_State* L) {
  wr__lua_new_class(L, REDIS_MT, methods);
  lua_pushcfunction(L, l_redis_connect);
  lua_setfield(L, -2, "redis_connect");
}
#else
void wr__lua_open_redis(lua_State* L) {
  (void) L;
}
#endif
