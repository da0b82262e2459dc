--- The weir command line: `weir run`, `weir checkpoints`, `weir --help`.
-- main(argv) returns the process exit status; errors are one line on
-- stderr, prefixed "weir: ".
local checkpoint = require "weir.checkpoint"
local errors = require "weir.errors"
local kinds = require "weir.kinds"
local pipeline = require "weir.pipeline"

local M = {}

local HELP = [[
weir: stream processing with exactly-once state; pipelines in Lua.

Usage:
  weir run [OPTIONS] SCRIPT [ARGS...]   run a pipeline script
  weir checkpoints DIR                  list the complete checkpoints in DIR
  weir repl                             an interactive prompt, weir loaded
  weir jobs [--checkpoint-dir DIR]      list the running jobs
  weir savepoint JOB [DIR]              take a savepoint of a running job
  weir cancel JOB [--savepoint DIR]     stop a running job
  weir inspect SNAPSHOT [--uid UID] [--key KEY] [--format lua|json]
                                        print a checkpoint's state
  weir --help                           show this help
  weir run --help                       show the options of `weir run`

The design: DESIGN.md in the weir sources.
]]

local RUN_HELP = [[
Usage: weir run [OPTIONS] SCRIPT [ARGS...]

Runs the pipeline SCRIPT builds; ARGS reach the script as arg[1], arg[2], ...
Options override the script's weir.pipeline{} options:

  --parallelism N            subtasks per operator, each set of subtasks in
                             a worker process of its own (default: the
                             number of cores; 1 runs in this process)
  --checkpoint-dir DIR       where checkpoints go: DIR/<name>/chk-<n>
                             (default: checkpoints)
  --checkpoint-interval MS   milliseconds between checkpoints; 0 turns them
                             off (default: 1000)
  --checkpoint-timeout MS    abort a checkpoint not complete after MS
                             (default: 600000)
  --tolerable-failed-checkpoints N
                             checkpoints that may fail in a row before the
                             job fails and restarts (default: 0)
  --metrics FILE             append a JSON line of per-subtask metrics
                             (records in/out and per second, time
                             backpressured, alignment) every second; on a
                             terminal a status line shows them live
  --transport unix|tcp       channels between workers over Unix domain
                             sockets (default) or TCP on loopback
  --heartbeat-timeout MS     a worker silent this long counts as hung and
                             the job restarts (default: 3000)
  --retain N                 complete checkpoints kept (default: 3)
  --retain-on-cancel         keep them when the job is cancelled (weir
                             cancel); by default they are removed
  --max-parallelism N        number of key groups (default: 128)
  --mode MODE                exactly_once (aligned barriers, default) or
                             at_least_once
  --restore latest|PATH      restore the newest intact checkpoint of the job,
                             or the checkpoint or savepoint directory PATH
                             (chk-<n>, savepoint-<job>-<n>), at any
                             parallelism (keyed state moves by key
                             group; max_parallelism must be the same)
  --allow-non-restored-state restore even if the snapshot has state for an
                             operator (uid) the job no longer has
  --gc-pause PERCENT         start a garbage collection cycle when the heap
                             is PERCENT of what the last one left (LuaJIT's
                             setpause; default: 400)
  -h, --help                 show this help

Exit status: 0 on success; 1 with a one-line error otherwise.
]]

local function fail(msg)
  errors.warn(msg)
  return 1
end

local run_flags = {
  ["--checkpoint-dir"] = { "checkpoint_dir", "string" },
  ["--checkpoint-interval"] = { "checkpoint_interval", "number" },
  ["--retain"] = { "retain", "number" },
  ["--max-parallelism"] = { "max_parallelism", "number" },
  ["--mode"] = { "mode", "string" },
  ["--restore"] = { "restore", "string" },
  ["--parallelism"] = { "parallelism", "number" },
  ["--checkpoint-timeout"] = { "checkpoint_timeout", "number" },
  ["--tolerable-failed-checkpoints"] = { "tolerable_failed_checkpoints",
    "number" },
  ["--heartbeat-timeout"] = { "heartbeat_timeout", "number" },
  ["--transport"] = { "transport", "string" },
  ["--metrics"] = { "metrics", "string" },
  ["--allow-non-restored-state"] = { "allow_non_restored_state", "flag" },
  ["--retain-on-cancel"] = { "retain_on_cancel", "flag" },
  ["--gc-pause"] = { "gc_pause", "number" },
}

-- Flags only `weir worker` takes (the coordinator passes them).
local worker_flags = {
  ["--coordinator"] = { "coordinator", "string" },
  ["--coordinator-pid"] = { "coordinator_pid", "number" },
  ["--worker"] = { "worker", "number" },
  ["--workers"] = { "workers", "number" },
  ["--run-dir"] = { "run_dir", "string" },
  ["--restore-path"] = { "restore_path", "string" },
}

