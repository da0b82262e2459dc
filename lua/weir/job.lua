--- Running a job in this process: tasks on the libuv loop, channels,
-- checkpoint barriers, the checkpoint coordinator, restore and the end of
-- a bounded job.
--
-- Asynchronous barrier snapshotting (Carbone et al. 2015, "Lightweight
-- Asynchronous Snapshots for Distributed Dataflows"): the coordinator's
-- timer triggers checkpoint n; each source task records its position,
-- snapshots its chain and puts barrier n into its output channels; a task
-- with several input channels aligns barrier n (engine/barrier.c) before it
-- snapshots and forwards it. Snapshots are serialized on the loop thread
-- and compressed and written on the thread pool. When every task has
-- acknowledged, the manifest is written last; then sinks commit.
local core = require "weir.core"
local checkpoint = require "weir.checkpoint"
local errors = require "weir.errors"
local fsutil = require "weir.fsutil"
local plan = require "weir.plan"
local operators = require "weir.operators"
local sources = require "weir.sources"
local sinks = require "weir.sinks"
local windows = require "weir.windows"

local M = {}

M.BATCH_RECORDS = 512      -- records per channel batch
M.SOURCE_RECORDS = 1024    -- records a source emits per loop turn
M.CHANNEL_BATCHES = 16     -- batches queued on a channel before backpressure
M.CONSUME_BATCHES = 8      -- batches a task takes per channel per loop turn

local END = { end_of_input = true }  -- in-band end-of-input event

local function factory(kind)
  return operators[kind] or sources[kind] or sinks[kind] or windows[kind]
    or error("no runtime for operator kind " .. kind)
end

local function warn(msg)
  io.stderr:write("weir: ", msg, "\n")
end

-- Wraps a loop callback so an error raised in it is attributed to an
-- operator while the stack is still intact (see weir.errors.handler).
local function guard(fn)
  return function(...)
    local ok, err = xpcall(fn, errors.handler, ...)
    if not ok then error(err, 0) end
  end
end

-- -- Channels ---------------------------------------------------------------

local Channel = {}
Channel.__index = Channel

local function new_channel()
  return setmetatable({ items = {}, head = 1, tail = 0 }, Channel)
end

function Channel:put(item)
  local t = self.tail + 1
  self.items[t] = item
  self.tail = t
end

function Channel:take()
  local h = self.head
  if h > self.tail then return nil end
  local item = self.items[h]
  self.items[h] = nil
  self.head = h + 1
  return item
end

function Channel:size() return self.tail - self.head + 1 end

-- A channel's writing end: batches records (a batch is { n = count,
-- ts = timestamps, record1, record2, ... }) and puts events after the
-- batch.
local function channel_writer(ch)
  local buf, ts, n = { ts = {} }, nil, 0
  ts = buf.ts
  local w = { channel = ch }
  local function flush()
    buf.n = n
    ch:put(buf)
    buf, n = { ts = {} }, 0
    ts = buf.ts
  end
  function w.push(record, t)
    n = n + 1
    buf[n], ts[n] = record, t
    if n >= M.BATCH_RECORDS then flush() end
  end
  function w.event(ev)
    if n > 0 then flush() end
    ch:put(ev)
  end
  function w.watermark(wm, status)
    w.event({ watermark = wm, status = status })
  end
  return w
end

local function fan_out(targets)
  if #targets == 0 then return function() end end
  if #targets == 1 then return targets[1] end
  return function(a, b, c)
    for i = 1, #targets do targets[i](a, b, c) end
  end
end

-- -- Job ---------------------------------------------------------------------

local Job = {}
Job.__index = Job

local function new_job(p)
  local o = p.options
  local job = setmetatable({
    pipeline = p, options = o, name = o.name,
    job_dir = o.checkpoint_dir .. "/" .. o.name,
    interval_ms = o.checkpoint_interval,
    insts = {}, sinks = {}, ended = 0, next_id = 1,
    completed = 0, last_completed = nil,
    stats = { checkpoints = 0, late_records = 0 },
  }, Job)
  job.plan = plan.plan(p)
  job.tasks = job.plan.tasks
  return job
end

