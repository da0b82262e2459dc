/*
** Lua binding of line input for the REPL: a line reader on standard input
** (fd 0) driven by the libuv loop, so that timers, jobs and sockets go on
** while the user types.
**
** On a terminal, libedit's readline callback interface edits the line
** (history, completion); Ctrl-C clears it. On a pipe, bytes are read when
** the poll handle reports them and split into lines. A regular file cannot
** be watched by epoll, so it is read from an idle handle instead.
**
** A reader hands over one line at a time: reader:prompt(str) starts
** reading, on_line is called once from a loop callback, and reading stops
** until the next reader:prompt(). The terminal is in libedit's raw mode only
** between the two; while a line is evaluated it is as the program found it.
** libedit's readline interface is global to the process, and fd 0 is one
** stream, so at most one reader is open at a time.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <editline/readline.h>

#include "lua_aux.h"

#define READER_MT "weir.line_reader"
#define READ_BYTES 65536  /* bytes asked of one read() on a pipe or file */

typedef enum { MODE_TERMINAL, MODE_PIPE, MODE_FILE } input_mode_t;

static const char* const mode_names[] = { "terminal", "pipe", "file" };

typedef struct {
  uv_poll_t poll;         /* fd 0 readable (terminal and pipe modes) */
  uv_idle_t idle;         /* hands over buffered lines; reads a file */
  uv_signal_t sigint;     /* Ctrl-C while a terminal prompt is shown */
  uv_signal_t sigwinch;   /* terminal resized while a prompt is shown */
  input_mode_t mode;
  int has_poll;           /* poll was initialized (not in file mode) */
  int open_handles;       /* handles whose close callback has not run */
  int on_line_ref;        /* registry reference of on_line */
  int completer_ref;      /* registry reference of the completer or NOREF */
  int reading;            /* between :prompt() and the line's delivery */
  int eof;                /* fd 0 ended or failed */
  char* prompt;           /* the terminal prompt being shown (malloc'd) */
  char* buf;              /* pipe and file: bytes read, not yet handed over */
  size_t len;             /* bytes in buf */
  size_t cap;             /* bytes allocated for buf */
} reader_t;

/* The open reader: libedit's callbacks carry no user data. */
static reader_t* current = NULL;
static int editline_ready = 0;  /* rl_initialize() ran */

/* -- Handing a line over -------------------------------------------------- */

static void stop_reading(reader_t* r) {
  if (r->mode == MODE_TERMINAL && r->reading) {
    rl_callback_handler_remove();
    uv_signal_stop(&r->sigint);
    uv_signal_stop(&r->sigwinch);
  }
  r->reading = 0;
  if (r->has_poll) uv_poll_stop(&r->poll);
  uv_idle_stop(&r->idle);
}

/* Stops reading and calls on_line(line, why): line is a string of len
** bytes, or NULL with why "eof" or "interrupt". Must run in a loop
** callback; r must not be used afterwards (on_line may close it). */
static void deliver(reader_t* r, const char* line, size_t len,
                    const char* why) {
  lua_State* L = wr__lua_state();
  stop_reading(r);
  if (line != NULL) lua_pushlstring(L, line, len);
  else lua_pushnil(L);
  if (why != NULL) lua_pushstring(L, why);
  else lua_pushnil(L);
  wr__lua_callback(r->on_line_ref, 2);
}

/* -- Terminal: libedit's callback interface ------------------------------- */

/* Ready-made candidates for rl_completion_matches(), which takes them one
** at a time from complete_next(). */
static char** candidates = NULL;
static size_t candidate_next = 0;

static char* complete_next(const char* text, int state) {
  (void) text;
  (void) state;
  if (candidates == NULL || candidates[candidate_next] == NULL) return NULL;
  return candidates[candidate_next++];  /* libedit frees it */
}

static void free_candidates(void) {
  size_t i;
  if (candidates == NULL) return;
  for (i = candidate_next; candidates[i] != NULL; i++) free(candidates[i]);
  free(candidates);
  candidates = NULL;
}

