--- The grammar of the weir command line: every verb with its arguments,
-- options and help, declared once with argparse (Debian's lua-argparse),
-- which also writes the help texts and the shell completion scripts.
--
-- argparse reads a whole argv, but `weir run SCRIPT ARGS...` must stop at
-- SCRIPT: everything after it is the script's, options included. M.parse
-- therefore splits the argv of `run` (and of `worker`) itself, at the
-- first argument that is neither an option nor an option's value, or
-- after "--"; that is why every option of theirs is declared in the
-- tables below with whether it takes a value. Options take their value
-- as `--opt value` or `--opt=value`, for every verb.
local argparse = require "argparse"
local options = require "weir.options"

local M = {}

local SUMMARY = "weir: stream processing with exactly-once state; "
  .. "pipelines in Lua."
local WIDTH = 78           -- columns of the help texts
local LABEL_COLUMNS = 29   -- where an option's description starts

-- The options of `weir run`: flag, the type of its value ("number",
-- "string", or "flag" for none), the value's name in the help, the
-- allowed values (if a fixed few), and the help. Each overrides the
-- script's weir.pipeline{} option of the same name (dashes as
-- underscores).
local RUN_OPTIONS = {
  { "--parallelism", "number", "N", nil, "subtasks per operator, each set "
    .. "of subtasks in a worker process of its own (default: the number of "
    .. "cores; 1 runs in this process)" },
  { "--checkpoint-dir", "string", "DIR", nil, "where checkpoints go: "
    .. "DIR/<name>/chk-<n> (default: checkpoints)" },
  { "--checkpoint-interval", "number", "MS", nil, "milliseconds between "
    .. "checkpoints; 0 turns them off (default: 1000)" },
  { "--checkpoint-timeout", "number", "MS", nil, "abort a checkpoint not "
    .. "complete after MS (default: 600000)" },
  { "--tolerable-failed-checkpoints", "number", "N", nil, "checkpoints "
    .. "that may fail in a row before the job fails and restarts "
    .. "(default: 0)" },
  { "--metrics", "string", "FILE", nil, "append a JSON line of per-subtask "
    .. "metrics (records in/out and per second, time backpressured, "
    .. "alignment) every second; on a terminal a status line shows them "
    .. "live" },
  { "--transport", "string", "unix|tcp", { "unix", "tcp" }, "channels "
    .. "between workers over Unix domain sockets (default) or TCP on "
    .. "loopback" },
  { "--heartbeat-timeout", "number", "MS", nil, "a worker silent this long "
    .. "counts as hung and the job restarts (default: 3000)" },
  { "--retain", "number", "N", nil, "complete checkpoints kept (default: "
    .. "3)" },
  { "--retain-on-cancel", "flag", nil, nil, "keep them when the job is "
    .. "cancelled (weir cancel); by default they are removed" },
  { "--savepoint-on-stop", "string", "DIR", nil, "when SIGTERM or SIGINT "
    .. "stops the job (as a cancel that keeps the checkpoints), take a "
    .. "savepoint into DIR first" },
  { "--max-parallelism", "number", "N", nil, "number of key groups "
    .. "(default: 128)" },
  { "--mode", "string", "MODE", { "exactly_once", "at_least_once" },
    "exactly_once (aligned barriers, default) or at_least_once" },
  { "--restore", "string", "latest|PATH", nil, "restore the newest intact "
    .. "checkpoint of the job, or the checkpoint or savepoint directory "
    .. "PATH (chk-<n>, savepoint-<job>-<n>), at any parallelism (keyed "
    .. "state moves by key group; max_parallelism must be the same)" },
  { "--allow-non-restored-state", "flag", nil, nil, "restore even if the "
    .. "snapshot has state for an operator (uid) the job no longer has" },
  { "--gc-pause", "number", "PERCENT", nil, "start a garbage collection "
    .. "cycle when the heap is PERCENT of what the last one left (LuaJIT's "
    .. "setpause; default: 400)" },
  { "--fork-snapshot-keys", "number", "N", nil, "keyed operators with N "
    .. "keys or more take checkpoints in a forked copy-on-write process, "
    .. "so records flow on while their state is written (0: always; -1: "
    .. "never; default: 10000)" },
  { "--state-backend", "string", "heap|rocksdb", { "heap", "rocksdb" },
    "where keyed state lives: Lua tables (default) or RocksDB on local "
    .. "disk, for state larger than memory" },
  { "--state-cache-mb", "number", "MIB", nil, "the rocksdb backend's cache "
    .. "of decoded keys per process (default: 256)" },
  { "--http", "string", "[ADDR:]PORT|off", nil, "serve the job's HTTP API "
    .. "(REST /api/v1/jobs, Prometheus /metrics, a dashboard at /) there (default: 127.0.0.1:8081, "
    .. "or the next free port up to 8090; off: none; see README)" },
  { "--http-token-file", "string", "FILE", nil, "the token HTTP requests "
    .. "must carry (its first line): every request on a non-loopback "
    .. "--http address; on loopback, savepoint and cancel from other users" },
  { "--log-level", "string", "LEVEL", { "error", "warn", "info", "debug" },
    "the least severe log lines written on stderr (each with its UTC time "
    .. "and level): error, warn, info (default: what the job does) or "
    .. "debug" },
  { "--agents", "string", "HOST:PORT,...", nil, "run the worker processes "
    .. "on these weir agents (weir agent), spread over their slots; the "
    .. "default parallelism is their slots in all; inputs, outputs and "
    .. "checkpoints on a file system every host sees" },
  { "--secret-file", "string", "FILE", nil, "the secret shared with the "
    .. "agents, its first line (default: ~/.config/weir/secret, created "
    .. "when missing)" },
  { "--ha", "string", "etcd://HOST:PORT", nil, "coordinator high "
    .. "availability: the coordinators of the job started with the same "
    .. "--ha elect a leader in etcd; the others wait and one takes over, "
    .. "continuing the leader's checkpoints, when the leader is gone" },
  { "--ha-new-run", "flag", nil, nil, "with --ha, start a new run of the "
    .. "job even if etcd records an unfinished run of it (whose leader "
    .. "ended before the job did; by default it is continued)" },
  { "--state-dir", "string", "DIR", nil, "where the rocksdb backend keeps "
    .. "its working files (default: /tmp; avoid tmpfs, which holds them in "
    .. "memory)" },
}