-- Parses `weir run` arguments: returns overrides, script, script args, the
-- flags as given, and (with extra flags) their values; or nil, message.
local function parse_run(argv, extra)
  local overrides, given, extras, i = {}, {}, {}, 1
  while i <= #argv do
    local a = argv[i]
    if a:sub(1, 1) ~= "-" then break end
    if a == "--" then i = i + 1 break end
    local flag, value = a:match("^(%-%-[%w-]+)=(.*)$")
    flag = flag or a
    local spec, into = run_flags[flag], overrides
    if not spec and extra then spec, into = extra[flag], extras end
    if not spec then
      return nil, "unknown option " .. a .. " (see weir run --help)"
    end
    if spec[2] == "flag" then
      value = "true"
    elseif not value then
      i = i + 1
      value = argv[i]
      if value == nil then return nil, flag .. " needs a value" end
    end
    if into == overrides then
      given[#given + 1] = flag
      given[#given + 1] = value
    end
    if spec[2] == "flag" then
      value = true
      given[#given] = nil  -- a flag has no value to pass on
    elseif spec[2] == "number" then
      local n = tonumber(value)
      if not n then return nil, flag .. " needs a number, got " .. value end
      value = n
    end
    into[spec[1]] = value
    i = i + 1
  end
  local script = argv[i]
  if not script then return nil, "no script given (see weir run --help)" end
  local args = { [0] = script }
  for j = i + 1, #argv do args[j - i] = argv[j] end
  return overrides, script, args, given, extras
end

local function report(stats)
  local msg = string.format("job '%s' %s after %.2f s", stats.name,
    stats.cancelled and "was cancelled" or "finished",
    stats.duration_ms / 1000)
  if stats.records then
    msg = msg .. string.format("; %d records from sources", stats.records)
  end
  if stats.restored_from then
    msg = msg .. " (restored from " .. stats.restored_from .. ")"
  end
  if stats.savepoint then
    msg = msg .. "; savepoint " .. stats.savepoint
  end
  if stats.last_checkpoint then
    msg = msg .. string.format("; %d checkpoints, last %s", stats.checkpoints,
      stats.last_checkpoint)
  end
  if (stats.restarts or 0) > 0 then
    msg = msg .. string.format("; %d restarts", stats.restarts)
  end
  if stats.late_records > 0 then
    msg = msg .. string.format("; %d late records", stats.late_records)
  end
  errors.warn(msg)
end

local function traceback_handler(err)
  if os.getenv("WEIR_DEBUG") then
    io.stderr:write(debug.traceback(tostring(err), 2), "\n")
  end
  return err
end

--- weir run: loads SCRIPT and runs it with the options as overrides.
-- weir worker (internal): the same, as worker process of a job whose
-- coordinator started it.
function M.run(argv, as_worker)
  if argv[1] == "-h" or argv[1] == "--help" then
    io.stdout:write(RUN_HELP)
    return 0
  end
  local overrides, script, args, given, extras =
    parse_run(argv, as_worker and worker_flags)
  if not overrides then return fail(script) end
  local job = require "weir.job"
  if as_worker then
    extras.parallelism = overrides.parallelism
    require("weir.cluster").worker_context = extras
  else
    job.script, job.flags = script, given
    job.script_args = { unpack(args) }
    job.default_parallelism = require("weir.core").cpu_count()
  end
  errors.name_chunk(script)
  local chunk, err = loadfile(script)
  if not chunk then
    if not io.open(script, "r") then
      return fail("cannot open script " .. script)
    end
    return fail(errors.full_names(err))
  end
  pipeline.overrides = overrides
  job.report = report
  _G.arg = args
  local ok, rerr = xpcall(chunk, traceback_handler, unpack(args))
  if not ok then return fail(errors.full_names(tostring(rerr))) end
  return 0
end

--- weir checkpoints DIR: the complete checkpoints, newest first.
function M.checkpoints(argv)
  local dir = argv[1]
  if not dir or dir == "-h" or dir == "--help" then
    io.stdout:write("Usage: weir checkpoints DIR\n\nLists the complete "
      .. "checkpoints in DIR (a job's directory, or a checkpoint_dir\n"
      .. "holding several jobs), newest first: id, time (UTC), size in "
      .. "bytes,\nduration in ms.\n")
    return dir and 0 or 1
  end
  local core = require "weir.core"
  local st = core.stat(dir)
  if not st or st.type ~= "directory" then
    return fail(dir .. " is not a directory")
  end
  local warn = errors.warn
  local jobs = { { dir = dir, list = checkpoint.describe(dir, warn) } }
  if #jobs[1].list == 0 then
    jobs = {}
    local names = core.scandir(dir) or {}
    table.sort(names)
    for _, name in ipairs(names) do
      local list = checkpoint.describe(dir .. "/" .. name, warn)
      if #list > 0 then
        jobs[#jobs + 1] = { dir = dir .. "/" .. name, list = list }
      end
    end
  end
  if #jobs == 0 then
    return fail("no complete checkpoint in " .. dir)
  end
  for _, j in ipairs(jobs) do
    io.stdout:write(j.dir, "\n")
    io.stdout:write(string.format("  %-8s %-20s %12s %12s\n", "id", "time",
      "size_bytes", "duration_ms"))
    for _, c in ipairs(j.list) do
      io.stdout:write(string.format("  %-8s %-20s %12d %12.1f%s\n",
        "chk-" .. c.id, os.date("!%Y-%m-%dT%H:%M:%SZ",
          math.floor(c.time_ms / 1000)),
        c.size_bytes, c.duration_ms, c.final and "  final" or ""))
    end
  end
  return 0
end

local INSPECT_HELP = [[
Usage: weir inspect SNAPSHOT [--uid UID] [--key KEY] [--format lua|json]

Prints the state in a checkpoint (DIR/<job>/chk-<n>) after verifying every
checksum: per operator, the state of each subtask, and for keyed operators
each key's state. --uid keeps one operator, --key one key (compared as
text); --format json prints one JSON object per line instead of Lua
literals (tables that are neither arrays nor maps by strings, such as
windows by start time, as lists of {"key": k, "value": v}; see README).
]]

--- weir inspect SNAPSHOT: the state in a checkpoint, readable.
function M.inspect(argv)
  local opts, path, i = { format = "lua" }, nil, 1
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      io.stdout:write(INSPECT_HELP)
      return 0
    elseif a == "--uid" or a == "--key" or a == "--format" then
      opts[a:sub(3)] = argv[i + 1]
      if not argv[i + 1] then return fail(a .. " needs a value") end
      i = i + 2
    elseif a:sub(1, 1) == "-" then
      return fail("unknown option " .. a .. " (see weir inspect --help)")
    else
      path = a
      i = i + 1
    end
  end
  if not path then
    return fail("no snapshot given (see weir inspect --help)")
  end
  if opts.format ~= "lua" and opts.format ~= "json" then
    return fail("--format must be lua or json")
  end
  local snapshot = require "weir.snapshot"
  local json = require("weir.json").encode
  local snap, err = snapshot.open(path)
  if not snap then return fail("cannot inspect " .. err) end
  local out = io.stdout
  local found = false
  for _, op in ipairs(snap:operators()) do
    if not opts.uid or opts.uid == op.uid then
      found = true
      if opts.format == "lua" then
        out:write(string.format("-- %s (%s), parallelism %d\n", op.uid,
          op.kind, op.parallelism))
      end
      snap:each_subtask(op.uid, function(subtask, state)
        local own = {}
        for k, v in pairs(state) do
          if k ~= "key_groups" then own[k] = v end
        end
        if opts.key then return end
        if opts.format == "lua" then
          out:write(string.format("subtask %d: %s\n", subtask,
            snapshot.literal(own)))
        else
          out:write(json({ uid = op.uid, subtask = subtask, state = own }),
            "\n")
        end
      end)
      if kinds.kinds[op.kind] and kinds.is(op.kind, "keyed") then
        snap:each_key(op.uid, function(k, state, timers)
          if opts.key and tostring(k) ~= opts.key then return end
          if opts.format == "lua" then
            out:write(string.format("[%s] = %s%s\n", snapshot.literal(k),
              snapshot.literal(state), timers and ("  -- timers "
              .. snapshot.literal(timers)) or ""))
          else
            out:write(json({ uid = op.uid, key = k, state = state,
              timers = timers }), "\n")
          end
        end)
      end
    end
  end
  if opts.uid and not found then
    return fail("no operator '" .. opts.uid .. "' with state in " .. path)
  end
  return 0
end

-- -- Running jobs ------------------------------------------------------------

local JOBS_HELP = [[
Usage: weir jobs [--checkpoint-dir DIR]
       weir savepoint JOB [DIR] [--checkpoint-dir DIR]
       weir cancel JOB [--savepoint DIR] [--checkpoint-dir DIR]

A running job's coordinator listens on DIR/<job>/coordinator.sock, where
DIR is the job's checkpoint_dir (default: checkpoints). JOB is a job name
under --checkpoint-dir, or a job directory.

  jobs       lists the running jobs: name, pid, state, parallelism, uptime,
             checkpoints completed, restarts
  savepoint  takes a savepoint into DIR (default: savepoints/ in the job
             directory) and prints its path; restore it with
             weir run --restore PATH [--parallelism M]
  cancel     stops the job; with --savepoint, after a savepoint into DIR
             whose path it prints (output up to the savepoint is
             committed). The job's checkpoints are removed unless it runs
             with --retain-on-cancel.
]]

-- Parses `weir jobs|savepoint|cancel` arguments: { checkpoint_dir,
-- savepoint, positional... } | nil, message.
local function parse_job_args(argv, cmd)
  local out = { checkpoint_dir = "checkpoints" }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--checkpoint-dir" or (a == "--savepoint" and cmd == "cancel") then
      if not argv[i + 1] then return nil, a .. " needs a value" end
      out[a:sub(3):gsub("-", "_")] = argv[i + 1]
      i = i + 2
    elseif a:sub(1, 1) == "-" then
      return nil, string.format("unknown option %s (see weir %s --help)", a,
        cmd)
    else
      out[#out + 1] = a
      i = i + 1
    end
  end
  return out
end

local function duration(ms)
  local s = math.floor(ms / 1000)
  if s < 60 then return s .. "s" end
  if s < 3600 then return string.format("%dm%02ds", s / 60, s % 60) end
  return string.format("%dh%02dm", s / 3600, s / 60 % 60)
end

--- weir jobs: the running jobs under --checkpoint-dir.
function M.jobs(argv)
  if argv[1] == "-h" or argv[1] == "--help" then
    io.stdout:write(JOBS_HELP)
    return 0
  end
  local args, err = parse_job_args(argv, "jobs")
  if not args then return fail(err) end
  local list = require("weir.control").jobs(args.checkpoint_dir)
  if #list == 0 then
    io.stdout:write("no running jobs in ", args.checkpoint_dir, "\n")
    return 0
  end
  io.stdout:write(string.format("%-20s %8s %-10s %11s %8s %11s %8s\n",
    "JOB", "PID", "STATE", "PARALLELISM", "UPTIME", "CHECKPOINTS",
    "RESTARTS"))
  for _, j in ipairs(list) do
    io.stdout:write(string.format("%-20s %8d %-10s %11d %8s %11d %8d\n",
      j.job, j.pid, j.state, j.parallelism, duration(j.uptime_ms),
      j.checkpoints, j.restarts or 0))
  end
  return 0
end

--- weir savepoint JOB [DIR]: takes a savepoint, prints its path.
function M.savepoint(argv)
  if argv[1] == "-h" or argv[1] == "--help" then
    io.stdout:write(JOBS_HELP)
    return 0
  end
  local args, err = parse_job_args(argv, "savepoint")
  if not args then return fail(err) end
  if not args[1] then
    return fail("no job given (see weir savepoint --help)")
  end
  local control = require "weir.control"
  local dir = control.job_dir(args[1], args.checkpoint_dir)
  local target = control.absolute(args[2] or dir .. "/savepoints")
  local r, rerr = control.request(dir, { t = "savepoint", dir = target })
  if not r then
    return fail("savepoint of " .. args[1] .. " failed: " .. rerr)
  end
  io.stdout:write(r.path, "\n")
  return 0
end

--- weir cancel JOB [--savepoint DIR]: stops a job (after a savepoint).
function M.cancel(argv)
  if argv[1] == "-h" or argv[1] == "--help" then
    io.stdout:write(JOBS_HELP)
    return 0
  end
  local args, err = parse_job_args(argv, "cancel")
  if not args then return fail(err) end
  if not args[1] then return fail("no job given (see weir cancel --help)") end
  local control = require "weir.control"
  local dir = control.job_dir(args[1], args.checkpoint_dir)
  local r, rerr = control.request(dir, { t = "cancel",
    dir = args.savepoint and control.absolute(args.savepoint) }, nil, true)
  if not r then return fail("cannot cancel " .. args[1] .. ": " .. rerr) end
  if r.path then io.stdout:write(r.path, "\n") end
  return 0
end

--- Entry point of the weir executable. Returns the exit status.
function M.main(argv)
  local cmd = argv[1]
  local rest = { unpack(argv, 2) }
  if cmd == nil or cmd == "-h" or cmd == "--help" or cmd == "help" then
    io.stdout:write(HELP)
    return cmd == nil and 1 or 0
  elseif cmd == "run" then
    return M.run(rest)
  elseif cmd == "worker" then
    return M.run(rest, true)
  elseif cmd == "checkpoints" then
    return M.checkpoints(rest)
  elseif cmd == "inspect" then
    return M.inspect(rest)
  elseif cmd == "repl" then
    return require("weir.repl").main(rest)
  elseif cmd == "jobs" then
    return M.jobs(rest)
  elseif cmd == "savepoint" then
    return M.savepoint(rest)
  elseif cmd == "cancel" then
    return M.cancel(rest)
  elseif cmd == "--version" or cmd == "version" then
    io.stdout:write("weir ", require("weir").version, "\n")
    return 0
  end
  return fail("unknown command '" .. cmd .. "' (see weir --help)")
end

return M
