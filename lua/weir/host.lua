--- The host of tasks (Flink's TaskExecutor with its StreamTasks): builds
-- the operator chains of the tasks assigned to it, wires them to their
-- channels, runs each task's steps in a coroutine on the libuv loop
-- (input loop, barrier alignment, watermarks, the end of a bounded
-- input), and stops on one path.
--
-- A host runs the tasks of one process: all of them (weir.launch runs a
-- job in this process), or those of one worker process (weir.worker),
-- with channels to other workers over sockets (weir.transport). It
-- offers the checkpoint coordinator trigger(id, final, savepoint),
-- complete(id), abort(id), commit(), drain(), stop() and metrics(), and
-- reports through host.coord: ack(task_id, id, files), decline(id,
-- reason) and task_ended(task_id). Building the tasks is
-- weir.task_build; the task side of checkpoints is weir.task_checkpoint;
-- checkpoints in the middle of a source's record, weir.replay.
local core = require "weir.core"
local channel = require "weir.channel"
local errors = require "weir.errors"
local fsutil = require "weir.fsutil"
local replay = require "weir.replay"
local state_backend = require "weir.state_backend"
local task_build = require "weir.task_build"
local task_checkpoint = require "weir.task_checkpoint"

local M = {}

M.SOURCE_RECORDS = 1024    -- records a source emits per loop turn
M.CONSUME_BATCHES = 8      -- batches a task takes per channel per loop turn

local END = { end_of_input = true }  -- in-band end-of-input event

local guard = errors.guard
local yield = coroutine.yield
local BLOCKED, PAUSED = channel.BLOCKED, replay.PAUSED
-- What a task's coroutine yields when its step is done (see run_task).
local STEP_DONE = {}
-- How long a host with periodic work (processing-time timers, idle
-- sources) sleeps when nothing else wakes it (ms).
local PERIODIC_MS = 1

local Host = {}
Host.__index = Host
task_build.install(Host)

--- Creates the host of worker `worker` (0-based) of `workers`, running
-- every task whose subtask index modulo workers is worker.
-- @param job a prepared job (weir.launch.prepare): options, plan, job_dir
function M.new(job, worker, workers)
  local host = setmetatable({ job = job, options = job.options,
    plan = job.plan, worker = worker, workers = workers, tasks = {},
    sinks = {}, periodic = {}, channels = {}, ended = 0,
    stats = { late_records = 0, failed_records = 0 },
    -- Wall-clock ms at the start of this step: the processing time state
    -- time-to-live counts in (read per record without a call).
    clock = { now = core.time_ms() } }, Host)
  host.checkpoints = task_checkpoint.new(host)
  host.state_backend = state_backend.open(job.options)
  return host
end

--- The worker that runs subtask `subtask` of any chain.
function Host:worker_of(subtask)
  return subtask % self.workers
end

--- Hands each operator of this host its state from a loaded checkpoint
-- (weir.checkpoint_storage.load); nil restores nothing. Raises when the
-- checkpoint holds state for an operator that keeps none.
function Host:restore(loaded)
  if not loaded then return end
  for _, task in ipairs(self.tasks) do
    for _, node in ipairs(task.chain.nodes) do
      local subtasks = loaded.states[node.uid]
      local inst = task.insts[node.id]
      if subtasks then
        if not inst.restore then
          error(string.format("cannot restore %s: operator '%s' has no state "
            .. "to restore", loaded.path, node.uid), 0)
        end
        -- Every old subtask's state, in order: the operator takes its share
        -- (the same subtask's at the same parallelism).
        local olds = {}
        for subtask, s in pairs(subtasks) do
          olds[#olds + 1] = { subtask = subtask, state = s.state }
        end
        table.sort(olds, function(a, b) return a.subtask < b.subtask end)
        inst.restore(olds)
      end
    end
  end
end

--- Checks the checkpoint directory and opens every source and sink, so a
-- missing input or an unwritable directory fails before any record.
function Host:open()
  if self.options.checkpoint_interval > 0 then
    local ok, err = fsutil.mkdir_p(self.job.job_dir)
    if ok then ok, err = fsutil.check_writable(self.job.job_dir) end
    if not ok then error("checkpoint_dir: " .. err, 0) end
  end
  for _, task in ipairs(self.tasks) do
    for _, node in ipairs(task.chain.nodes) do
      local inst = task.insts[node.id]
      if inst.open then inst.open() end
    end
  end
end

-- -- Checkpoints (weir.task_checkpoint) --------------------------------------

--- Checkpoint id was triggered (final: the job's last one; savepoint:
-- the directory a savepoint, full and portable, goes to, or nil).
function Host:trigger(id, final, savepoint)
  self.checkpoints:trigger(id, final, savepoint)
  self:wake()
end

--- Checkpoint id was aborted.
function Host:abort(id) self.checkpoints:abort(id) end

--- Checkpoint id is complete.
function Host:complete(id) self.checkpoints:complete(id) end

--- Checkpoints are off and the job ended: sinks commit everything.
function Host:commit() self.checkpoints:commit() end

--- The job is cancelled with drain (Flink's stop --drain): a source that
-- can drain (its instance has drain(), e.g. read_socket's write-ahead
-- log) takes no more input and ends once what it holds went out; every
-- other source ends at its next step. The job then finishes as a bounded
-- one does, with a final checkpoint.
function Host:drain()
  for _, task in ipairs(self.tasks) do
    if task.source and not task.ended then
      local head = task.insts[task.chain.head.id]
      if head.drain then head.drain() else task.draining = true end
    end
  end
  self:wake()
end

-- -- Running -----------------------------------------------------------------

function Host:end_task(task)
  task.ended = true
  -- Until its final output went out (it may wait for room in between), a
  -- checkpoint triggered meanwhile waits for it (see below).
  task.ending = true
  -- Bounded input ends with the maximal watermark: every pending window
  -- and event-time timer fires.
  task.head_watermark(math.huge)
  for _, node in ipairs(task.chain.nodes) do
    local inst = task.insts[node.id]
    if inst.finish then inst.finish() end
  end
  for _, w in ipairs(task.outputs) do w.event(END) end
  task.ending = nil
  -- A checkpoint whose barrier can no longer reach this task takes its
  -- (now final) state directly.
  local pending = self.checkpoints:pending()
  if pending then self.checkpoints:snapshot_task(task, pending) end
  self.ended = self.ended + 1
  self.coord:task_ended(task.id)
end

-- Whether a consumer of the task has no room; the time spent so counts as
-- backpressured.
local function backpressured(task)
  for _, w in ipairs(task.outputs) do
    if w.blocked() then
      if not task.blocked_since then
        task.blocked_since = core.monotonic_ms()
      end
      return true
    end
  end
  if task.blocked_since then
    task.backpressured_ms = task.backpressured_ms + core.monotonic_ms()
      - task.blocked_since
    task.blocked_since = nil
  end
  return false
end

-- The direct call into channel c of task (see weir.channel.local_writer):
-- refused while the channel is held by barrier alignment, the task has
-- ended or its consumers have no room. keyed: push takes the key the
-- router computed. While the call runs the consumer counts as entered: a
-- step of the producer that waits for room mid-call leaves it entered,
-- and neither its own steps nor other direct calls run its operators
-- until that call is done.
function Host:direct_push(task, c, push, keyed)
  local blocked, outputs = task.blocked, task.outputs
  return function(record, ts, k)
    if task.ended or blocked[c] or task.suspended or task.entered > 0
        or (#outputs > 0 and backpressured(task)) then
      return false
    end
    task.records_in = task.records_in + 1
    task.entered = 1
    if keyed then push(record, ts, k) else push(record, ts) end
    task.entered = 0
    return true
  end
end

-- Copies which input channels barrier alignment holds (they change only
-- when a barrier or the end of input is taken) for direct_push.
local function update_blocked(task)
  local handler, blocked = task.handler, task.blocked
  for c = 1, #task.channels do blocked[c] = handler:is_blocked(c) end
end

-- At the end of a task's step, watermarks that wait for a batch go.
local function release_watermarks(task)
  local outputs = task.outputs
  for i = 1, #outputs do outputs[i].release() end
end

-- Each step returns whether it made progress.
function Host:step_source(task)
  if task.draining then
    self:end_task(task)
    return true
  end
  if backpressured(task) then return false end
  replay.start_step(task)
  local ended, count, waiting =
    task.insts[task.chain.head.id].produce(M.SOURCE_RECORDS)
  task.records_in = task.records_in + count
  if ended then
    self:end_task(task)
  else
    release_watermarks(task)
  end
  return not waiting
end

function Host:step_channels(task)
  local progress = self:take_channels(task)
  if progress and not task.ended then release_watermarks(task) end
  return progress
end

-- Takes an event from input channel i of task: a barrier (aligned per
-- the checkpointing mode, engine/barrier.c), a watermark or the end of
-- input. Returns true when the task ended.
function Host:take_event(task, i, item)
  local handler = task.handler
  if item.barrier then
    local r = handler:on_barrier(i, item.barrier)
    update_blocked(task)
    task.aligning = item.barrier
    if r == "aligned" or (r == "aborted" and not handler:pending()) then
      task.alignment_ms = handler:last_alignment_ms()
      task.alignment_id = item.barrier
      self.checkpoints:snapshot_task(task, item.barrier)
    end
  elseif item.watermark then
    self:input_watermark(task, i, item.watermark, item.status)
  elseif item.end_of_input then
    local r = handler:on_end_of_input(i)
    update_blocked(task)
    if r == "aligned" then
      self.checkpoints:snapshot_task(task, task.aligning)
    end
    if handler:all_ended() then
      self:end_task(task)
      return true
    end
  end
  return false
end

function Host:take_channels(task)
  local handler, pushes = task.handler, task.channel_push
  local progress = false
  for i, ch in ipairs(task.channels) do
    local push = pushes[i]
    for _ = 1, M.CONSUME_BATCHES do
      if handler:is_blocked(i) or backpressured(task) then break end
      local item = ch:take()
      if item == nil then break end
      progress = true
      if item.n then
        task.records_in = task.records_in + item.n
        local ts = item.ts
        for j = 1, item.n do push(item[j], ts[j]) end
      elseif self:take_event(task, i, item) then
        return true
      end
    end
  end
  return progress
end

local all_maximal

-- A task's watermark is the minimum over its input channels, leaving out
-- channels marked idle; it only advances.
function Host:input_watermark(task, c, w, status)
  if status == "idle" then
    task.idle[c] = true
  elseif status == "active" then
    task.idle[c] = nil
  else
    task.watermarks[c] = w
  end
  local min
  for i, cw in ipairs(task.watermarks) do
    if not task.idle[i] and (min == nil or cw < min) then min = cw end
  end
  if min and min > task.watermark then
    task.watermark = min
    if min == math.huge and all_maximal(task.watermarks) then
      return self:fire_final(task)
    end
    task.head_watermark(min)
  end
end

-- Whether every input channel (idle ones too) delivered the maximal
-- watermark.
function all_maximal(watermarks)
  for _, w in ipairs(watermarks) do
    if w ~= math.huge then return false end
  end
  return true
end

-- Every input of task delivered the maximal watermark, which a channel
-- carries just before its end of input (weir.channel): nothing but the
-- ends can come any more, no barrier, so the timers it fires now are
-- final ones, and a checkpoint
-- triggered meanwhile takes the task's snapshot between two of them, as
-- end_task's firing does, or once they fired.
function Host:fire_final(task)
  task.ending = true
  task.head_watermark(math.huge)
  task.ending = nil
  local pending = self.checkpoints:pending()
  if pending then self.checkpoints:snapshot_task(task, pending) end
end

-- The body of a task's coroutine: one step per resume, yielding
-- STEP_DONE with xpcall's outcome after each, or BLOCKED from inside a
-- step when an output has no room (see weir.channel), or PAUSED when a
-- source's step passed on its budget (see weir.replay).
local function task_body(host, task)
  local step = task.source and Host.step_source or Host.step_channels
  while true do
    yield(STEP_DONE, xpcall(step, errors.handler, host, task))
  end
end

--- Runs one step of task in its coroutine, or resumes the step it left
-- when an output had no room, once every output has room again. Returns
-- whether the task made progress; raises the step's error. A task that
-- a direct call from another task's step entered (see direct_push) waits
-- until that step went on.
function Host:run_task(task)
  if task.entered > 0 then return false end
  if task.suspended and backpressured(task) then return false end
  local co = task.co
  if not co then
    co = coroutine.create(task_body)
    task.co = co
    channel.run_in(co, task)
  end
  local ok, what, sok, progress = coroutine.resume(co, self, task)
  if not ok then error(what, 0) end
  if what == BLOCKED or what == PAUSED then
    task.suspended = true
    return what == PAUSED
  end
  task.suspended = false
  if not sok then error(progress, 0) end
  return progress
end

--- One turn of the loop: periodic work (timers), then a step of every
-- task that has not ended (or waits for room while its end goes out).
function Host:step()
  self.clock.now = core.time_ms()
  if #self.periodic > 0 then
    local now = core.monotonic_ms()
    for _, inst in ipairs(self.periodic) do inst.periodic(now) end
  end
  local progress = false
  for _, task in ipairs(self.tasks) do
    if not task.ended or task.suspended then
      progress = self:run_task(task) or progress
    end
  end
  -- Nothing to do until input, credit or a trigger arrives (see wake), or
  -- ever again: the loop sleeps instead of spinning. Operators with
  -- periodic work (processing-time timers, idle sources) wake it again
  -- after PERIODIC_MS too.
  if self.idle and (self.ended == #self.tasks or not progress) then
    self.idle:stop()
    self.sleeping = true
    if self.ended < #self.tasks and #self.periodic > 0 then
      self.tick:start(PERIODIC_MS, 0)
    end
  end
end

--- Per-task metrics: { { task, operator (uid of the chain's head),
-- subtask, source, records_in, records_out, backpressured_ms (total),
-- alignment_ms (last alignment), watermark_ms (the task's output
-- watermark, event time in ms; its input watermark when it has no
-- outputs; nil before the first or once it is final), bytes_read and
-- bytes_total (of a bounded file input: the bytes of the source subtask's
-- share read and in all; nil for other tasks and sources), sample_ms
-- (when it was taken, core.monotonic_ms) } }.
function Host:metrics()
  local out, now = {}, core.monotonic_ms()
  for _, task in ipairs(self.tasks) do
    local records_out, wm = 0, nil
    for _, w in ipairs(task.outputs) do
      records_out = records_out + w.records
      if w.watermark_ms then wm = math.min(wm or math.huge, w.watermark_ms) end
    end
    if #task.outputs == 0 then wm = task.watermark end
    local head, bytes_read, bytes_total = task.insts[task.chain.head.id]
    if task.source and head.progress then
      bytes_read, bytes_total = head.progress()
    end
    backpressured(task)
    out[#out + 1] = { task = task.id, operator = task.chain.head.uid,
      subtask = task.subtask, source = task.source,
      records_in = task.records_in,
      records_out = records_out, backpressured_ms = task.backpressured_ms,
      alignment_ms = task.alignment_ms,
      watermark_ms = wm and wm > -math.huge and wm < math.huge and wm or nil,
      bytes_read = bytes_read, bytes_total = bytes_total, sample_ms = now }
  end
  return out
end

--- Starts running the tasks on the loop, with LuaJIT's garbage collector
-- pause at the job's gc_pause (restored by Host:stop). LuaJIT's default,
-- 200, starts a collection cycle whenever the heap has doubled; a job
-- allocates records fast over a live state that changes slowly, so each
-- cycle marks the same state again after little work. Waiting until the
-- heap is 4x (400) marks a third as often, for up to twice the memory. It
-- also makes rarer what LuaJIT does at the end of a cycle when the strings
-- alive are a quarter of its string table or fewer: halve the table, to
-- double it again during the next cycle, rehashing every string both
-- times (a word-count worker did so at every cycle; BENCHMARKS.md). On
-- the RocksDB state backend, whose cache is a memory budget, the pause is
-- at most 200: up to four times the cache would not be a budget.
function Host:start()
  local pause = self.options.gc_pause
  if self.state_backend.kind == "rocksdb" then pause = math.min(pause, 200) end
  self.gc_pause = collectgarbage("setpause", pause)
  self.idle = core.idle(guard(function() self:step() end))
  self.idle:start()
  self.tick = core.timer(guard(function() self:wake() end))
end

--- Wakes the host after its idle handle stopped (new input arrived).
function Host:wake()
  if self.sleeping and self.idle and self.ended < #self.tasks then
    self.sleeping = false
    self.idle:start()
  end
end

--- Stops running the tasks: no step runs after, operators with
-- connections (inst.stop) close them once what is due went out, LuaJIT's
-- collector pause is what it was before Host:start, and on_stop (if set)
-- is called. Safe to call more than once.
function Host:stop()
  self.stopped = true
  if self.idle then self.idle:close() self.idle = nil end
  if self.tick then self.tick:close() self.tick = nil end
  for _, task in ipairs(self.tasks) do
    for _, inst in pairs(task.insts) do
      if inst.stop then inst.stop() end
    end
  end
  if self.gc_pause then
    collectgarbage("setpause", self.gc_pause)
    self.gc_pause = nil
  end
  local on_stop = self.on_stop
  self.on_stop = nil
  if on_stop then on_stop() end
end

--- Closes every operator's files and the state backend.
function Host:close()
  for _, task in ipairs(self.tasks) do
    for _, inst in pairs(task.insts) do
      if inst.close then inst.close() end
    end
  end
  self.state_backend:close()
end

return M
