/*
** Lua binding of the libuv loop: timers, idle handles, signals and
** core.run().
** Handles are long-lived: a timer or idle handle lives until its :close(),
** and its memory is reclaimed in the close callback. A Lua error raised by
** a callback stops the loop and is raised again by core.run().
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua_aux.h"

#define TIMER_MT "weir.timer"
#define IDLE_MT "weir.idle"
#define SIGNAL_MT "weir.signal"

typedef struct {
  union {
    uv_handle_t handle;
    uv_timer_t timer;
    uv_idle_t idle;
    uv_signal_t signal;
  } u;
  int fn_ref;   /* registry reference of the Lua callback */
} lhandle_t;

static lhandle_t** check_handle(lua_State* L, const char* mt) {
  lhandle_t** box = luaL_checkudata(L, 1, mt);
  if (*box == NULL) luaL_error(L, "%s is closed", mt);
  return box;
}

static lhandle_t** new_handle(lua_State* L, const char* mt) {
  lhandle_t** box;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  box = lua_newuserdata(L, sizeof(*box));
  *box = calloc(1, sizeof(**box));
  if (*box == NULL) luaL_error(L, "out of memory");
  lua_pushvalue(L, 1);
  (*box)->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_getmetatable(L, mt);
  lua_setmetatable(L, -2);
  return box;
}

static void close_cb(uv_handle_t* handle) {
  free(handle);
}

static int handle_close(lua_State* L, const char* mt) {
  lhandle_t** box = luaL_checkudata(L, 1, mt);
  if (*box != NULL) {
    luaL_unref(L, LUA_REGISTRYINDEX, (*box)->fn_ref);
    uv_close(&(*box)->u.handle, close_cb);
    *box = NULL;
  }
  return 0;
}

/* -- Timers --------------------------------------------------------------- */

static void timer_cb(uv_timer_t* timer) {
  wr__lua_callback(((lhandle_t*) timer)->fn_ref, 0);
}

/* core.timer(fn) -> timer; fn() runs on each expiry. */
static int l_timer(lua_State* L) {
  lhandle_t** box = new_handle(L, TIMER_MT);
  uv_timer_init(wr__lua_loop(), &(*box)->u.timer);
  return 1;
}

/* timer:start(timeout_ms, repeat_ms) starts or restarts the timer. */
static int l_timer_start(lua_State* L) {
  lhandle_t** box = check_handle(L, TIMER_MT);
  uint64_t timeout_ms = (uint64_t) luaL_checknumber(L, 2);
  uint64_t repeat_ms = (uint64_t) luaL_optnumber(L, 3, 0);
  uv_timer_start(&(*box)->u.timer, timer_cb, timeout_ms, repeat_ms);
  return 0;
}

static int l_timer_stop(lua_State* L) {
  uv_timer_stop(&(*check_handle(L, TIMER_MT))->u.timer);
  return 0;
}

/* timer:unref() lets the loop end while the timer is its only active
** handle (core.run, core.drain return): for timers that only serve
** whatever else runs, such as a lease's renewal. */
static int l_timer_unref(lua_State* L) {
  uv_unref((uv_handle_t*) &(*check_handle(L, TIMER_MT))->u.timer);
  return 0;
}

static int l_timer_close(lua_State* L) { return handle_close(L, TIMER_MT); }

/* -- Idle handles: run a step whenever the loop has nothing else to do --- */

static void idle_cb(uv_idle_t* idle) {
  wr__lua_callback(((lhandle_t*) idle)->fn_ref, 0);
}

/* core.idle(fn) -> idle; while started, fn() runs once per loop turn. */
static int l_idle(lua_State* L) {
  lhandle_t** box = new_handle(L, IDLE_MT);
  uv_idle_init(wr__lua_loop(), &(*box)->u.idle);
  return 1;
}

static int l_idle_start(lua_State* L) {
  uv_idle_start(&(*check_handle(L, IDLE_MT))->u.idle, idle_cb);
  return 0;
}

static int l_idle_stop(lua_State* L) {
  uv_idle_stop(&(*check_handle(L, IDLE_MT))->u.idle);
  return 0;
}

static int l_idle_close(lua_State* L) { return handle_close(L, IDLE_MT); }

/* -- Signals: SIGTERM and SIGINT, delivered through the loop -------------- */

static void signal_cb(uv_signal_t* s, int signum) {
  lua_pushstring(wr__lua_state(), signum == SIGTERM ? "TERM" : "INT");
  wr__lua_callback(((lhandle_t*) s)->fn_ref, 1);
}

/* core.signal(name, fn) -> handle: fn(name) runs from the loop each time
** the process gets the signal name ("TERM" or "INT") instead of the
** signal's default action, until handle:close(). The handle does not keep
** the loop running. Raises on another name. */
static int l_signal(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  int signum = strcmp(name, "TERM") == 0 ? SIGTERM
             : strcmp(name, "INT") == 0 ? SIGINT : 0;
  lhandle_t** box;
  if (signum == 0) return luaL_error(L, "core.signal: TERM or INT, not %s",
                                     name);
  lua_remove(L, 1);
  box = new_handle(L, SIGNAL_MT);
  uv_signal_init(wr__lua_loop(), &(*box)->u.signal);
  uv_signal_start(&(*box)->u.signal, signal_cb, signum);
  uv_unref(&(*box)->u.handle);
  return 1;
}