-- The options only `weir worker` takes: the coordinator passes them.
local WORKER_OPTIONS = {
  { "--coordinator", "string", "SOCKET" },
  { "--coordinator-pid", "number", "PID" },
  { "--worker", "number", "INDEX" },
  { "--workers", "number", "N" },
  { "--run-dir", "string", "DIR" },
  { "--restore-path", "string", "PATH" },
  { "--data-host", "string", "HOST" },
}

local SOCKET_DESCRIPTION = "A running job's coordinator listens on a "
  .. "socket in its run directory, named in coordinator.sock.path in its "
  .. "job directory, <checkpoint_dir>/<job>."
local JOB_DESCRIPTION = SOCKET_DESCRIPTION .. " JOB is a job name under "
  .. "--checkpoint-dir, or a job directory."

local REPL_DESCRIPTION = [[
An interactive LuaJIT prompt with `weir` loaded (the global `weir`).
An expression prints its value; a statement runs; an unfinished chunk
continues on a ">>" line. On a terminal: Tab completes names (globals,
weir.<Tab>, fields, and methods after obj:), Up/Down recall earlier lines,
Ctrl-C at the prompt clears the line (while a statement runs it ends the
REPL: start long pipelines with p:start()), Ctrl-D quits; the history is
kept in $WEIR_HISTORY or else ~/.weir_history (WEIR_HISTORY= keeps none).
From a pipe or a file the lines are read without prompts, e.g.
echo 'print(1 + 1)' | weir repl.
Errors print one line (a traceback too with WEIR_DEBUG set).]]

-- The option's name in a result table: "--checkpoint-dir" ->
-- "checkpoint_dir", as weir.pipeline{} names it.
local function key_of(flag)
  return (flag:sub(3):gsub("-", "_"))
end

-- The number text gives for flag, or nil and a message naming the flag.
local function number(flag, text)
  local n = tonumber(text)
  if not n then
    return nil, string.format("%s must be a number, got '%s'", flag, text)
  end
  return n
end