-- Instantiates every operator, wiring each to its consumers: direct calls
-- within a task, channel writers across tasks.
function Job:build()
  local writers = {}
  self.periodic = {}
  for i, edge in ipairs(self.plan.edges) do
    writers[i] = channel_writer(new_channel())
    local outs = edge.from.task.outputs or {}
    edge.from.task.outputs = outs
    outs[#outs + 1] = writers[i]
  end
  local nodes = self.pipeline.nodes
  for id = #nodes, 1, -1 do
    local node = nodes[id]
    local targets, watermarks, sides = {}, {}, {}
    for _, c in ipairs(node.consumers) do
      local push, watermark
      if c.task == node.task then
        push, watermark = self.insts[c.id].push, self.insts[c.id].watermark
      else
        for i, edge in ipairs(self.plan.edges) do
          if edge.from == node and edge.to == c then
            push, watermark = writers[i].push, writers[i].watermark
          end
        end
      end
      if c.side then
        sides[c.side] = sides[c.side] or {}
        table.insert(sides[c.side], push)
      else
        targets[#targets + 1] = push
      end
      watermarks[#watermarks + 1] = watermark
    end
    for side, pushes in pairs(sides) do sides[side] = fan_out(pushes) end
    local env = { max_parallelism = self.options.max_parallelism,
      subtask = 0, emit_watermark = fan_out(watermarks), side = sides,
      stats = self.stats, now_ms = core.monotonic_ms, wall_ms = core.time_ms }
    local inst = factory(node.kind)(node, fan_out(targets), env)
    inst.node = node
    inst.watermark = inst.watermark or env.emit_watermark
    if inst.periodic then self.periodic[#self.periodic + 1] = inst end
    self.insts[id] = inst
    if inst.notify_complete then self.sinks[#self.sinks + 1] = inst end
  end
  for _, task in ipairs(self.tasks) do
    task.outputs = task.outputs or {}
    task.channels = {}
    for i, input in ipairs(task.inputs) do
      task.channels[i] = writers[input.edge].channel
    end
    if #task.inputs > 0 then
      task.handler = core.barrier_handler(#task.inputs, self.options.mode)
    end
    task.head_push = self.insts[task.head.id].push
    task.head_watermark = self.insts[task.head.id].watermark
    task.watermarks, task.idle = {}, {}
    for i = 1, #task.inputs do task.watermarks[i] = -math.huge end
    task.watermark = -math.huge
    task.acked = 0
  end
end

-- -- Checkpoints -------------------------------------------------------------

-- Runs the synchronous part of checkpoint id for every operator of task
-- (serialize its state), starts the asynchronous writes and acknowledges
-- to the coordinator once they are durable. Forwards the barrier unless
-- the task has ended.
function Job:checkpoint_task(task, id)
  if task.acked >= id then return end
  task.acked = id
  local pending = self.pending
  local files, writes, started = {}, 0, false
  local function done()
    if writes == 0 and started then self:ack(id, files) end
  end
  for _, node in ipairs(task.nodes) do
    local inst = self.insts[node.id]
    if inst.snapshot then
      local ok, state = pcall(inst.snapshot, id)
      if not ok then
        if errors.is(state) and state.kind == "unserializable" then
          error(errors.new(string.format(errors.messages.unserializable, id,
            errors.describe(node), errors.repr(state.key), state.path,
            state.type)), 0)
        end
        error(state, 0)
      end
      local name = node.uid .. "-0.snap"
      local bytes = checkpoint.encode({ uid = node.uid, kind = node.kind,
        subtask = 0, state = state })
      writes = writes + 1
      local ok2, err = core.snapshot_write_async(pending.path .. "/" .. name,
        bytes, guard(function(werr, size_bytes, checksum)
          if self.pending ~= pending then return end
          if werr then
            error(string.format("checkpoint %d failed: cannot write %s/%s: %s",
              id, pending.path, name, werr), 0)
          end
          files[#files + 1] = { name = name, uid = node.uid, subtask = 0,
            size_bytes = size_bytes, checksum = checksum }
          writes = writes - 1
          done()
        end))
      if not ok2 then
        error(string.format("checkpoint %d failed: cannot write %s: %s", id,
          name, err), 0)
      end
    end
  end
  started = true
  done()
  if not task.ended then
    local barrier = { barrier = id }
    for _, w in ipairs(task.outputs) do w.event(barrier) end
  end
end

-- Triggers checkpoint n (the coordinator's timer, or the final one once
-- every input ended). At most one checkpoint is pending at a time.
function Job:trigger(final)
  if self.pending or self.failed or (self.ended == #self.tasks and not final)
  then
    return
  end
  local id = self.next_id
  self.next_id = id + 1
  local path = checkpoint.path(self.job_dir, id)
  local ok, err = core.mkdir(path)
  if not ok then
    error(string.format("checkpoint %d failed: cannot create %s: %s", id,
      path, err), 0)
  end
  self.pending = { id = id, path = path, start_ms = core.monotonic_ms(),
                   acks = 0, files = {}, final = final }
  for _, task in ipairs(self.tasks) do
    if task.source or task.ended then self:checkpoint_task(task, id) end
  end
end

-- A task acknowledged checkpoint id with the files it wrote.
function Job:ack(id, files)
  local pending = self.pending
  if not pending or pending.id ~= id then return end
  pending.acks = pending.acks + 1
  for _, f in ipairs(files) do pending.files[#pending.files + 1] = f end
  if pending.acks < #self.tasks then return end
  table.sort(pending.files, function(a, b) return a.name < b.name end)
  local operators_list = {}
  for _, node in ipairs(self.pipeline.nodes) do
    operators_list[#operators_list + 1] = { uid = node.uid, kind = node.kind,
      parallelism = 1 }
  end
  local duration_ms = core.monotonic_ms() - pending.start_ms
  checkpoint.write_manifest_async(pending.path, {
    job = self.name, id = id, time_ms = core.time_ms(),
    duration_ms = duration_ms, final = pending.final or false,
    max_parallelism = self.options.max_parallelism, mode = self.options.mode,
    operators = operators_list, files = pending.files,
  }, guard(function(err)
    if self.pending ~= pending then return end
    if err then
      error(string.format("checkpoint %d failed: cannot write its manifest "
        .. "in %s: %s", id, pending.path, err), 0)
    end
    self:complete(pending)
  end))
end

-- The manifest of a checkpoint is durable: the checkpoint exists.
function Job:complete(pending)
  self.pending = nil
  self.last_completed = pending.id
  self.stats.checkpoints = self.stats.checkpoints + 1
  for _, sink in ipairs(self.sinks) do sink.notify_complete(pending.id) end
  checkpoint.apply_retention(self.job_dir, self.options.retain, pending.id)
  if pending.final then self:stop() else self:maybe_finish() end
end

-- -- Running -----------------------------------------------------------------

function Job:end_task(task)
  task.ended = true
  -- Bounded input ends with the maximal watermark: every pending window
  -- and event-time timer fires.
  task.head_watermark(math.huge)
  for _, node in ipairs(task.nodes) do
    local inst = self.insts[node.id]
    if inst.finish then inst.finish() end
  end
  for _, w in ipairs(task.outputs) do w.event(END) end
  self.ended = self.ended + 1
  -- A checkpoint whose barrier can no longer reach this task takes its
  -- (now final) state directly.
  if self.pending and not self.pending.final then
    self:checkpoint_task(task, self.pending.id)
  end
end

local function backpressured(task)
  for _, w in ipairs(task.outputs) do
    if w.channel:size() >= M.CHANNEL_BATCHES then return true end
  end
  return false
end

function Job:step_source(task)
  if backpressured(task) then return end
  if self.insts[task.source.id].produce(M.SOURCE_RECORDS) then
    self:end_task(task)
  end
end

function Job:step_channels(task)
  local handler, push = task.handler, task.head_push
  for i, ch in ipairs(task.channels) do
    for _ = 1, M.CONSUME_BATCHES do
      if handler:is_blocked(i) or backpressured(task) then break end
      local item = ch:take()
      if item == nil then break end
      if item.barrier then
        local r = handler:on_barrier(i, item.barrier)
        task.aligning = item.barrier
        if r == "aligned" or (r == "aborted" and not handler:pending()) then
          self:checkpoint_task(task, item.barrier)
        end
      elseif item == END then
        if handler:on_end_of_input(i) == "aligned" then
          self:checkpoint_task(task, task.aligning)
        end
        if handler:all_ended() then
          self:end_task(task)
          return
        end
      elseif item.watermark then
        self:input_watermark(task, i, item.watermark, item.status)
      else
        local ts = item.ts
        for j = 1, item.n do push(item[j], ts[j]) end
      end
    end
  end
end

-- A task's watermark is the minimum over its input channels, leaving out
-- channels marked idle; it only advances.
function Job:input_watermark(task, channel, w, status)
  if status == "idle" then
    task.idle[channel] = true
  elseif status == "active" then
    task.idle[channel] = nil
  else
    task.watermarks[channel] = w
  end
  local min
  for i, cw in ipairs(task.watermarks) do
    if not task.idle[i] and (min == nil or cw < min) then min = cw end
  end
  if min and min > task.watermark then
    task.watermark = min
    task.head_watermark(min)
  end
end

function Job:step()
  if #self.periodic > 0 then
    local now = core.monotonic_ms()
    for _, inst in ipairs(self.periodic) do inst.periodic(now) end
  end
  for _, task in ipairs(self.tasks) do
    if not task.ended then
      if task.source then self:step_source(task)
      else self:step_channels(task) end
    end
  end
  if self.ended == #self.tasks then
    self.idle:stop()
    self:maybe_finish()
  end
end

-- Once every task ended and no checkpoint is pending: take the final
-- checkpoint (its completion commits the sinks and stops the job), or,
-- with checkpoints off, commit the sinks now.
function Job:maybe_finish()
  if self.ended < #self.tasks or self.pending or self.stopped then return end
  if self.interval_ms > 0 then
    self:trigger(true)
  else
    for _, sink in ipairs(self.sinks) do sink.commit() end
    self:stop()
  end
end

function Job:stop()
  self.stopped = true
  if self.idle then self.idle:close() self.idle = nil end
  if self.timer then self.timer:close() self.timer = nil end
end

function Job:close_insts()
  for _, inst in pairs(self.insts) do
    if inst.close then inst.close() end
  end
end

-- -- Restore -----------------------------------------------------------------

local function restore_error(fmt, ...)
  error(string.format(fmt, ...), 0)
end

-- Loads the checkpoint to restore (options.restore is "latest" or a path)
-- and hands each operator its state. Returns the loaded checkpoint or nil.
function Job:restore()
  local what = self.options.restore
  if not what then return nil end
  local loaded, err
  if what == "latest" then
    loaded = checkpoint.find_latest(self.job_dir, warn)
    if not loaded then
      warn(string.format("no complete checkpoint in %s; starting from the "
        .. "beginning", self.job_dir))
      return nil
    end
  else
    loaded, err = checkpoint.load(what)
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
  local by_uid = {}
  for _, node in ipairs(self.pipeline.nodes) do by_uid[node.uid] = node end
  for uid in pairs(loaded.states) do
    if not by_uid[uid] or not self.insts[by_uid[uid].id].restore then
      restore_error("cannot restore %s: it holds state for operator '%s', "
        .. "which this job does not have", loaded.path, uid)
    end
  end
  for uid, subtasks in pairs(loaded.states) do
    self.insts[by_uid[uid].id].restore(subtasks[0].state)
  end
  return loaded
end

-- -- Entry point -------------------------------------------------------------

-- Checks the checkpoint directory and opens every source and sink, so a
-- missing input or an unwritable directory fails before any record.
function Job:open()
  if self.interval_ms > 0 then
    local ok, err = fsutil.mkdir_p(self.job_dir)
    if ok then ok, err = fsutil.check_writable(self.job_dir) end
    if not ok then error("checkpoint_dir: " .. err, 0) end
  end
  for _, inst in pairs(self.insts) do
    if inst.open then inst.open() end
  end
end

local function run_job(job)
  job:build()
  local restored = job:restore()
  job.next_id = checkpoint.next_id(job.job_dir)
  job:open()
  job.restored = restored
  if restored and restored.manifest.final then
    -- The job had finished; recovering the sinks committed its output.
    job.last_completed = restored.manifest.id
    return
  end
  job.idle = core.idle(guard(function() job:step() end))
  job.idle:start()
  if job.interval_ms > 0 then
    job.timer = core.timer(guard(function() job:trigger(false) end))
    job.timer:start(job.interval_ms, job.interval_ms)
  end
  core.run()
end

--- Runs a pipeline to completion in this process.
-- @param p Pipeline (weir.pipeline)
-- @return { name = job name, checkpoints = checkpoints completed by this
--   run, late_records = records windows found too late, last_checkpoint =
--   path|nil, restored_from = path|nil, duration_ms = wall time };
--   M.report(stats), if set, sees it too
-- Raises a one-line message on failure: a user function that threw (with
-- the operator, where the script defined it and the record), a checkpoint
-- that failed, a missing input, an unusable directory. Complete
-- checkpoints are left intact for `restore = "latest"`.
function M.run(p)
  local job = new_job(p)
  local start = core.monotonic_ms()
  local ok, err = xpcall(run_job, errors.handler, job)
  job.failed = not ok
  job:stop()
  job:close_insts()
  core.drain()
  if not ok then
    if os.getenv("WEIR_DEBUG") and err.traceback then
      io.stderr:write(err.traceback, "\n")
    end
    error(tostring(err.message), 0)
  end
  local stats = { name = job.name, checkpoints = job.stats.checkpoints,
    late_records = job.stats.late_records,
    last_checkpoint = job.last_completed and
      checkpoint.path(job.job_dir, job.last_completed),
    restored_from = job.restored and job.restored.path,
    duration_ms = core.monotonic_ms() - start }
  if M.report then M.report(stats) end
  return stats
end

return M
