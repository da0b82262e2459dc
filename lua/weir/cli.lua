--- The weir command line: what each verb does, once weir.command_line
-- has parsed its arguments. main(argv) returns the process exit status;
-- errors are one line on stderr, prefixed "weir: " (usage errors "weir
-- VERB: ", with a hint where to find help).
local checkpoint_record = require "weir.checkpoint_record"
local command_line = require "weir.command_line"
local errors = require "weir.errors"

local M = {}

local function fail(msg)
  errors.log("error", msg)
  return 1
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
  if (stats.failed_records or 0) > 0 then
    msg = msg .. string.format("; %d failed records skipped",
      stats.failed_records)
  end
  errors.note(msg)
end

local function traceback_handler(err)
  if os.getenv("WEIR_DEBUG") then
    io.stderr:write(debug.traceback(tostring(err), 2), "\n")
  end
  return err
end

--- weir run: loads the script and runs it with the options as overrides.
-- weir worker (internal): the same, as worker process of a job whose
-- coordinator started it.
-- @param cmd what weir.command_line.parse made of the arguments: script,
--   args (the script's), overrides, flags, worker_context (worker only)
-- @return the exit status
function M.run(cmd)
  local script = cmd.script
  local args = { [0] = script, unpack(cmd.args) }
  local ctx
  if cmd.verb == "worker" then
    cmd.worker_context.parallelism = cmd.overrides.parallelism
    ctx = { worker = cmd.worker_context, overrides = cmd.overrides }
  else
    ctx = { script = script, flags = cmd.flags, overrides = cmd.overrides,
      script_args = { unpack(cmd.args) },
      default_parallelism = require("weir.core").cpu_count(),
      report = report }
  end
  -- A job's log lines carry their time and level; --log-level applies
  -- from here on (weir.launch applies a pipeline's log_level option).
  errors.configure_log({ timestamps = true,
    level = cmd.overrides.log_level })
  errors.name_chunk(script)
  local chunk, err = loadfile(script)
  if not chunk then
    if not io.open(script, "r") then
      return fail("cannot open script " .. script)
    end
    return fail(errors.full_names(err))
  end
  _G.arg = args
  local ok, rerr = require("weir.launch").with_context(ctx, xpcall, chunk,
    traceback_handler, unpack(args))
  if not ok then return fail(errors.full_names(tostring(rerr))) end
  return 0
end

--- weir checkpoints DIR: the complete checkpoints, newest first.
-- @param cmd { dir = a job's directory or a checkpoint_dir }
function M.checkpoints(cmd)
  local dir = cmd.dir
  local core = require "weir.core"
  local st = core.stat(dir)
  if not st or st.type ~= "directory" then
    return fail(dir .. " is not a directory")
  end
  local warn = errors.warn
  local jobs = { { dir = dir, list = checkpoint_record.describe(dir, warn) } }
  if #jobs[1].list == 0 then
    jobs = {}
    local names = core.scandir(dir) or {}
    table.sort(names)
    for _, name in ipairs(names) do
      local list = checkpoint_record.describe(dir .. "/" .. name, warn)
      if #list > 0 then
        jobs[#jobs + 1] = { dir = dir .. "/" .. name, list = list }
      end
    end
  end
  if #jobs == 0 then
    return fail("no complete checkpoint in " .. dir)
  end
  if cmd.json then
    local json = require "weir.json"
    for _, j in ipairs(jobs) do
      for _, c in ipairs(j.list) do
        local record = { job_dir = j.dir, marker = c.marker }
        for _, name in ipairs(checkpoint_record.RECORD_FIELDS) do
          record[name] = c[name]
        end
        io.stdout:write(json.encode(record), "\n")
      end
    end
    return 0
  end
  for _, j in ipairs(jobs) do
    io.stdout:write(j.dir, "\n")
    io.stdout:write(string.format("  %-8s %-20s %12s %12s %9s %9s %12s %11s\n",
      unpack(checkpoint_record.RECORD_FIELDS)))
    for _, c in ipairs(j.list) do
      io.stdout:write(string.format(
        "  %-8s %-20s %12d %12d %9.1f %9.1f %12.1f %11.1f%s\n", c.id, c.time,
        c.size_bytes, c.full_bytes, c.sync_ms, c.async_ms, c.alignment_ms,
        c.duration_ms, c.marker and "  " .. c.marker or ""))
    end
  end
  return 0
end

--- weir inspect SNAPSHOT: the state in a checkpoint, readable (see
-- weir.inspect).
-- @param cmd { snapshot = path, uid = operator or nil, key = key as text
--   or nil, format = "lua" | "json" }
-- @return the exit status
function M.inspect(cmd)
  local ok, err = require("weir.inspect").write(cmd.snapshot, cmd,
    io.stdout)
  if not ok then return fail(err) end
  return 0
end

-- -- Running jobs ------------------------------------------------------------

local function duration(ms)
  local s = math.floor(ms / 1000)
  if s < 60 then return s .. "s" end
  if s < 3600 then return string.format("%dm%02ds", s / 60, s % 60) end
  return string.format("%dh%02dm", s / 3600, s / 60 % 60)
end

--- weir jobs: the running jobs under --checkpoint-dir, as a table or
-- with json as a JSON array (see weir.command_line for its fields).
-- @param cmd { checkpoint_dir = dir, json = true|nil }
function M.jobs(cmd)
  local list = require("weir.control").jobs(cmd.checkpoint_dir)
  if cmd.json then
    local out = {}
    for i, j in ipairs(list) do
      out[i] = { name = j.job, pid = j.pid, state = j.state,
        parallelism = j.parallelism, workers = j.workers,
        uptime_ms = j.uptime_ms, checkpoints = j.checkpoints,
        last_checkpoint = j.last_checkpoint, restarts = j.restarts or 0,
        job_dir = j.job_dir }
    end
    io.stdout:write(require("weir.json").encode(out), "\n")
    return 0
  end
  if #list == 0 then
    io.stdout:write("no running jobs in ", cmd.checkpoint_dir, "\n")
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
-- @param cmd { job = name or job directory, dir = target or nil,
--   checkpoint_dir = dir }
function M.savepoint(cmd)
  local control = require "weir.control"
  local dir = control.job_dir(cmd.job, cmd.checkpoint_dir)
  local target = control.absolute(cmd.dir or dir .. "/savepoints")
  local r, rerr = control.request(dir, { t = "savepoint", dir = target })
  if not r then
    return fail("savepoint of " .. cmd.job .. " failed: " .. rerr)
  end
  io.stdout:write(r.path, "\n")
  return 0
end

--- weir cancel JOB [--savepoint DIR] [--no-drain]: stops a job (after a
-- savepoint; a job with a read_socket write-ahead log or followed files
-- drains first unless no_drain).
-- @param cmd { job = name or job directory, savepoint = dir or nil,
--   checkpoint_dir = dir, no_drain = true|nil }
function M.cancel(cmd)
  local control = require "weir.control"
  local dir = control.job_dir(cmd.job, cmd.checkpoint_dir)
  local r, rerr = control.request(dir, { t = "cancel",
    dir = cmd.savepoint and control.absolute(cmd.savepoint),
    drain = not cmd.no_drain }, nil, true)
  if not r then return fail("cannot cancel " .. cmd.job .. ": " .. rerr) end
  if r.path then io.stdout:write(r.path, "\n") end
  return 0
end

local verbs = {
  run = M.run,
  worker = M.run,
  checkpoints = M.checkpoints,
  inspect = M.inspect,
  jobs = M.jobs,
  savepoint = M.savepoint,
  cancel = M.cancel,
  repl = function() return require("weir.repl").main() end,
  agent = function(cmd)
    errors.configure_log({ timestamps = true })
    local ok, err = pcall(require("weir.agent").run, cmd)
    if not ok then return fail(tostring(err)) end
    return err
  end,
  completion = function(cmd)
    io.stdout:write(command_line.completion(cmd.shell))
    return 0
  end,
  version = function()
    io.stdout:write("weir ", require("weir").version, "\n")
    return 0
  end,
}

--- Entry point of the weir executable: argv holds its arguments.
-- Returns the exit status.
function M.main(argv)
  if #argv == 0 then
    io.stdout:write(command_line.help())
    return 1
  end
  local cmd, err = command_line.parse(argv)
  if not cmd then
    io.stderr:write(err, "\n")
    return 1
  elseif cmd.help then
    io.stdout:write(cmd.help)
    return 0
  elseif cmd.version then
    return verbs.version()
  end
  return verbs[cmd.verb](cmd)
end

return M