-- Converts and checks the text given for a `weir run` option: returns
-- the value, or nil and a message naming the option.
local function run_converter(flag, kind)
  local key = key_of(flag)
  return function(text)
    local value, err = text, nil
    if kind == "number" then
      value, err = number(flag, text)
      if not value then return nil, err end
    end
    local problem = options.check(key, value)
    if problem then return nil, flag .. " " .. problem end
    return value
  end
end

-- Converts the numbers among the options only `weir worker` takes.
local function worker_converter(flag, kind)
  if kind == "number" then
    return function(text) return number(flag, text) end
  end
end

-- A verb: a command of parser, named by its usage ("weir NAME ..."),
-- with weir's own help flag. That flag notes in state that help was
-- asked for, where argparse's own would print the help and exit the
-- process: so a parse that fails afterwards (`weir savepoint --help`
-- lacks JOB) still shows the help, and a caller in this process (such
-- as weir.inspect) goes on. The verb's name in a parse's result is
-- "verb", so no option's name can clash with it.
-- Each verb is listed in state.verbs (in order) and by name in
-- state.verb: { name, usage, summary, description, command, hidden }.
local function verb(parser, state, usage, summary, description, hidden)
  local name = usage:match("^weir (%S+)")
  local cmd = parser:command(name):add_help(false):target("verb_" .. name)
    :usage("Usage: " .. usage):summary(summary):description(description)
    :hidden(hidden == true)
  cmd:flag("-h --help", "show this help"):action(function()
    state.help = state.help or cmd
  end)
  local v = { name = name, usage = usage, summary = summary,
    description = description, command = cmd, hidden = hidden }
  state.verbs[#state.verbs + 1] = v
  state.verb[name] = v
  return cmd
end

-- Declares the options of `weir run` (and worker's) on cmd.
local function add_options(cmd, list, convert)
  for _, o in ipairs(list) do
    local flag, kind, argname, choices, help = o[1], o[2], o[3], o[4], o[5]
    if kind == "flag" then
      cmd:flag(flag, help):target(key_of(flag))
    else
      local opt = cmd:option(flag, help):argname(argname)
        :target(key_of(flag))
      local converter = convert(flag, kind)
      if converter then opt:convert(converter) end
      if choices then opt:choices(choices) end
    end
  end
end

-- Declares `weir run` and `weir worker` (unless no_worker).
local function add_run(p, state, no_worker)
  local run = verb(p, state, "weir run [OPTIONS] SCRIPT [ARGS...]",
    "run a pipeline script",
    "Runs the pipeline SCRIPT builds. Everything after SCRIPT is the "
    .. "script's: ARGS reach it as arg[1], arg[2], ..., even those that "
    .. "look like options. The options override the script's "
    .. "weir.pipeline{} options; --opt value and --opt=value are the same.")
    :epilog("Exit status: 0 on success; 1 with a one-line error otherwise.")
  run:argument("SCRIPT", "the pipeline script"):target("script")
  run:argument("ARGS", "arguments for the script"):target("args")
    :args("*")
  add_options(run, RUN_OPTIONS, run_converter)

  if not no_worker then
    local worker = verb(p, state, "weir worker [OPTIONS] SCRIPT [ARGS...]",
      "a worker process of a job",
      "A worker process of a job, started by the job's coordinator (weir "
      .. "run); not for use by hand.", true)
    worker:argument("SCRIPT"):target("script")
    worker:argument("ARGS"):target("args"):args("*")
    add_options(worker, RUN_OPTIONS, run_converter)
    add_options(worker, WORKER_OPTIONS, worker_converter)
  end
end

-- Declares the verbs about checkpoints and running jobs.
local function add_job_verbs(p, state)
  local checkpoints = verb(p, state, "weir checkpoints DIR",
    "list the complete checkpoints in DIR",
    "Lists the complete checkpoints in DIR (a job's directory, or a "
    .. "checkpoint_dir holding several jobs), newest first, one record "
    .. "each: id, time (UTC), size_bytes (bytes the checkpoint added to "
    .. "storage), full_bytes (bytes of every file it references), sync_ms "
    .. "(its synchronous part), async_ms (its writes after that), "
    .. "alignment_ms (barrier alignment; each the largest over its tasks), "
    .. "duration_ms (trigger to manifest), and final or savepoint.")
  checkpoints:argument("DIR", "a job's directory or a checkpoint_dir")
    :target("dir")
  checkpoints:flag("--json", "one JSON object per checkpoint, the same "
    .. "fields (marker: \"final\", \"savepoint\" or absent; job_dir)")
    :target("json")

  verb(p, state, "weir repl", "an interactive prompt, weir loaded",
    REPL_DESCRIPTION)
    :epilog("Exit status: 0 at the end of input; 1 if the input ends "
      .. "inside an unfinished chunk.")

  local jobs = verb(p, state, "weir jobs [--json] [--checkpoint-dir DIR]",
    "list the running jobs",
    "Lists the running jobs under --checkpoint-dir: name, pid, state, "
    .. "parallelism, uptime, checkpoints completed, restarts; with --json "
    .. "as a JSON array of { name, pid, state, parallelism, workers, "
    .. "uptime_ms, checkpoints, last_checkpoint, restarts, job_dir } ([] "
    .. "when none runs). " .. SOCKET_DESCRIPTION)
  jobs:flag("--json", "print a JSON array"):target("json")
  jobs:option("--checkpoint-dir", "where the jobs run")
    :argname("DIR"):target("checkpoint_dir"):default("checkpoints")

  local savepoint = verb(p, state,
    "weir savepoint JOB [DIR] [--checkpoint-dir DIR]",
    "take a savepoint of a running job",
    "Takes a savepoint of the job into DIR and prints its path; restore "
    .. "it with weir run --restore PATH [--parallelism M]. "
    .. JOB_DESCRIPTION)
  savepoint:argument("JOB", "the job"):target("job")
  savepoint:argument("DIR", "where the savepoint goes (default: "
    .. "savepoints/ in the job directory)"):target("dir"):args("?")
  savepoint:option("--checkpoint-dir", "where the job runs")
    :argname("DIR"):target("checkpoint_dir"):default("checkpoints")

  local cancel = verb(p, state,
    "weir cancel JOB [--savepoint DIR] [--no-drain] [--checkpoint-dir DIR]",
    "stop a running job",
    "Stops the job; with --savepoint, after a savepoint into DIR whose "
    .. "path it prints (output up to the savepoint is committed). The "
    .. "job's checkpoints are removed unless it runs with "
    .. "--retain-on-cancel. A job that reads a socket with a write-ahead "
    .. "log (read_socket{ wal = true }) or follows files (read_lines{ "
    .. "follow = true }) drains first: its sources stop taking input, what "
    .. "the log or the files hold goes through the job (pending windows "
    .. "fire), which then finishes with a final checkpoint (output "
    .. "committed); --no-drain stops it at once. " .. JOB_DESCRIPTION)
  cancel:argument("JOB", "the job"):target("job")
  cancel:option("--savepoint", "take a savepoint into DIR first")
    :argname("DIR"):target("savepoint")
  cancel:flag("--no-drain", "stop at once, without draining a "
    .. "write-ahead log or followed files"):target("no_drain")
  cancel:option("--checkpoint-dir", "where the job runs")
    :argname("DIR"):target("checkpoint_dir"):default("checkpoints")

  local inspect = verb(p, state,
    "weir inspect SNAPSHOT [--uid UID] [--key KEY] [--format lua|json]",
    "print a checkpoint's state",
    "Prints the state in a checkpoint (DIR/<job>/chk-<n>) or savepoint "
    .. "after verifying every checksum: per operator, the state of each "
    .. "subtask, and for keyed operators each key's state. --format json "
    .. "prints one JSON object per line instead of Lua literals (tables "
    .. "that are neither arrays nor maps by strings, such as windows by "
    .. "start time, as lists of {\"key\": k, \"value\": v}; see README).")
  inspect:argument("SNAPSHOT", "a checkpoint or savepoint directory")
    :target("snapshot")
  inspect:option("--uid", "keep one operator"):argname("UID")
    :target("uid")
  inspect:option("--key", "keep one key (compared as text)")
    :argname("KEY"):target("key")
  inspect:option("--format", "lua literals or JSON lines")
    :argname("lua|json"):target("format"):choices({ "lua", "json" })
    :default("lua")
end

-- Builds the parser of the whole command line. state.help receives the
-- command whose help was asked for (or the parser itself), state.version
-- whether --version was, state.verbs and state.verb the verbs (see
-- verb). The worker verb is left out with no_worker (completion scripts
-- do not offer it).
local function build(state, no_worker)
  state.verbs, state.verb = {}, {}
  local p = argparse("weir"):add_help(false):description(SUMMARY)
    :help_max_width(WIDTH):help_usage_margin(2)
    :help_description_margin(LABEL_COLUMNS)
    :command_target("verb")
  p:flag("-h --help", "show this help"):action(function()
    state.help = state.help or p
  end)
  p:flag("--version", "print weir's version"):action(function()
    state.version = true
  end)
  add_run(p, state, no_worker)
  add_job_verbs(p, state)
  local agent = verb(p, state,
    "weir agent --listen HOST:PORT --slots N [--work-dir DIR] "
      .. "[--secret-file FILE]",
    "offer this host's slots to jobs (weir run --agents)",
    "Runs until SIGTERM or SIGINT, starting and stopping the worker "
    .. "processes of jobs whose coordinator (weir run --agents HOST:PORT) "
    .. "proves it knows the shared secret, at most N at once. The "
    .. "coordinator ships the job's script; a worker starts in the "
    .. "coordinator's working directory, which must be on a file system "
    .. "this host sees too. When a coordinator's connection ends, its "
    .. "workers are killed. Connections are authenticated, not "
    .. "encrypted: use a private network or a tunnel.")
  agent:option("--listen", "the address to accept coordinators on (an "
    .. "interface's address, e.g. 10.0.0.2:6123)"):argname("HOST:PORT")
    :target("listen"):count(1)
  agent:option("--slots", "worker processes it runs at once")
    :argname("N"):target("slots"):count(1)
    :convert(function(text) return number("--slots", text) end)
  agent:option("--work-dir", "where shipped scripts are kept (default: "
    .. "~/.cache/weir)"):argname("DIR"):target("work_dir")
  agent:option("--secret-file", "the secret shared with coordinators, its "
    .. "first line (default: ~/.config/weir/secret, created when missing)")
    :argname("FILE"):target("secret_file")
  verb(p, state, "weir version", "print weir's version",
    "Prints weir's version.")

  local verbs = {}
  for _, v in ipairs(state.verbs) do
    if not v.hidden then verbs[#verbs + 1] = v.name end
  end
  verbs[#verbs + 1] = "help"
  verbs[#verbs + 1] = "completion"
  local help = verb(p, state, "weir help [VERB]", "show this help, or VERB's",
    "Shows the help of weir, or of VERB.")
  help:argument("VERB", "one of " .. table.concat(verbs, ", "))
    :target("topic"):args("?")

  local completion = verb(p, state, "weir completion bash|zsh|fish",
    "print a shell completion script",
    "Prints a script that completes weir's verbs, options and their "
    .. "values in SHELL. For bash: source <(weir completion bash), or save "
    .. "it as ~/.local/share/bash-completion/completions/weir; for zsh: "
    .. "save it as _weir in a directory of $fpath; for fish: save it as "
    .. "~/.config/fish/completions/weir.fish.")
  completion:argument("SHELL", "the shell"):target("shell")
    :choices({ "bash", "zsh", "fish" })
  return p
end

-- The overview `weir --help` shows: every verb's usage and summary.
local function overview(state)
  local lines = { SUMMARY, "", "Usage:" }
  for _, v in ipairs(state.verbs) do
    if not v.hidden then
      local usage, summary = "  " .. v.usage, v.summary
      if #usage + 2 < 40 then
        lines[#lines + 1] = usage .. string.rep(" ", 40 - #usage) .. summary
      else
        lines[#lines + 1] = usage
        lines[#lines + 1] = string.rep(" ", 40) .. summary
      end
    end
  end
  lines[#lines + 1] = "  weir --help, weir VERB --help"
    .. "         this help, VERB's"
  lines[#lines + 1] = ""
  lines[#lines + 1] = "The design: DESIGN.md in the weir sources."
  return table.concat(lines, "\n") .. "\n"
end

--- The help text of weir itself, the overview of its verbs.
function M.help()
  local state = {}
  build(state)
  return overview(state)
end

--- The description of a verb, as its help gives it (the REPL's help()
-- shows its own).
function M.description(name)
  local state = {}
  build(state)
  return state.verb[name].description
end

--- A script that completes weir's verbs and options in shell ("bash",
-- "zsh" or "fish").
function M.completion(shell)
  local p = build({}, true)
  if shell == "bash" then return p:get_bash_complete() end
  if shell == "zsh" then return p:get_zsh_complete() end
  return p:get_fish_complete()
end

-- Does an option of run or worker take a value? Unknown options do not;
-- argparse rejects them anyway.
local takes_value = {}
for _, list in ipairs({ RUN_OPTIONS, WORKER_OPTIONS }) do
  for _, o in ipairs(list) do takes_value[o[1]] = o[2] ~= "flag" end
end

-- Splits the argv of `weir run` (after "run") at SCRIPT: returns what
-- comes before it with each option and its value as one "--opt=value"
-- (so a value that starts with "-" stays a value), SCRIPT, and the list
-- of what follows it.
local function split_at_script(argv)
  local before, i = {}, 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      i = i + 1
      break
    elseif a:sub(1, 1) ~= "-" or a == "-" then
      break
    elseif takes_value[a] and argv[i + 1] ~= nil then
      before[#before + 1] = a .. "=" .. argv[i + 1]
      i = i + 2
    else
      before[#before + 1] = a
      i = i + 1
    end
  end
  local rest = {}
  for j = i + 1, #argv do rest[#rest + 1] = argv[j] end
  return before, argv[i], rest
end

-- The values of the options in list, by name, from a parse's result.
local function values(result, list)
  local out = {}
  for _, o in ipairs(list) do
    local key = key_of(o[1])
    out[key] = result[key]
  end
  return out
end

-- One line for an argparse error: its "Did you mean" tip joined on.
local function one_line(msg)
  return (msg:gsub("\nDid you mean", "; did you mean"):gsub("\n", "; "))
end

--- Parses argv, the arguments after "weir".
-- @return a table: verb (its name), and the values of its arguments and
--   options by name (options of run as weir.pipeline{} names them);
--   for run and worker also script, args (the script's arguments, list),
--   overrides (the weir.pipeline{} options the flags set), flags (the
--   options as given, one "--opt=value" each, to hand on to workers) and
--   for worker worker_context (the options only it takes, by name).
--   { help = text } when help was asked for; { version = true } for
--   --version.
-- @return nil, a one-line message naming the verb and what is wrong,
--   with a hint where to find help, on a usage error.
function M.parse(argv)
  local state = {}
  local p = build(state)
  local name = argv[1]
  local cmd = name and state.verb[name]
  local tokens, script, script_args, flags = argv, nil, nil, nil
  if name == "run" or name == "worker" then
    local before
    before, script, script_args = split_at_script({ unpack(argv, 2) })
    tokens = { name }
    flags = {}
    for _, a in ipairs(before) do
      tokens[#tokens + 1] = a
      flags[#flags + 1] = a
    end
    if script then
      tokens[#tokens + 1] = "--"
      tokens[#tokens + 1] = script
      if script:sub(1, 1) == "-" then flags[#flags + 1] = "--" end
    end
  end
  local ok, result = p:pparse(tokens)
  if state.help then
    local text = state.help == p and overview(state)
      or state.help:get_help() .. "\n"
    return { verb = "help", help = text }
  end
  if state.version and (ok or not cmd) then return { version = true } end
  if not ok then
    local where = cmd and "weir " .. name or "weir"
    return nil, string.format("%s: %s (see %s --help)", where,
      one_line(result), where)
  end
  if result.verb == "help" then
    local topic = result.topic and state.verb[result.topic]
    if result.topic and (not topic or topic.hidden) then
      return nil, string.format("weir help: unknown verb '%s' (see weir "
        .. "--help)", result.topic)
    end
    return { verb = "help", help = topic and topic.command:get_help()
      .. "\n" or overview(state) }
  end
  if flags then
    result.script, result.args, result.flags = script, script_args, flags
    result.overrides = values(result, RUN_OPTIONS)
    if name == "worker" then
      result.worker_context = values(result, WORKER_OPTIONS)
    end
  end
  return result
end

return M