static int l_signal_close(lua_State* L) { return handle_close(L, SIGNAL_MT); }

/* -- Running the loop ----------------------------------------------------- */

/* core.run() runs the loop until no handle or request is active. Raises
** the first error a callback raised (after which the loop is stopped and
** the caller must close its handles). */
static int l_run(lua_State* L) {
  int err_ref = wr__lua_run(L, UV_RUN_DEFAULT, NULL);
  if (err_ref == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, err_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, err_ref);
  return lua_error(L);
}

/* core.run_once() runs one iteration of the loop, waiting for an event if
** none is ready, with the calling state as the one callbacks run on.
** Returns true while handles or requests remain active. Raises the first
** error a callback raised. Used to wait for one thing (a reply, a line of
** input) while everything else on the loop goes on; not to be called from
** a callback. */
static int l_run_once(lua_State* L) {
  int alive;
  int err_ref = wr__lua_run(L, UV_RUN_ONCE, &alive);
  if (err_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, err_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, err_ref);
    return lua_error(L);
  }
  lua_pushboolean(L, alive != 0);
  return 1;
}

/* core.cwd() -> the current working directory | nil, message, name. */
static int l_cwd(lua_State* L) {
  char buf[4096];
  size_t len = sizeof(buf);
  int rc = uv_cwd(buf, &len);
  if (rc != 0) return wr__lua_push_error(L, rc);
  lua_pushlstring(L, buf, len);
  return 1;
}

/* core.drain() runs the loop until pending requests (snapshot writes) have
** called back, ignoring their Lua errors: used when a job fails. */
static int l_drain(lua_State* L) {
  int err_ref = wr__lua_run(L, UV_RUN_DEFAULT, NULL);
  luaL_unref(L, LUA_REGISTRYINDEX, err_ref);
  return 0;
}

/* core.stop() makes core.run() return after the current callback, even
** though handles are still active. */
static int l_stop(lua_State* L) {
  (void) L;
  uv_stop(wr__lua_loop());
  return 0;
}

/* core.monotonic_ms() -> milliseconds from an arbitrary origin (float). */
static int l_monotonic_ms(lua_State* L) {
  lua_pushnumber(L, (double) uv_hrtime() / 1e6);
  return 1;
}

/* core.time_ms() -> wall-clock milliseconds since the Unix epoch. */
static int l_time_ms(lua_State* L) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  lua_pushnumber(L, (double) tv.tv_sec * 1000 + (double) (tv.tv_usec / 1000));
  return 1;
}

/* core.cpu_count() -> the number of CPUs this process may use. */
static int l_cpu_count(lua_State* L) {
  lua_pushinteger(L, (lua_Integer) uv_available_parallelism());
  return 1;
}

/* core.exepath() -> the absolute path of the running executable. */
static int l_exepath(lua_State* L) {
  char path[4096];
  size_t len = sizeof(path);
  int r = uv_exepath(path, &len);
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushlstring(L, path, len);
  return 1;
}

/* core.exit(status) ends the process at once (after stdio is flushed). */
static int l_exit(lua_State* L) {
  fflush(stdout);
  fflush(stderr);
  _exit((int) luaL_optinteger(L, 1, 0));
  return 0;
}

/* core.isatty(fd) -> whether the file descriptor is a terminal. */
static int l_isatty(lua_State* L) {
  lua_pushboolean(L, uv_guess_handle((uv_file) luaL_checkinteger(L, 1)) ==
                         UV_TTY);
  return 1;
}

/* core.getpid() -> the process id. */
static int l_getpid(lua_State* L) {
  lua_pushinteger(L, (lua_Integer) uv_os_getpid());
  return 1;
}

static const luaL_Reg timer_methods[] = {
  { "start", l_timer_start }, { "stop", l_timer_stop },
  { "unref", l_timer_unref }, { "close", l_timer_close }, { NULL, NULL }
};

static const luaL_Reg idle_methods[] = {
  { "start", l_idle_start }, { "stop", l_idle_stop },
  { "close", l_idle_close }, { NULL, NULL }
};

static const luaL_Reg signal_methods[] = {
  { "close", l_signal_close }, { NULL, NULL }
};

static const luaL_Reg loop_functions[] = {
  { "timer", l_timer }, { "idle", l_idle }, { "signal", l_signal },
  { "run", l_run },
  { "drain", l_drain }, { "stop", l_stop }, { "run_once", l_run_once },
  { "cwd", l_cwd },
  { "monotonic_ms", l_monotonic_ms },
  { "time_ms", l_time_ms }, { "getpid", l_getpid },
  { "cpu_count", l_cpu_count }, { "exepath", l_exepath }, { "exit", l_exit },
  { "isatty", l_isatty },
  { NULL, NULL }
};

void wr__lua_open_loop(lua_State* L) {
  wr__lua_new_class(L, TIMER_MT, timer_methods);
  wr__lua_new_class(L, IDLE_MT, idle_methods);
  wr__lua_new_class(L, SIGNAL_MT, signal_methods);
  luaL_register(L, NULL, loop_functions);
}
