/*
** Lua binding of child processes (libuv uv_spawn): the coordinator starts
** its workers with it and learns of their exit.
** A process handle lives until its exit callback ran and :close() was
** called (or until exit, if it was closed earlier).
*/
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "lua_aux.h"

#define PROCESS_MT "weir.process"

typedef struct {
  uv_process_t proc;
  int exit_ref;   /* Lua callback for the exit */
  int exited;
  int closed;     /* :close() was called */
} lproc_t;

static void close_cb(uv_handle_t* handle) {
  free(handle->data);
}

static void exit_cb(uv_process_t* proc, int64_t status, int term_signal) {
  lproc_t* p = proc->data;
  lua_State* L = wr__lua_state();
  int ref = p->exit_ref;
  p->exited = 1;
  p->exit_ref = LUA_NOREF;
  if (p->closed) uv_close((uv_handle_t*) proc, close_cb);
  if (ref == LUA_NOREF) return;
  lua_pushnumber(L, (lua_Number) status);
  lua_pushinteger(L, term_signal);
  wr__lua_callback(ref, 2);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

static char** string_array(lua_State* L, int idx, const char* first) {
  int n = idx ? (int) lua_objlen(L, idx) : 0;
  int i, k = 0;
  char** out = calloc((size_t) n + 2, sizeof(char*));
  if (out == NULL) return NULL;
  if (first) out[k++] = (char*) first;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    out[k++] = (char*) luaL_checkstring(L, -1);
    lua_pop(L, 1);  /* the string stays alive in the table */
  }
  return out;
}

/* core.spawn(file, args, env, fn [, cwd]) -> process | nil, message, code.
** args: list of arguments (after argv[0] = file); env: list of "K=V"
** (nil: inherit); fn(exit_status, term_signal) once the process exited;
** cwd: the directory it starts in (nil: this process's). stdin is
** closed; stdout and stderr are the caller's. */
static int l_spawn(lua_State* L) {
  const char* file = luaL_checkstring(L, 1);
  const char* cwd = luaL_optstring(L, 5, NULL);
  uv_process_options_t opts;
  uv_stdio_container_t stdio[3];
  lproc_t** box;
  lproc_t* p;
  char** args;
  char** env = NULL;
  int r;
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  args = string_array(L, 2, file);
  if (!lua_isnil(L, 3)) env = string_array(L, 3, NULL);
  memset(&opts, 0, sizeof(opts));
  opts.file = file;
  opts.args = args;
  opts.env = env;
  opts.exit_cb = exit_cb;
  opts.cwd = cwd;
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = 1;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  opts.stdio = stdio;
  opts.stdio_count = 3;
  box = lua_newuserdata(L, sizeof(*box));
  p = calloc(1, sizeof(*p));
  *box = p;
  p->proc.data = p;
  p->exit_ref = LUA_NOREF;
  r = uv_spawn(wr__lua_loop(), &p->proc, &opts);
  free(args);
  free(env);
  if (r < 0) {
    uv_close((uv_handle_t*) &p->proc, close_cb);
    *box = NULL;
    return wr__lua_push_error(L, r);
  }
  lua_pushvalue(L, 4);
  p->exit_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_getmetatable(L, PROCESS_MT);
  lua_setmetatable(L, -2);
  return 1;
}

static lproc_t* check_proc(lua_State* L) {
  lproc_t** box = luaL_checkudata(L, 1, PROCESS_MT);
  if (*box == NULL) luaL_error(L, "process is closed");
  return *box;
}

/* process:pid() -> the process id */
static int l_pid(lua_State* L) {
  lua_pushinteger(L, check_proc(L)->proc.pid);
  return 1;
}

