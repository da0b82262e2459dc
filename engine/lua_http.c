/*
** Lua binding of Debian's libhttp-parser (nodejs/http-parser 2.9) for the
** coordinator's HTTP API, which reads and writes weir's own libuv TCP
** connections (lua_net.c): core.http_parser() -> parser;
** parser:feed(bytes) -> requests | nil, message. The parser keeps what a
** request has so far between feeds; each request that completed in bytes
** comes back as { method, url, headers = { lower-case name = value },
** body, keep_alive }. core.http_parser("response") reads responses the
** same way (the etcd client's), each with its status. No Lua runs inside http_parser_execute: requests are
** gathered in C and returned.
**
** Built only where http_parser.h is found (WEIR_HAVE_HTTP_PARSER);
** otherwise core.http_parser is absent.
*/
#include <stdlib.h>
#include <string.h>

#include "lua_aux.h"

#ifdef WEIR_HAVE_HTTP_PARSER
#include <http_parser.h>

#define PARSER_MT "weir.http_parser"
#define MAX_HEAD_BYTES (64 * 1024)   /* url and headers of one request */
#define MAX_BODY_BYTES (1024 * 1024) /* body of one request */

typedef struct {
  char* data;
  size_t len, cap;
} grow_t;

typedef struct {
  http_parser parser;
  grow_t url, field, value, body;
  int in_value;      /* the last header callback was a value */
  int headers_ref;   /* the request's header table (registry) */
  int list_ref;      /* the requests completed in this feed (registry) */
  int count;         /* how many are in it */
  lua_State* L;
  const char* error; /* why this feed stops, or NULL */
} lparser_t;

static int grow(grow_t* g, const char* at, size_t n, size_t max) {
  if (g->len + n > max) return -1;
  if (g->len + n > g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 256;
    char* data;
    while (cap < g->len + n) cap *= 2;
    data = realloc(g->data, cap);
    if (data == NULL) return -1;
    g->cap = cap;
    g->data = data;
  }
  memcpy(g->data + g->len, at, n);
  g->len += n;
  return 0;
}

static lparser_t* of(http_parser* p) { return (lparser_t*) p->data; }

/* A header's name and value are complete: into the header table. */
static void flush_header(lparser_t* lp) {
  lua_State* L = lp->L;
  size_t i;
  if (lp->field.len == 0) return;
  for (i = 0; i < lp->field.len; i++) {
    char c = lp->field.data[i];
    if (c >= 'A' && c <= 'Z') lp->field.data[i] = (char) (c - 'A' + 'a');
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->headers_ref);
  lua_pushlstring(L, lp->field.data, lp->field.len);
  lua_pushlstring(L, lp->value.data ? lp->value.data : "", lp->value.len);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lp->field.len = lp->value.len = 0;
}

static int on_message_begin(http_parser* p) {
  lparser_t* lp = of(p);
  lp->url.len = lp->field.len = lp->value.len = lp->body.len = 0;
  lp->in_value = 0;
  lua_newtable(lp->L);
  luaL_unref(lp->L, LUA_REGISTRYINDEX, lp->headers_ref);
  lp->headers_ref = luaL_ref(lp->L, LUA_REGISTRYINDEX);
  return 0;
}

static int on_url(http_parser* p, const char* at, size_t n) {
  lparser_t* lp = of(p);
  if (grow(&lp->url, at, n, MAX_HEAD_BYTES) < 0) {
    lp->error = "the request's url is too long";
    return -1;
  }
  return 0;
}

static int on_header_field(http_parser* p, const char* at, size_t n) {
  lparser_t* lp = of(p);
  if (lp->in_value) flush_header(lp);
  lp->in_value = 0;
  if (grow(&lp->field, at, n, MAX_HEAD_BYTES) < 0) {
    lp->error = "a header of the request is too long";
    return -1;
  }
  return 0;
}

static int on_header_value(http_parser* p, const char* at, size_t n) {
  lparser_t* lp = of(p);
  lp->in_value = 1;
  if (grow(&lp->value, at, n, MAX_HEAD_BYTES) < 0) {
    lp->error = "a header of the request is too long";
    return -1;
  }
  return 0;
}

static int on_headers_complete(http_parser* p) {
  flush_header(of(p));
  return 0;
}