/* libedit's completion hook: asks the Lua completer for the words that
** may replace text (which starts at byte start of the line). Returns the
** matches in readline's format, or NULL (and no file-name completion). */
static char** complete(const char* text, int start, int end) {
  reader_t* r = current;
  lua_State* L = wr__lua_state();
  char** matches = NULL;
  int top;
  size_t n, i, k = 0;
  (void) end;
  rl_attempted_completion_over = 1;
  if (r == NULL || L == NULL || r->completer_ref == LUA_NOREF) return NULL;
  top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->completer_ref);
  lua_pushstring(L, text);
  lua_pushlstring(L, rl_line_buffer, (size_t) rl_end);
  lua_pushinteger(L, start + 1);
  if (lua_pcall(L, 3, 1, 0) != 0 || !lua_istable(L, -1)) {
    lua_settop(L, top);  /* a failing completer completes nothing */
    return NULL;
  }
  n = lua_objlen(L, -1);
  candidates = calloc(n + 1, sizeof(char*));
  for (i = 1; candidates != NULL && i <= n; i++) {
    lua_rawgeti(L, -1, (int) i);
    if (lua_type(L, -1) == LUA_TSTRING) {
      candidates[k] = strdup(lua_tostring(L, -1));
      if (candidates[k] != NULL) k++;
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  if (candidates != NULL) {
    candidate_next = 0;
    matches = rl_completion_matches(text, complete_next);
    free_candidates();
  }
  return matches;
}

/* libedit's line handler: line is malloc'd and ours, or NULL at Ctrl-D. */
static void line_handler(char* line) {
  reader_t* r = current;
  if (r == NULL || !r->reading) {
    free(line);
    return;
  }
  if (line == NULL) {
    deliver(r, NULL, 0, "eof");
  } else {
    deliver(r, line, strlen(line), NULL);
    free(line);
  }
}

/* At exit (os.exit from a loop callback, say) the terminal is left as it
** was found even if a prompt is shown. */
static void restore_terminal(void) {
  if (current != NULL && current->mode == MODE_TERMINAL && current->reading)
    rl_callback_handler_remove();
}

static void editline_init(void) {
  if (editline_ready) return;
  atexit(restore_terminal);
  /* The loop watches the signals; libedit's own handlers would re-raise
  ** Ctrl-C at the whole process group. */
  rl_catch_signals = 0;
  rl_catch_sigwinch = 0;
  rl_readline_name = "weir";
  /* Words run across '.' and ':' so that "weir.tumb" and "p:ma" complete
  ** as a whole; candidates are Lua names, not file names. */
  rl_basic_word_break_characters = " \t\n\"'`=<>~+-*/%^#,;(){}[]&|@$\\";
  rl_completion_append_character = '\0';
  rl_attempted_completion_function = complete;
  rl_initialize();
  editline_ready = 1;
}

/* fd 0 is readable: one key (or key sequence) for libedit. A readable
** terminal with nothing to read has hung up. */
static void terminal_poll_cb(uv_poll_t* handle, int status, int events) {
  reader_t* r = handle->data;
  int available = 0;
  (void) events;
  if (!r->reading) return;
  if (status < 0 || ioctl(0, FIONREAD, &available) < 0 || available <= 0) {
    r->eof = 1;
    deliver(r, NULL, 0, "eof");
    return;
  }
  rl_callback_read_char();
}

/* Ctrl-C at the prompt: drop the line, start a new one. */
static void sigint_cb(uv_signal_t* handle, int signum) {
  reader_t* r = handle->data;
  (void) signum;
  if (!r->reading) return;
  stop_reading(r);
  fputs("\n", stdout);
  fflush(stdout);
  deliver(r, NULL, 0, "interrupt");
}

static void sigwinch_cb(uv_signal_t* handle, int signum) {
  (void) handle;
  (void) signum;
  rl_resize_terminal();
}

/* -- Pipes and files: bytes split into lines ------------------------------ */

/* Hands over the first buffered line, or the unterminated rest at the end
** of input, or the end itself. Returns 0 if more input is needed. */
static int deliver_buffered(reader_t* r) {
  char* nl = r->len > 0 ? memchr(r->buf, '\n', r->len) : NULL;
  size_t len, used;
  char* line;
  if (nl != NULL) {
    len = (size_t) (nl - r->buf);
    used = len + 1;
    if (len > 0 && r->buf[len - 1] == '\r') len--;
  } else if (r->eof && r->len > 0) {
    len = used = r->len;
  } else if (r->eof) {
    deliver(r, NULL, 0, "eof");
    return 1;
  } else {
    return 0;
  }
  line = malloc(len + 1);
  if (line == NULL) {
    r->eof = 1;  /* nothing sensible is left to do with the input */
    r->len = 0;
    deliver(r, NULL, 0, "eof");
    return 1;
  }
  memcpy(line, r->buf, len);
  memmove(r->buf, r->buf + used, r->len - used);
  r->len -= used;
  deliver(r, line, len, NULL);
  free(line);
  return 1;
}

/* Reads what fd 0 has: called when a pipe is readable, or any time for a
** regular file, so it does not wait. Sets eof at the end or on an error. */
static void read_input(reader_t* r) {
  ssize_t n;
  if (r->cap - r->len < READ_BYTES) {
    char* grown = realloc(r->buf, r->len + READ_BYTES);
    if (grown == NULL) {
      r->eof = 1;
      return;
    }
    r->buf = grown;
    r->cap = r->len + READ_BYTES;
  }
  do {
    n = read(0, r->buf + r->len, READ_BYTES);
  } while (n < 0 && errno == EINTR);
  if (n > 0) r->len += (size_t) n;
  else if (n == 0 || errno != EAGAIN) r->eof = 1;
}

static void pipe_poll_cb(uv_poll_t* handle, int status, int events) {
  reader_t* r = handle->data;
  (void) events;
  if (!r->reading) return;
  if (status < 0) r->eof = 1;
  else read_input(r);
  if (r->eof) uv_poll_stop(&r->poll);
  deliver_buffered(r);
}

/* Runs once per loop turn while a line is wanted and none was handed
** over: first hands over what is buffered, then reads (a file) or waits
** for the poll handle (a pipe). */
static void idle_cb(uv_idle_t* handle) {
  reader_t* r = handle->data;
  if (!r->reading || deliver_buffered(r)) return;
  if (r->mode == MODE_FILE) {
    read_input(r);
  } else {
    uv_idle_stop(&r->idle);
    uv_poll_start(&r->poll, UV_READABLE, pipe_poll_cb);
  }
}

/* -- The reader object ---------------------------------------------------- */

static reader_t* check_reader(lua_State* L) {
  reader_t** box = luaL_checkudata(L, 1, READER_MT);
  if (*box == NULL) luaL_error(L, "the line reader is closed");
  return *box;
}

static void close_cb(uv_handle_t* handle) {
  reader_t* r = handle->data;
  if (--r->open_handles == 0) {
    free(r->prompt);
    free(r->buf);
    free(r);
  }
}

/* core.line_reader(on_line) -> reader | nil, message, name.
** Reads standard input line by line through the loop. on_line(line, why)
** is called once per reader:prompt(), from a loop callback: with the line
** (a string without its newline), or with nil and why = "eof" at the end
** of input (Ctrl-D on a terminal) or "interrupt" (Ctrl-C on a terminal,
** which also drops the line being typed). Raises if a reader is open. */
static int l_line_reader(lua_State* L) {
  reader_t** box;
  reader_t* r;
  uv_loop_t* loop = wr__lua_loop();
  int err, fd_flags;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (current != NULL) return luaL_error(L, "a line reader is already open");
  r = calloc(1, sizeof(*r));
  if (r == NULL) return luaL_error(L, "out of memory");
  r->completer_ref = LUA_NOREF;
  r->mode = uv_guess_handle(0) == UV_TTY ? MODE_TERMINAL : MODE_PIPE;
  fd_flags = fcntl(0, F_GETFL);
  err = uv_poll_init(loop, &r->poll, 0);
  if (err == 0) {
    /* uv_poll_init made fd 0 non-blocking, for the shell that shares it
    ** too; reads happen only when it is readable, so blocking is fine. */
    if (fd_flags != -1) fcntl(0, F_SETFL, fd_flags);
    r->has_poll = 1;
  } else if (err == UV_EPERM && r->mode == MODE_PIPE) {
    r->mode = MODE_FILE;  /* epoll refuses regular files */
  } else {
    free(r);
    return wr__lua_push_error(L, err);
  }
  uv_idle_init(loop, &r->idle);
  uv_signal_init(loop, &r->sigint);
  uv_signal_init(loop, &r->sigwinch);
  r->poll.data = r->idle.data = r->sigint.data = r->sigwinch.data = r;
  r->open_handles = 3 + r->has_poll;
  if (r->mode == MODE_TERMINAL) editline_init();

  box = lua_newuserdata(L, sizeof(*box));
  *box = r;
  lua_pushvalue(L, 1);
  r->on_line_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_getmetatable(L, READER_MT);
  lua_setmetatable(L, -2);
  current = r;
  return 1;
}

/* reader:mode() -> "terminal", "pipe" or "file": how standard input is
** read (only a terminal shows prompts, edits lines and keeps history). */
static int l_mode(lua_State* L) {
  lua_pushstring(L, mode_names[check_reader(L)->mode]);
  return 1;
}

/* reader:prompt(str) asks for the next line; on a terminal str is shown
** as the prompt (elsewhere it is ignored). on_line is called once the line
** is complete. Raises if a line is already being read. */
static int l_prompt(lua_State* L) {
  reader_t* r = check_reader(L);
  const char* prompt = luaL_optstring(L, 2, "");
  if (r->reading) return luaL_error(L, "a line is already being read");
  r->reading = 1;
  if (r->mode == MODE_TERMINAL) {
    char* copy = strdup(prompt);
    if (copy == NULL) return luaL_error(L, "out of memory");
    free(r->prompt);
    r->prompt = copy;
    fflush(stdout);
    /* Ctrl-C is caught before the prompt shows: a key pressed as soon as
    ** it appears must not find the default action (ending the process). */
    uv_signal_start(&r->sigint, sigint_cb, SIGINT);
    uv_signal_start(&r->sigwinch, sigwinch_cb, SIGWINCH);
    rl_callback_handler_install(r->prompt, line_handler);
    uv_poll_start(&r->poll, UV_READABLE, terminal_poll_cb);
  } else {
    uv_idle_start(&r->idle, idle_cb);
  }
  return 0;
}

/* reader:notify(message) writes message and a newline to stderr without
** garbling the line being typed: on a terminal prompt, the prompt and what
** was typed so far are drawn again below the message. */
static int l_notify(lua_State* L) {
  reader_t* r = check_reader(L);
  const char* msg = luaL_checkstring(L, 2);
  int editing = r->mode == MODE_TERMINAL && r->reading;
  if (editing) {
    fputs("\n", stdout);
    fflush(stdout);
  }
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
  if (editing) rl_forced_update_display();
  return 0;
}

/* reader:set_completer(fn) completes words on Tab (terminal only):
** fn(text, line, start) -> list of candidate strings, each starting with
** text, the word before the cursor (which begins at byte start of line,
** 1-based). Errors in fn complete nothing. nil removes the completer. */
static int l_set_completer(lua_State* L) {
  reader_t* r = check_reader(L);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, r->completer_ref);
  lua_pushvalue(L, 2);
  r->completer_ref = lua_isnil(L, 2) ? LUA_NOREF
                                     : luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* reader:add_history(line) appends line to the history (terminal only;
** elsewhere there is no history and this does nothing). */
static int l_add_history(lua_State* L) {
  reader_t* r = check_reader(L);
  const char* line = luaL_checkstring(L, 2);
  if (r->mode == MODE_TERMINAL) add_history(line);
  return 0;
}

/* reader:read_history(path) -> true | nil, message, name: loads the
** history file at path (written by :write_history()). */
static int l_read_history(lua_State* L) {
  reader_t* r = check_reader(L);
  const char* path = luaL_checkstring(L, 2);
  int err;
  if (r->mode != MODE_TERMINAL) return lua_pushboolean(L, 1), 1;
  err = read_history(path);
  if (err != 0) return wr__lua_push_error(L, uv_translate_sys_error(err));
  lua_pushboolean(L, 1);
  return 1;
}

/* reader:write_history(path, max_entries) -> true | nil, message, name:
** keeps the newest max_entries lines of the history and writes them to
** path (mode 0600). */
static int l_write_history(lua_State* L) {
  reader_t* r = check_reader(L);
  const char* path = luaL_checkstring(L, 2);
  int max_entries = (int) luaL_checkinteger(L, 3);
  int err;
  if (r->mode != MODE_TERMINAL) return lua_pushboolean(L, 1), 1;
  stifle_history(max_entries);
  err = write_history(path);
  if (err != 0) return wr__lua_push_error(L, uv_translate_sys_error(err));
  lua_pushboolean(L, 1);
  return 1;
}

/* reader:close() stops reading, leaves the terminal as it was found and
** releases the reader; closing twice does nothing. Also run by the
** garbage collector. */
static int l_close(lua_State* L) {
  reader_t** box = luaL_checkudata(L, 1, READER_MT);
  reader_t* r = *box;
  if (r == NULL) return 0;
  stop_reading(r);
  luaL_unref(L, LUA_REGISTRYINDEX, r->on_line_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, r->completer_ref);
  if (r->has_poll) uv_close((uv_handle_t*) &r->poll, close_cb);
  uv_close((uv_handle_t*) &r->idle, close_cb);
  uv_close((uv_handle_t*) &r->sigint, close_cb);
  uv_close((uv_handle_t*) &r->sigwinch, close_cb);
  if (current == r) current = NULL;
  *box = NULL;
  return 0;
}

static const luaL_Reg reader_methods[] = {
  { "mode", l_mode }, { "prompt", l_prompt }, { "notify", l_notify },
  { "set_completer", l_set_completer }, { "add_history", l_add_history },
  { "read_history", l_read_history }, { "write_history", l_write_history },
  { "close", l_close }, { NULL, NULL }
};

static const luaL_Reg editline_functions[] = {
  { "line_reader", l_line_reader }, { NULL, NULL }
};

void wr__lua_open_editline(lua_State* L) {
  wr__lua_new_gc_class(L, READER_MT, reader_methods, l_close);
  luaL_register(L, NULL, editline_functions);
}
