--- The checkpoint coordinator: triggers checkpoints on a timer, collects
-- the acknowledgements of every task, publishes a checkpoint by writing its
-- manifest last, tells the hosts to commit, keeps `retain` checkpoints,
-- and takes the final checkpoint once every task ended. It also chooses
-- the checkpoint a job restores from.
--
-- Hosts are the places tasks run: a weir.job host in this process, or
-- proxies of worker processes (weir.cluster). A host offers
-- trigger(id, final), complete(id), commit() and stop(); it reports back
-- through ack(task_id, id, files) and task_ended(task_id).
local core = require "weir.core"
local checkpoint = require "weir.checkpoint"
local errors = require "weir.errors"
local metrics = require "weir.metrics"

local M = {}

local Coordinator = {}
Coordinator.__index = Coordinator

local function warn(msg) errors.warn(msg) end

--- Creates the coordinator of a job (see weir.job.prepare).
function M.new(job)
  return setmetatable({ job = job, options = job.options,
    job_dir = job.job_dir, interval_ms = job.options.checkpoint_interval,
    total = #job.plan.tasks, ended = {}, ended_count = 0, hosts = {},
    next_id = checkpoint.next_id(job.job_dir), checkpoints = 0 },
    Coordinator)
end

-- -- Restore -----------------------------------------------------------------

local function restore_error(fmt, ...)
  error(string.format(fmt, ...), 0)
end

--- Finds the checkpoint to restore (options.restore is "latest" or a
-- path), verified, and checks it fits the job from its manifest. Returns
-- it, loaded with its state (see weir.checkpoint.load) unless without_state
-- (workers load their own), or nil when there is nothing to restore.
function Coordinator:restore_point(without_state)
  local what = self.options.restore
  if not what then return nil end
  local open = without_state and checkpoint.open_verified or checkpoint.load
  local loaded, err
  if what == "latest" then
    loaded = checkpoint.find_latest(self.job_dir, warn, open)
    if not loaded then
      warn(string.format("no complete checkpoint in %s; starting from the "
        .. "beginning", self.job_dir))
      return nil
    end
  else
    loaded, err = open(what)
    if not loaded then
      restore_error("cannot restore from %s: %s", what, err)
    end
  end
  local m = loaded.manifest
  if m.max_parallelism ~= self.options.max_parallelism then
    restore_error("cannot restore %s: it has max_parallelism %d, the job "
      .. "has %d; max_parallelism is fixed for the life of the state",
      loaded.path, m.max_parallelism, self.options.max_parallelism)
  end
  local nodes, kinds = {}, {}
  for _, node in ipairs(self.job.pipeline.nodes) do nodes[node.uid] = node end
  for _, op in ipairs(m.operators) do kinds[op.uid] = op.kind end
  for _, file in ipairs(m.files) do
    local node = nodes[file.uid]
    if not node and not self.options.allow_non_restored_state then
      restore_error("cannot restore %s: it holds state for operator '%s', "
        .. "which this job does not have (--allow-non-restored-state "
        .. "drops it)", loaded.path, file.uid)
    elseif node and node.kind ~= kinds[file.uid] then
      restore_error("cannot restore %s: operator '%s' is a %s in the "
        .. "snapshot and a %s in the job", loaded.path, file.uid,
        tostring(kinds[file.uid]), node.kind)
    end
  end
  self.restored = loaded
  return loaded
end

-- -- Checkpoints -------------------------------------------------------------

--- Starts the checkpoint timer (when checkpoints are on) and, when the
-- job reports metrics (a metrics file, or stderr on a terminal), their
-- timer.
function Coordinator:start()
  local o = self.options
  local status_line = core.isatty(2) and not os.getenv("WEIR_NO_STATUS")
  if (o.metrics or status_line) and not self.reporter then
    self.reporter = metrics.reporter(self.job.name, o.metrics or nil,
      status_line)
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
end