static int on_body(http_parser* p, const char* at, size_t n) {
  lparser_t* lp = of(p);
  if (grow(&lp->body, at, n, MAX_BODY_BYTES) < 0) {
    lp->error = "the request's body is longer than 1 MiB";
    return -1;
  }
  return 0;
}

/* A request is complete: appended to this feed's list. */
static int on_message_complete(http_parser* p) {
  lparser_t* lp = of(p);
  lua_State* L = lp->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->list_ref);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, http_method_str((enum http_method) p->method));
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, lp->url.data ? lp->url.data : "", lp->url.len);
  lua_setfield(L, -2, "url");
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->headers_ref);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, lp->body.data ? lp->body.data : "", lp->body.len);
  lua_setfield(L, -2, "body");
  lua_pushboolean(L, http_should_keep_alive(p));
  lua_setfield(L, -2, "keep_alive");
  if (p->type == HTTP_RESPONSE) {
    lua_pushinteger(L, (lua_Integer) p->status_code);
    lua_setfield(L, -2, "status");
  }
  lua_rawseti(L, -2, ++lp->count);
  lua_pop(L, 1);
  return 0;
}

static const http_parser_settings SETTINGS = {
  .on_message_begin = on_message_begin, .on_url = on_url,
  .on_header_field = on_header_field, .on_header_value = on_header_value,
  .on_headers_complete = on_headers_complete, .on_body = on_body,
  .on_message_complete = on_message_complete,
};

/* core.http_parser([kind]) -> parser of HTTP/1.x requests, or with kind
** "response" of responses (each with its status; a response without a
** length ends at feed(""), the connection's end). */
static int l_http_parser(lua_State* L) {
  static const char* const kinds[] = { "request", "response", NULL };
  int response = luaL_checkoption(L, 1, "request", kinds) == 1;
  lparser_t* lp = lua_newuserdata(L, sizeof(*lp));
  memset(lp, 0, sizeof(*lp));
  http_parser_init(&lp->parser, response ? HTTP_RESPONSE : HTTP_REQUEST);
  lp->parser.data = lp;
  lp->headers_ref = lp->list_ref = LUA_NOREF;
  luaL_getmetatable(L, PARSER_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* parser:feed(bytes) -> { request, ... } (those that completed; maybe
** none) | nil, message when bytes are not HTTP (the connection is to be
** answered 400 and closed; the parser takes no more). */
static int l_feed(lua_State* L) {
  lparser_t* lp = luaL_checkudata(L, 1, PARSER_MT);
  size_t len, done;
  const char* bytes = luaL_checklstring(L, 2, &len);
  if (HTTP_PARSER_ERRNO(&lp->parser) != HPE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, "the connection sent a malformed request before");
    return 2;
  }
  lp->L = L;
  lp->error = NULL;
  lp->count = 0;
  lua_newtable(L);
  lp->list_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  done = http_parser_execute(&lp->parser, &SETTINGS, bytes, len);
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->list_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, lp->list_ref);
  lp->list_ref = LUA_NOREF;
  if (HTTP_PARSER_ERRNO(&lp->parser) != HPE_OK || done != len) {
    enum http_errno e = HTTP_PARSER_ERRNO(&lp->parser);
    lua_pushnil(L);
    if (lp->error) lua_pushstring(L, lp->error);
    else lua_pushfstring(L, "malformed request: %s", http_errno_description(e));
    return 2;
  }
  return 1;
}

static int l_parser_gc(lua_State* L) {
  lparser_t* lp = luaL_checkudata(L, 1, PARSER_MT);
  free(lp->url.data);
  free(lp->field.data);
  free(lp->value.data);
  free(lp->body.data);
  lp->url.data = lp->field.data = lp->value.data = lp->body.data = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, lp->headers_ref);
  lp->headers_ref = LUA_NOREF;
  return 0;
}

static const luaL_Reg parser_methods[] = {
  { "feed", l_feed }, { NULL, NULL }
};

static const luaL_Reg http_functions[] = {
  { "http_parser", l_http_parser }, { NULL, NULL }
};

void wr__lua_open_http(lua_State* L) {
  wr__lua_new_gc_class(L, PARSER_MT, parser_methods, l_parser_gc);
  luaL_register(L, NULL, http_functions);
}

#else

void wr__lua_open_http(lua_State* L) { (void) L; }

#endif
