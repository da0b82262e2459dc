--- Jobs in the background of this process (Flink's JobClient): a pipeline
-- started with p:start() runs on the loop while the REPL waits for input
-- or Job:wait() runs the loop, and its handle reports its status, takes
-- savepoints and cancels it. One background job at a time.
local core = require "weir.core"
local checkpoint = require "weir.checkpoint_storage"
local control = require "weir.control"
local errors = require "weir.errors"
local launch = require "weir.launch"

local M = {}

local start_local, finish_local = launch.start_local, launch.finish_local

local Job = {}
Job.__index = Job

local background  -- the Job running in the background of this process

-- Waits, running the loop, until done() is true.
local function wait_for(done)
  while not done() do
    local ok, err = pcall(core.run_once)
    if not ok then M.loop_error(err) end
  end
end

--- Starts a pipeline in the background of this process (all its
-- subtasks here, at its `parallelism` option or 1) and returns at once
-- with a Job; the job advances whenever the loop runs: while the REPL
-- waits for input, or in Job:wait(). One background job at a time.
-- Raises like weir.launch.run when the job cannot start; a failure later
-- ends the job (Job:status() says why; Job:wait() raises it).
-- @return Job with :status(), :metrics(), :savepoint(dir), :cancel(opts),
--   :wait()
function M.start(p)
  if background and background.state == "running" then
    error(string.format("job '%s' is running in the background; "
      .. ":wait() for it or :cancel() it first", background.name), 0)
  end
  local job = launch.prepare(p, p.options.parallelism or 1)
  job.quiet = true  -- no status line: the prompt is on the terminal
  local handle = setmetatable({ name = job.name, job = job, state = "running",
    start_ms = core.monotonic_ms(), st = {} }, Job)
  local ok, started = xpcall(start_local, errors.handler, job, handle.st,
    function() handle:ended(true) end)
  if not ok then
    handle:ended(false, started)
    error(handle.error, 0)
  end
  if not started then handle:ended(true) end
  background = handle
  return handle
end

-- Records the source tasks of host read.
local function source_records(host)
  local records = 0
  for _, task in ipairs(host.tasks) do
    if task.source then records = records + task.records_in end
  end
  return records
end

-- The job finished (ok) or failed (err): stops it and keeps its
-- statistics or error.
function Job:ended(ok, err)
  if self.state ~= "running" then return end
  if self.st.host then self.records = source_records(self.st.host) end
  self.end_ms = core.monotonic_ms()
  local fok, stats = pcall(finish_local, self.job, self.st, self.start_ms, ok,
    err)
  if fok then
    self.stats = stats
    self.state = stats.cancelled and "cancelled" or "finished"
  else
    self.state, self.error = "failed", tostring(stats)
  end
  if background == self then background = nil end
  if M.on_background_end then M.on_background_end(self) end
end

--- An error a loop callback raised while something waited on the loop
-- (the REPL, Job:wait()): when a job runs in the background, its
-- callbacks are the ones that raise, so it fails with err. Returns "job
-- '<name>' failed: <message>", or nil when no job runs.
function M.fail_background(err)
  local job = background
  if not job then return nil end
  job:ended(false, errors.is(err) and err or errors.new(tostring(err)))
  return string.format("job '%s' failed: %s", job.name, job.error)
end

--- Like fail_background, warning with its message; raises err when no
-- job runs in the background.
function M.loop_error(err)
  local msg = M.fail_background(err)
  if not msg then error(err, 0) end
  errors.warn(msg)
end

--- Called with the Job when a background job finished, was cancelled or
-- failed (the REPL reports it); nil for none.
M.on_background_end = nil

--- The job's state and progress: { job = name, state = "running" |
-- "finished" | "cancelled" | "failed", records = records the sources
-- emitted, records_per_s (since the start), checkpoints = completed,
-- last_checkpoint = path|nil, error = message|nil, uptime_ms }.
function Job:status()
  local coord = self.st.coord
  local r = { job = self.name, state = self.state, error = self.error,
    uptime_ms = math.floor((self.end_ms or core.monotonic_ms())
      - self.start_ms) }
  local records = self.records
  if self.state == "running" and self.st.host then
    records = source_records(self.st.host)
  end
  if records then
    r.records = records
    r.records_per_s = math.floor(records / math.max(r.uptime_ms, 1) * 1000)
  end
  if coord then
    r.checkpoints = coord.checkpoints
    r.last_checkpoint = coord.last_completed
      and checkpoint.path(self.job.job_dir, coord.last_completed) or nil
  end
  if self.stats then r.savepoint = self.stats.savepoint end
  return r
end

--- Whether v is a Job handle (see M.start).
function M.is_job(v) return getmetatable(v) == Job end

--- Per-task metrics of the running job (see Host:metrics): records in
-- and out, time backpressured (ms), last alignment (ms). Empty once the
-- job ended.
function Job:metrics()
  if self.state ~= "running" then return {} end
  return self.st.host:metrics()
end

-- Calls coordinator method `method` with dir and waits for its outcome.
local function request(self, method, dir)
  if self.state ~= "running" then
    error(string.format("job '%s' is not running (%s)", self.name,
      self.state), 0)
  end
  local done, err, path
  self.st.coord[method](self.st.coord, dir and control.absolute(dir),
    function(e, p2)
      done, err, path = true, e, p2
    end)
  wait_for(function() return done end)
  if err then error(err, 0) end
  return path
end

--- Takes a savepoint into dir (default: savepoints/ in the job's
-- checkpoint directory), waiting for it; returns its path. Raises when it
-- fails (the job goes on). See Coordinator:savepoint.
function Job:savepoint(dir)
  return request(self, "savepoint", dir or self.job.job_dir .. "/savepoints")
end

--- Cancels the job, after a savepoint into opts.savepoint if given, and
-- waits until it stopped. Returns the savepoint's path (nothing without
-- one). Raises when the savepoint fails (the job goes on).
function Job:cancel(opts)
  local path = request(self, "cancel", opts and opts.savepoint)
  -- Stopped, and its checkpoints removed once its writes landed.
  local host = self.st.host
  wait_for(function()
    return self.state ~= "running" and (not host or host.checkpoints:idle())
  end)
  if path then return path end
end

--- Waits until the job ends; returns its statistics (see weir.launch.run)
-- or raises its error.
function Job:wait()
  wait_for(function() return self.state ~= "running" end)
  if self.state == "failed" then error(self.error, 0) end
  return self.stats
end

function Job:__tostring()
  local s = self:status()
  return string.format("<weir job '%s' %s%s%s>", s.job, s.state,
    s.records and string.format(", %d records", s.records) or "",
    s.checkpoints and string.format(", %d checkpoints", s.checkpoints) or "")
end

return M
