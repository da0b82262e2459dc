--- weir: stream processing with exactly-once state, pipelines in Lua.
--   local weir = require "weir"
--   local p = weir.pipeline { name = "wordcount" }
--   p:read_lines("in.txt"):map(string.upper):write_lines("out")
--   p:run()
local pipeline = require "weir.pipeline"
local windows = require "weir.windows"

local M = {}

M.version = "0.1.0"

--- Creates a pipeline; see weir.pipeline for its options and operators.
M.pipeline = pipeline.pipeline

--- Window assigners for key_by(...):window(...): tumbling(size_ms),
-- sliding(size_ms, slide_ms), session(gap_ms). Raise on sizes <= 0 or a
-- slide larger than the size.
M.tumbling, M.sliding, M.session =
  windows.tumbling, windows.sliding, windows.session

--- Timestamp helpers: utc_ms(y, m, d, h, mi, s), parse_clf(apache_time),
-- parse_iso("2015-09-12T00:47:35.776Z" or "2015-09-12 00:47:35"); see
-- weir.time.
M.time = require "weir.time"

--- The Nexmark benchmark's event generator without a pipeline:
-- weir.nexmark.generator{ events, rate, seed, base_time, instance,
-- instances } and g:next() (see weir.nexmark; p:nexmark{...} is its
-- source).
M.nexmark = require "weir.nexmark"

--- JSON for records: weir.json.decode(text) (lua-cjson; null becomes
-- nil; raises naming why the text is not JSON) and weir.json.encode(v)
-- (one line, object keys sorted; see weir.json).
M.json = require "weir.json"

--- CSV for records (RFC 4180, on LPeg): weir.csv.decode(line) -> {
-- fields }, weir.csv.decoder{ columns, skip_header } -> fn(line) -> {
-- column = field }, weir.csv.encode(fields) -> line (see weir.csv).
M.csv = require "weir.csv"

--- Testing pipelines from busted: weir.testing.harness(build) drives one
-- keyed operator by hand, weir.testing.run(build, { inputs }) runs a
-- pipeline over in-memory inputs (see weir.testing).
M.testing = require "weir.testing"

--- Reading snapshots: weir.snapshot.open(path) (see weir.snapshot).
M.snapshot = require "weir.snapshot"

--- Restart strategies for the `restart` option: fixed_delay{ attempts,
-- delay_ms }, exponential_delay{ initial_ms, max_ms, multiplier },
-- failure_rate{ max_failures, interval_ms, delay_ms }, none().
local restart = require "weir.restart"
M.fixed_delay, M.exponential_delay = restart.fixed_delay,
  restart.exponential_delay
M.failure_rate, M.none = restart.failure_rate, restart.none

-- -- Running jobs -----------------------------------------------------------
-- A job is a handle from p:start() (a pipeline running in the background
-- of this process), a job name under checkpoint_dir, or a job directory;
-- jobs of other processes are reached through their control socket (see
-- weir.control).

local function job_dir(job, checkpoint_dir)
  return require("weir.control").job_dir(job, checkpoint_dir)
end

local function request(job, msg, checkpoint_dir, wait_end)
  local control = require "weir.control"
  local r, err = control.request(job_dir(job, checkpoint_dir), msg, nil,
    wait_end)
  if not r then error(err, 0) end
  return r
end

--- Starts a pipeline script as a job of its own, as `weir run` would
-- (worker processes and all), and returns a submission to follow it:
-- :status(), :savepoint(dir), :cancel{ savepoint = dir }, :wait(). See
-- weir.submit for its options (args, parallelism, checkpoint_dir,
-- restore, flags).
function M.submit(script, opts)
  return require("weir.submit").submit(script, opts)
end

--- Lists the running jobs under checkpoint_dir (default "checkpoints"):
-- { { job, pid, state, parallelism, uptime_ms, checkpoints, restarts,
-- last_checkpoint, job_dir } }, this process's background job included.
function M.jobs(checkpoint_dir)
  return require("weir.control").jobs(checkpoint_dir or "checkpoints")
end

--- Takes a savepoint of a running job into dir (default: savepoints/ in
-- the job directory); returns its path. Raises when the job is not
-- running or the savepoint fails (the job goes on).
-- @param opts { checkpoint_dir = where to find a job given by name }
function M.savepoint(job, dir, opts)
  local jobmod = require "weir.background"
  if jobmod.is_job(job) or require("weir.submit").is_submission(job) then
    return job:savepoint(dir)
  end
  local control = require "weir.control"
  local jd = job_dir(job, opts and opts.checkpoint_dir)
  return request(job, { t = "savepoint",
    dir = control.absolute(dir or jd .. "/savepoints") },
    opts and opts.checkpoint_dir).path
end

--- Cancels a running job, after a savepoint into opts.savepoint if given,
-- and waits until it stopped; returns the savepoint's path or nil.
-- @param opts { savepoint = dir, checkpoint_dir = where to find a job
--   given by name }
function M.cancel(job, opts)
  opts = opts or {}
  local jobmod = require "weir.background"
  if jobmod.is_job(job) or require("weir.submit").is_submission(job) then
    return job:cancel(opts)
  end
  local control = require "weir.control"
  local path = request(job, { t = "cancel",
    dir = opts.savepoint and control.absolute(opts.savepoint) },
    opts.checkpoint_dir, true).path
  if path then return path end
end

--- Per-task metrics of a running job: { { task, operator, subtask,
-- records_in, records_out, backpressured_ms, alignment_ms } } (a
-- worker's figures are up to a second old).
function M.metrics(job, opts)
  local jobmod = require "weir.background"
  if jobmod.is_job(job) then return job:metrics() end
  return request(job, { t = "metrics" }, opts and opts.checkpoint_dir).tasks
end

--- Prints the state in a checkpoint or savepoint as `weir inspect` does.
-- @param opts { uid = operator, key = key (as text), format = "lua" |
--   "json" }
-- Raises when the snapshot cannot be read (damaged, missing).
function M.inspect(path, opts)
  opts = opts or {}
  local shown = { format = opts.format or "lua" }
  for _, k in ipairs({ "uid", "key" }) do
    if opts[k] ~= nil then shown[k] = tostring(opts[k]) end
  end
  local ok, err = require("weir.inspect").write(path, shown, io.stdout)
  if not ok then error(err, 0) end
end

return M
