--- The checkpoint coordinator: triggers checkpoints on a timer, collects
-- the acknowledgements of every task, publishes a checkpoint by writing its
-- manifest last, tells the hosts to commit, keeps `retain` checkpoints,
-- and takes the final checkpoint once every task ended. It also chooses
-- the checkpoint a job restores from (weir.restore), takes savepoints
-- and cancels the job on request (see weir.control).
--
-- Hosts are the places tasks run: a weir.host in this process, or
-- proxies of worker processes (weir.supervisor). A host offers
-- trigger(id, final, savepoint), complete(id), commit(), drain() and
-- stop(); it reports back
-- through ack(task_id, id, files) and task_ended(task_id).
local core = require "weir.core"
local checkpoint = require "weir.checkpoint_storage"
local errors = require "weir.errors"
local failpoint = require "weir.failpoint"
local incremental = require "weir.incremental"
local job_history = require "weir.job_history"
local fsutil = require "weir.fsutil"
local metrics = require "weir.metrics"
local restore = require "weir.restore"

local M = {}

local Coordinator = {}
Coordinator.__index = Coordinator

local function warn(msg) errors.warn(msg) end

--- Creates the coordinator of a job (see weir.launch.prepare); the job
-- gets a history (weir.job_history) if it has none.
function M.new(job)
  -- The job's history outlives its attempts' coordinators.
  job.history = job.history or job_history.new()
  return setmetatable({ job = job, options = job.options,
    job_dir = job.job_dir, interval_ms = job.options.checkpoint_interval,
    total = #job.plan.tasks, ended = {}, ended_count = 0, hosts = {},
    next_id = checkpoint.next_id(job.job_dir), checkpoints = 0,
    abandoned = {}, writing_manifest = {} },
    Coordinator)
end

--- The checkpoint to restore, verified and checked against the job, or
-- nil; see weir.restore.point. Sets self.restored and self.next_id.
-- Under weir run --ha, the run is recorded in etcd once its start is
-- known, so a standby taking over before its first checkpoint continues
-- this run, not an earlier one.
function Coordinator:restore_point(without_state)
  local loaded = restore.point(self, without_state)
  local lineage, leader = self.job.lineage, self.job.leader
  if leader and not lineage.recorded then
    lineage.recorded = true
    leader:record(lineage, lineage.last)
  end
  return loaded
end

-- -- Checkpoints -------------------------------------------------------------

--- Starts the checkpoint timer (when checkpoints are on) and, when the
-- job reports metrics (a metrics file, or stderr on a terminal), their
-- timer.
function Coordinator:start()
  self.started = true
  local o = self.options
  -- The status: a live line on a terminal, else (weir run) a log line
  -- every STATUS_LOG_MS.
  local status
  if not os.getenv("WEIR_NO_STATUS") and not self.job.quiet then
    status = core.isatty(2) and "line" or self.job.cli and "log" or nil
  end
  if (o.metrics or status) and not self.reporter then
    self.reporter = metrics.reporter(self.job.name, o.metrics or nil,
      status)
    self.metrics_timer = core.timer(errors.guard(function()
      for _, host in ipairs(self.hosts) do
        if host.metrics then self.reporter:update(host, host:metrics()) end
      end
      self.reporter:tick(self.last_checkpoint)
    end))
    self.metrics_timer:start(metrics.INTERVAL_MS, metrics.INTERVAL_MS)
  end
  if self.interval_ms > 0 then
    self.timer = core.timer(errors.guard(function() self:trigger(false) end))
    self.timer:start(self.interval_ms, self.interval_ms)
  end
  if self.draining then  -- cancelled with drain while starting
    for _, host in ipairs(self.hosts) do host:drain() end
  end
end

--- Triggers checkpoint n on every host: the timer's, a savepoint that was
-- asked for, or the final one once every task ended. At most one
-- checkpoint or savepoint is pending at a time.
function Coordinator:trigger(final)
  if self.pending or self.stopped then return end
  if self.ended_count == self.total and not final then return end
  local savepoint = not final and self.savepoint_request
  self.savepoint_request = nil
  local id = self.next_id
  self.next_id = id + 1
  local path = checkpoint.path(self.job_dir, id)
  local pending = { id = id, path = path, start_ms = core.monotonic_ms(),
                   acked = {}, acks = 0, files = {}, final = final,
                   savepoint = savepoint or nil }
  self.pending = pending
  self.job.history:triggered(pending)
  local ok, err = checkpoint.make_dir(path)
  if not ok then return self:decline(id, err) end
  -- The final checkpoint has no timeout: the job cannot end without it.
  if not final then
    pending.timer = core.timer(errors.guard(function()
      self:expire(pending)
    end))
    pending.timer:start(self.options.checkpoint_timeout, 0)
  end
  for _, host in ipairs(self.hosts) do
    host:trigger(id, final, pending.savepoint and pending.savepoint.dir)
  end