--- Triggers checkpoint n on every host: the timer's, or the final one once
-- every task ended. At most one checkpoint is pending at a time.
function Coordinator:trigger(final)
  if self.pending or self.stopped then return end
  if self.ended_count == self.total and not final then return end
  local id = self.next_id
  self.next_id = id + 1
  local path = checkpoint.path(self.job_dir, id)
  local ok, err = core.mkdir(path)
  if not ok then
    error(string.format("checkpoint %d failed: cannot create %s: %s", id,
      path, err), 0)
  end
  local pending = { id = id, path = path, start_ms = core.monotonic_ms(),
                   acked = {}, acks = 0, files = {}, final = final }
  self.pending = pending
  -- The final checkpoint has no timeout: the job cannot end without it.
  if not final then
    pending.timer = core.timer(errors.guard(function()
      self:expire(pending)
    end))
    pending.timer:start(self.options.checkpoint_timeout, 0)
  end
  for _, host in ipairs(self.hosts) do host:trigger(id, final) end
end

--- Checkpoint `pending` did not complete within checkpoint_timeout: it is
-- aborted and its files removed, and the job goes on unless more than
-- tolerable_failed_checkpoints failed in a row.
function Coordinator:expire(pending)
  if self.pending ~= pending then return end
  self:abort_pending()
  for _, host in ipairs(self.hosts) do host:abort(pending.id) end
  checkpoint.remove(pending.path)
  self.failed_in_row = (self.failed_in_row or 0) + 1
  local msg = string.format("checkpoint %d expired after %d ms and was "
    .. "aborted", pending.id, self.options.checkpoint_timeout)
  if self.failed_in_row > self.options.tolerable_failed_checkpoints then
    self:fail(string.format("%s; %d checkpoints failed in a row, more than "
      .. "tolerable_failed_checkpoints (%d)", msg, self.failed_in_row,
      self.options.tolerable_failed_checkpoints))
    return
  end
  warn(msg)
  self:maybe_finish()
end

--- The job fails with message: by default an error; weir.cluster sets
-- on_failure to restart instead.
function Coordinator:fail(message)
  if self.on_failure then return self.on_failure(message) end
  error(message, 0)
end

--- A task acknowledged checkpoint id with the files it wrote.
function Coordinator:ack(task_id, id, files)
  local pending = self.pending
  if not pending or pending.id ~= id or pending.acked[task_id] then return end
  pending.acked[task_id] = true
  pending.acks = pending.acks + 1
  for _, f in ipairs(files) do pending.files[#pending.files + 1] = f end
  if pending.acks < self.total then return end
  table.sort(pending.files, function(a, b) return a.name < b.name end)
  local operators = {}
  for _, node in ipairs(self.job.pipeline.nodes) do
    operators[#operators + 1] = { uid = node.uid, kind = node.kind,
      parallelism = node.parallelism }
  end
  checkpoint.write_manifest_async(pending.path, {
    job = self.job.name, id = id, time_ms = core.time_ms(),
    duration_ms = core.monotonic_ms() - pending.start_ms,
    final = pending.final or false,
    max_parallelism = self.options.max_parallelism, mode = self.options.mode,
    operators = operators, files = pending.files,
  }, errors.guard(function(err)
    if self.pending ~= pending then return end
    if err then
      error(string.format("checkpoint %d failed: cannot write its manifest "
        .. "in %s: %s", id, pending.path, err), 0)
    end
    self:complete(pending)
  end))
end

-- The manifest of a checkpoint is durable: the checkpoint exists.
function Coordinator:complete(pending)
  self:abort_pending()
  self.failed_in_row = 0
  local size = 0
  for _, f in ipairs(pending.files) do size = size + f.size_bytes end
  self.last_checkpoint = { id = pending.id, size_bytes = size,
    duration_ms = core.monotonic_ms() - pending.start_ms }
  self.last_completed = pending.id
  self.checkpoints = self.checkpoints + 1
  for _, host in ipairs(self.hosts) do host:complete(pending.id) end
  checkpoint.apply_retention(self.job_dir, self.options.retain, pending.id)
  if pending.final then self:finish() else self:maybe_finish() end
end

--- Abandons a pending checkpoint (its directory, without a manifest, does
-- not count and is removed by a later retention pass).
function Coordinator:abort_pending()
  local pending = self.pending
  if pending and pending.timer then pending.timer:close() end
  self.pending = nil
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
end

function Coordinator:close()
  if self.timer then self.timer:close() self.timer = nil end
  if self.metrics_timer then
    self.metrics_timer:close()
    self.metrics_timer = nil
  end
  self:abort_pending()
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