/* process:kill(signal) sends "KILL", "TERM", "STOP", "CONT" or "INT" (or a
** number). Returns true | nil, message, code (e.g. after exit). */
static int l_kill(lua_State* L) {
  static const char* const names[] = { "KILL", "TERM", "STOP", "CONT", "INT",
                                       NULL };
  static const int numbers[] = { SIGKILL, SIGTERM, SIGSTOP, SIGCONT, SIGINT };
  lproc_t* p = check_proc(L);
  int sig = lua_type(L, 2) == LUA_TNUMBER
                ? (int) lua_tointeger(L, 2)
                : numbers[luaL_checkoption(L, 2, "TERM", names)];
  int r;
  if (p->exited) return wr__lua_push_error(L, UV_ESRCH);
  r = uv_process_kill(&p->proc, sig);
  if (r < 0) return wr__lua_push_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* process:close() releases the handle; the exit callback still runs if
** the process has not exited yet. */
static int l_close(lua_State* L) {
  lproc_t** box = luaL_checkudata(L, 1, PROCESS_MT);
  lproc_t* p = *box;
  if (p == NULL) return 0;
  *box = NULL;
  p->closed = 1;
  if (p->exited) uv_close((uv_handle_t*) &p->proc, close_cb);
  return 0;
}

/* core.die_with_parent(parent_pid) makes the kernel kill this process
** when its parent exits (Linux), so workers never outlive a coordinator
** killed with SIGKILL; exits at once if the parent is already gone.
** Returns true, or false where the system cannot do it. */
static int l_die_with_parent(lua_State* L) {
#ifdef __linux__
  pid_t parent = (pid_t) luaL_checkinteger(L, 1);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (getppid() != parent) _exit(1);
  lua_pushboolean(L, 1);
#else
  lua_pushboolean(L, 0);
#endif
  return 1;
}

/* core.take_env(name) -> the value of the environment variable name, or
** nil; removes it from this process's environment, so that processes it
** starts do not inherit it (a secret handed over by the parent). */
static int l_take_env(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  const char* value = getenv(name);
  if (value == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, value);
  unsetenv(name);
  return 1;
}

/* core.environ() -> list of this process's environment as "NAME=VALUE"
** strings, for core.spawn's env. */
static int l_environ(lua_State* L) {
  extern char** environ;
  int i;
  lua_newtable(L);
  for (i = 0; environ[i] != NULL; i++) {
    lua_pushstring(L, environ[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* core.getuid() -> the real user id of this process. */
static int l_getuid(lua_State* L) {
  lua_pushinteger(L, (lua_Integer) getuid());
  return 1;
}

/* core.pid_alive(pid) -> true when a process pid exists (kill(pid, 0)
** finds it, or finds it but may not signal it), false when none does. */
static int l_pid_alive(lua_State* L) {
  pid_t pid = (pid_t) luaL_checkinteger(L, 1);
  lua_pushboolean(L, pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH));
  return 1;
}

/* core.crash() kills this process with SIGKILL at once, as a crash or
** kill -9 would: no handler runs, nothing is flushed. For fault injection
** (see weir.failpoint). Does not return. */
static int l_crash(lua_State* L) {
  (void) L;
  raise(SIGKILL);
  _exit(137);
}

static const luaL_Reg methods[] = {
  { "pid", l_pid }, { "kill", l_kill }, { "close", l_close }, { NULL, NULL }
};

void wr__lua_open_process(lua_State* L) {
  wr__lua_new_class(L, PROCESS_MT, methods);
  lua_pushcfunction(L, l_spawn);
  lua_setfield(L, -2, "spawn");
  lua_pushcfunction(L, l_die_with_parent);
  lua_setfield(L, -2, "die_with_parent");
  lua_pushcfunction(L, l_crash);
  lua_setfield(L, -2, "crash");
  lua_pushcfunction(L, l_take_env);
  lua_setfield(L, -2, "take_env");
  lua_pushcfunction(L, l_environ);
  lua_setfield(L, -2, "environ");
  lua_pushcfunction(L, l_getuid);
  lua_setfield(L, -2, "getuid");
  lua_pushcfunction(L, l_pid_alive);
  lua_setfield(L, -2, "pid_alive");
}