end

--- Checkpoint `pending` did not complete within checkpoint_timeout: it is
-- aborted and its files removed, and the job goes on unless more than
-- tolerable_failed_checkpoints failed in a row.
function Coordinator:expire(pending)
  if self.pending ~= pending then return end
  local what = pending.savepoint and "savepoint" or "checkpoint"
  self:abort_pending(string.format("%s %d expired after %d ms (the job "
    .. "goes on)", what, pending.id, self.options.checkpoint_timeout))
  for _, host in ipairs(self.hosts) do host:abort(pending.id) end
  checkpoint.remove(pending.path, true)
  if pending.savepoint then
    -- Only checkpoints count towards tolerable_failed_checkpoints.
    self:next_after_pending()
    return
  end
  self:count_failure(string.format("checkpoint %d expired after %d ms and "
    .. "was aborted (not acknowledged by %s)", pending.id,
    self.options.checkpoint_timeout, self:unacknowledged(pending)), "")
end

-- The subtasks that have not acknowledged checkpoint `pending`, as
-- "uid[subtask]" of each chain's first operator, comma-separated (the
-- first 8, then how many more).
function Coordinator:unacknowledged(pending)
  local names, more = {}, 0
  for _, task in ipairs(self.job.plan.tasks) do
    if not pending.acked[task.id] then
      if #names < 8 then
        local head = task.chain.head
        names[#names + 1] = string.format("%s[%d]",
          head.uid or head.kind or "?", task.subtask)
      else
        more = more + 1
      end
    end
  end
  if more > 0 then names[#names + 1] = more .. " more" end
  return table.concat(names, ", ")
end

-- A checkpoint failed with msg: the job fails when more than
-- tolerable_failed_checkpoints failed in a row, else warns with msg and
-- goes on (adding going_on to the line).
function Coordinator:count_failure(msg, going_on)
  self.failed_in_row = (self.failed_in_row or 0) + 1
  local tolerable = self.options.tolerable_failed_checkpoints
  if self.failed_in_row > tolerable then
    self:fail(string.format("%s; %d checkpoints failed in a row, more than "
      .. "tolerable_failed_checkpoints (%d)", msg, self.failed_in_row,
      tolerable))
    return
  end
  warn(msg .. going_on)
  self:next_after_pending()
end

--- Checkpoint id cannot be written: its directory, a state file or its
-- manifest could not be made (a full disk). A host calls it with reason
-- (what could not be written, and why). The checkpoint is declined --
-- aborted on every host, its directory removed -- and the job goes on
-- while no more than tolerable_failed_checkpoints failed in a row (by
-- default none: the job fails over, as Flink's does). A savepoint
-- declined fails its request and does not count. Nothing is lost either
-- way: sinks commit only what a complete checkpoint covers.
function Coordinator:decline(id, reason)
  local pending = self.pending
  if not pending or pending.id ~= id then return end
  local what = pending.savepoint and "savepoint" or "checkpoint"
  local msg = string.format("%s %d was declined: %s", what, id, reason)
  self:abort_pending(msg)
  for _, host in ipairs(self.hosts) do host:abort(id) end
  checkpoint.remove(pending.path, true)
  if pending.savepoint then
    warn(msg)
    return self:next_after_pending()
  end
  self:count_failure(msg, string.format("; the job goes on (%d failed in a "
    .. "row, tolerable_failed_checkpoints %d)", (self.failed_in_row or 0) + 1,
    self.options.tolerable_failed_checkpoints))
end

--- Removes the directories of checkpoints abandoned without a manifest
-- (declined, expired, or pending when the job failed) that are still
-- there: call it once nothing writes into them any more (the workers
-- exited, or the thread pool drained).
function Coordinator:remove_abandoned()
  for _, path in ipairs(self.abandoned) do
    if core.stat(path) and not self.writing_manifest[path]
        and not core.stat(path .. "/" .. checkpoint.MANIFEST) then
      checkpoint.remove(path)
    end
  end
  self.abandoned = {}
end

--- The job fails with message: by default an error; weir.supervisor sets
-- on_failure to restart instead.
function Coordinator:fail(message)
  if self.on_failure then return self.on_failure(message) end
  error(message, 0)
end

-- The timing fields a checkpoint's manifest keeps: the largest over its
-- tasks.
local TIMING = { "sync_ms", "async_ms", "alignment_ms" }

--- A task acknowledged checkpoint id with the files it wrote; timing
-- (optional) is { sync_ms = how long its synchronous part held its
-- records up, async_ms = how long its writes took after that,
-- alignment_ms = how long it aligned the barrier }.
function Coordinator:ack(task_id, id, files, timing)
  local pending = self.pending
  if not pending or pending.id ~= id or pending.acked[task_id] then return end
  pending.acked[task_id] = true
  for _, name in ipairs(TIMING) do
    local v = timing and timing[name]
    if v then pending[name] = math.max(pending[name] or 0, v) end
  end
  pending.acks = pending.acks + 1
  for _, f in ipairs(files) do pending.files[#pending.files + 1] = f end
  if pending.acks < self.total then return end
  table.sort(pending.files, function(a, b) return a.name < b.name end)
  local prefix = pending.final and "final." or "checkpoint."
  failpoint.hit(prefix .. "before_manifest")
  local ferr = failpoint.hit("checkpoint.manifest")
  if ferr then
    return self:decline(id, string.format("cannot write its manifest in "
      .. "%s: %s", pending.path, ferr))
  end
  -- Under --ha, only while this coordinator surely leads (weir.ha).
  local fenced = self.job.leader and self.job.leader:fence()
  if fenced then return self:decline(id, "not published: " .. fenced) end
  local operators = {}
  for _, node in ipairs(self.job.pipeline.nodes) do
    operators[#operators + 1] = { uid = node.uid, kind = node.kind,
      parallelism = node.parallelism }
  end
  self.writing_manifest[pending.path] = true
  checkpoint.write_manifest_async(pending.path, {
    job = self.job.name, id = id, time_ms = core.time_ms(),
    duration_ms = core.monotonic_ms() - pending.start_ms,
    sync_ms = pending.sync_ms, async_ms = pending.async_ms,
    alignment_ms = pending.alignment_ms,
    final = pending.final or false,
    max_parallelism = self.options.max_parallelism, mode = self.options.mode,
    operators = operators, files = pending.files,
    savepoint = pending.savepoint and true or nil,
    run_id = self.job.lineage.run_id,
  }, errors.guard(function(err)
    self.writing_manifest[pending.path] = nil
    if self.pending ~= pending then
      -- Abandoned while its manifest was written (every task's files were
      -- durable by then): published if the manifest landed, as after a
      -- crash right after the rename (a restore takes it and commits its
      -- sinks), else removed here, not by remove_abandoned.
      if not core.stat(pending.path .. "/" .. checkpoint.MANIFEST) then
        checkpoint.remove(pending.path, true)
      end
      return
    end
    err = err or failpoint.hit("checkpoint.manifest_dir_fsync")
    if err and not core.stat(pending.path .. "/" .. checkpoint.MANIFEST) then
      return self:decline(id, string.format("cannot write its manifest in "
        .. "%s: %s", pending.path, err))
    elseif err then
      -- The manifest was renamed into place, then a step after (the
      -- fsync of its directory) failed: the checkpoint is published and
      -- a restore would take it, so it counts as complete.
      warn(string.format("checkpoint %d is complete, but its durability "
        .. "is not assured: %s (after its manifest was renamed into "
        .. "place in %s)", id, err, pending.path))
    end
    if pending.savepoint then return self:complete_savepoint(pending) end
    failpoint.hit(prefix .. "after_manifest")
    self:complete(pending)
  end))
end

-- The manifest of a checkpoint is durable: the checkpoint exists.
function Coordinator:complete(pending)
  pending.completed = true
  self:abort_pending()
  self.failed_in_row = 0
  -- What it added to storage: its state files and new shared files.
  local size = incremental.sizes(pending.files)
  self.last_checkpoint = { id = pending.id, size_bytes = size,
    duration_ms = core.monotonic_ms() - pending.start_ms,
    sync_ms = pending.sync_ms, async_ms = pending.async_ms }
  self.last_completed = pending.id
  self.job.lineage.last = pending.path
  self.job.history:completed(pending, pending.path)
  if self.job.leader then
    self.job.leader:record(self.job.lineage, pending.path)
  end
  self.checkpoints = self.checkpoints + 1
  errors.debug(string.format("checkpoint %d complete: %.0f ms (sync %.0f, "
    .. "async %.0f), %d bytes, %s", pending.id,
    self.last_checkpoint.duration_ms, pending.sync_ms or 0,
    pending.async_ms or 0, size, pending.path))
  for _, host in ipairs(self.hosts) do host:complete(pending.id) end
  checkpoint.apply_retention(self.job_dir, self.options.retain, pending.id)
  if pending.final then self:finish() else self:next_after_pending() end
end

-- A checkpoint or savepoint completed or failed: a savepoint asked for
-- meanwhile is taken now; the job may be finished.
function Coordinator:next_after_pending()
  if self.savepoint_request and self.ended_count < self.total then
    self:trigger(false)
  end
  self:maybe_finish()
end

--- Abandons a pending checkpoint (its directory, without a manifest, does
-- not count; it is remembered for remove_abandoned). A pending
-- savepoint fails with reason (a string); with all, one asked for fails
-- too (the coordinator is closing).
function Coordinator:abort_pending(reason, all)
  local pending = self.pending
  if pending and pending.timer then pending.timer:close() end
  if pending and not pending.completed then
    self.abandoned[#self.abandoned + 1] = pending.path
    self.job.history:failed(pending, reason)
  end
  self.pending = nil
  reason = reason or "the job stopped before the savepoint completed"
  if pending and pending.savepoint then pending.savepoint.cb(reason) end
  local queued = self.savepoint_request
  if queued and all then
    self.savepoint_request = nil
    queued.cb(reason)
  end
end

-- -- Savepoints and cancellation ---------------------------------------------

--- Takes a savepoint of the running job into directory dir (created if
-- missing): a snapshot like a checkpoint -- triggered by a barrier, with
-- a manifest listing every file and its checksum, file names relative to
-- it, so the directory can be moved and restored with --restore -- at
-- dir/savepoint-<job>-<id>. Retention never removes it. It commits no
-- output and the job never fails over to it (a savepoint taken while the
-- job goes on is not part of its exactly-once history, as in Flink 1.15+),
-- except when stop is set: then the sinks commit and the job stops
-- (stop with savepoint).
-- @param cb fn(err) on failure (message), fn(nil, path) once complete
function Coordinator:savepoint(dir, cb, stop)
  local refusal = self.stopped and "the job is stopping"
    or not self.started and "the job is still starting; try again shortly"
    or self.ended_count == self.total and "the job's input has ended and it "
      .. "is finishing"
    or self.savepoint_request and "a savepoint of this job is already "
      .. "in progress"
    or self.pending and self.pending.savepoint and "a savepoint of this job "
      .. "is already in progress"
  if refusal then return cb("cannot take a savepoint: " .. refusal) end
  local ok, err = fsutil.mkdir_p(dir)
  if ok then ok, err = fsutil.check_writable(dir) end
  if ok then ok, err = fsutil.mkdir_p(self.job_dir) end
  if not ok then return cb("cannot take a savepoint into " .. dir .. ": "
    .. err) end
  self.savepoint_request = { dir = dir, cb = cb, stop = stop }
  if not self.pending then self:trigger(false) end
end

-- The manifest of a savepoint is durable in the job directory: move it to
-- its place; with stop, commit and stop the job.
function Coordinator:complete_savepoint(pending)
  local req = pending.savepoint
  pending.savepoint = nil
  pending.completed = true
  self:abort_pending()
  local target = string.format("%s/savepoint-%s-%d", req.dir, self.job.name,
    pending.id)
  if core.stat(target) then
    target = string.format("%s-%d", target, math.floor(core.time_ms()))
  end
  local ok, err = checkpoint.move(pending.path, target)
  if not ok then
    checkpoint.remove(pending.path)
    err = string.format("savepoint %d could not be moved to %s: %s",
      pending.id, target, err)
    self.job.history:failed(pending, err)
    req.cb(err)
    return self:next_after_pending()
  end
  self.job.history:completed(pending, target)
  if req.stop then
    for _, host in ipairs(self.hosts) do host:complete(pending.id) end
    self.cancelled = { savepoint = target }
    req.cb(nil, target)
    return self:finish()
  end
  req.cb(nil, target)
  self:next_after_pending()
end

-- Whether the job reads a socket through a write-ahead log or follows
-- files, which a cancel drains.
function Coordinator:drains()
  for _, chain in ipairs(self.job.plan.chains) do
    local head = chain.head
    if head.kind == "read_socket" and head.wal then return true end
    if head.kind == "read_lines" and head.follow then return true end
  end
  return false
end

--- Cancels the job: stops every task now, or, with dir, after a savepoint
-- into dir (see Coordinator:savepoint). Output not committed by then is
-- not committed; checkpoints are removed once the job stopped unless
-- retain_on_cancel (see remove_checkpoints). A job that reads a socket
-- through a write-ahead log or follows files drains instead, unless no_drain: every host
-- drains its sources (weir.host Host:drain) and the job finishes with a
-- final checkpoint, its output committed. A job still starting drains
-- once it started (see Coordinator:start), and so does the next attempt
-- after a failure meanwhile (on_drain tells its runner).
-- @param cb fn(err) when the cancellation failed (the job goes on),
--   fn(nil, savepoint path|nil) once the job is stopping
function Coordinator:cancel(dir, cb, no_drain)
  if dir then return self:savepoint(dir, cb, true) end
  if self.stopped or self.cancelled or self.draining then
    return cb("the job is already stopping")
  end
  if not no_drain and self:drains() then
    self.draining = true
    if self.on_drain then self.on_drain() end
    errors.note("draining: the sources take no more input, and the job "
      .. "finishes once what its write-ahead log or followed files hold "
      .. "went through")
    if self.started then
      for _, host in ipairs(self.hosts) do host:drain() end
    end
    return cb(nil)
  end
  self.cancelled = {}
  cb(nil)
  -- A job still starting stops once its tasks are ready (the runner sees
  -- cancelled then).
  if self.started then self:finish() end
end

--- After a cancelled job stopped: removes its checkpoints, or with
-- retain_on_cancel only the incomplete ones, so the newest complete
-- checkpoints survive for --restore latest.
function Coordinator:remove_checkpoints()
  if not self.options.retain_on_cancel then self.last_completed = nil end
  for _, c in ipairs(checkpoint.list(self.job_dir)) do
    if not (c.complete and self.options.retain_on_cancel) then
      checkpoint.remove(c.path)
    end
  end
  -- A write-ahead log (read_socket) goes with the checkpoints that
  -- recorded how far the job read it.
  if not self.options.retain_on_cancel then
    for _, uid in ipairs(core.scandir(self.job_dir .. "/wal") or {}) do
      fsutil.remove_dir(self.job_dir .. "/wal/" .. uid)
    end
    core.rmdir(self.job_dir .. "/wal")
  end
  core.rmdir(self.job_dir)  -- when nothing is left in it
end

--- A task reached the end of its input.
function Coordinator:task_ended(task_id)
  if self.ended[task_id] then return end
  self.ended[task_id] = true
  self.ended_count = self.ended_count + 1
  self:maybe_finish()
end

-- Once every task ended and no checkpoint is pending: take the final
-- checkpoint (its completion commits the sinks and stops the job), or,
-- with checkpoints off, commit the sinks now.
function Coordinator:maybe_finish()
  if self.ended_count < self.total or self.pending or self.stopped then
    return
  end
  if self.savepoint_request then
    local req = self.savepoint_request
    self.savepoint_request = nil
    req.cb("cannot take a savepoint: the job's input ended first; it is "
      .. "finishing")
  end
  if self.interval_ms > 0 then
    self:trigger(true)
  else
    for _, host in ipairs(self.hosts) do host:commit() end
    self:finish()
  end
end

--- Stops the timer and every host.
function Coordinator:finish()
  self.stopped = true
  self:close()
  for _, host in ipairs(self.hosts) do host:stop() end
  if self.on_finish then self.on_finish() end
end

--- Stops the timers and abandons what is pending; a savepoint pending or
-- asked for fails with reason.
function Coordinator:close(reason)
  if self.timer then self.timer:close() self.timer = nil end
  if self.metrics_timer then
    self.metrics_timer:close()
    self.metrics_timer = nil
  end
  self:abort_pending(reason, true)
end

--- Ends metrics reporting; returns the records the sources read (nil
-- when the job reported no metrics).
function Coordinator:close_metrics()
  if not self.reporter then return nil end
  for _, host in ipairs(self.hosts) do
    if host.metrics then self.reporter:update(host, host:metrics()) end
  end
  local total = self.reporter:close(self.last_checkpoint)
  self.reporter = nil
  return total
end

return M
