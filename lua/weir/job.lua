--- Running a job: the host of tasks on the libuv loop, its channels and
-- exchanges, checkpoint barriers, restore, and the end of a bounded job.
--
-- Asynchronous barrier snapshotting (Carbone et al. 2015, "Lightweight
-- Asynchronous Snapshots for Distributed Dataflows"): the coordinator
-- (weir.coordinator) triggers checkpoint n; each source task records its
-- position, snapshots its chain and puts barrier n into its output
-- channels; a task with several input channels aligns barrier n
-- (engine/barrier.c) before it snapshots and forwards it. Snapshots are
-- serialized on the loop thread and compressed and written on the thread
-- pool; a task acknowledges once its files are durable.
--
-- A host runs the tasks assigned to it: all of them in this process
-- (p:run() from Lua, parallelism 1 by default), or those of one worker
-- process (weir.cluster) with channels to other workers over sockets.
local core = require "weir.core"
local checkpoint = require "weir.checkpoint"
local coordinator = require "weir.coordinator"
local errors = require "weir.errors"
local failpoint = require "weir.failpoint"
local fsutil = require "weir.fsutil"
local key = require "weir.key"
local kinds = require "weir.kinds"
local pipeline = require "weir.pipeline"
local plan = require "weir.plan"
local restart = require "weir.restart"
local operators = require "weir.operators"
local sources = require "weir.sources"
local sinks = require "weir.sinks"
local windows = require "weir.windows"

local M = {}

M.BATCH_RECORDS = 2048     -- records per channel batch
M.SOURCE_RECORDS = 1024    -- records a source emits per loop turn
M.STEP_RECORDS = 16384     -- records a source's chain passes on per step
M.CHANNEL_BATCHES = 16     -- batches queued on a channel before backpressure
M.CONSUME_BATCHES = 8      -- batches a task takes per channel per loop turn

local END = { end_of_input = true }  -- in-band end-of-input event

local guard = errors.guard
local clear = require "table.clear"
local isyieldable, yield = coroutine.isyieldable, coroutine.yield
local running = coroutine.running

-- What a task's coroutine yields when an output has no room (see
-- channel_writer), when a source's step passed on STEP_RECORDS records
-- (see Host:source_emit) and when its step is done (see Host:run_task).
local BLOCKED, PAUSED, STEP_DONE = {}, {}, {}
-- Operators a source's chain may run again for the same input with the
-- same outputs (see Host:replay_boundary).
local REPLAYABLE = kinds.with("replayable")
-- The coroutines that run tasks' steps -> their task: only they yield on
-- backpressure (a job may run inside some other coroutine, a test
-- runner's say).
local task_threads = setmetatable({}, { __mode = "k" })

-- Whether the running code may wait for room by yielding: in a task's
-- step, outside a record that a stateful operator of a source's chain is
-- passing on (task.hold, see Host:replay_boundary).
local function may_wait()
  local task = task_threads[running()]
  return task ~= nil and task.hold == 0 and isyieldable()
end

local function factory(kind)
  return operators[kind] or sources[kind] or sinks[kind] or windows[kind]
    or error("no runtime for operator kind " .. kind)
end

-- -- Channels ---------------------------------------------------------------

local Channel = {}
Channel.__index = Channel

--- A channel's queue on the consuming side: record batches (a batch is
-- { n = count, ts = timestamps, record1, ... }) and events.
-- on_take, if set, runs for every batch taken (remote channels return a
-- credit to the sender then).
function M.new_channel()
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
  if self.on_take and item.n then self.on_take() end
  return item
end

function Channel:size() return self.tail - self.head + 1 end

--- A channel's writing end: batches records and hands each full batch (and
-- each event, after the batch before it) to deliver(item), which returns
-- true if it is done with the batch (it was sent), so the table is reused.
-- blocked() tells whether the consumer has room. Keys do not travel: the
-- consumer of a hash exchange computes them again, which costs less than
-- shipping them. A watermark that comes while a batch is filling waits
-- for the batch to fill or for the task's step to end (release), and a
-- later one replaces it: records that precede a watermark are never late
-- by it, and per-record watermarks do not cut batches down to one
-- record.
-- direct(record, ts, key), if given, may hand a record straight to the
-- consumer (returning true) when no batch is filling, so order is kept.
-- Backpressure holds per batch: when a task's step runs in its coroutine
-- (Host:run_task) and the consumer has no room after a batch went out,
-- the writer yields until it has, so a record that fans out into many
-- (a flat_map of a huge line) waits mid-record instead of queueing its
-- whole fan-out in memory. Where the step cannot yield (a user function
-- that emits from inside a C call, such as a string.gsub callback) the
-- batch is queued as before.
function M.channel_writer(deliver, blocked, direct)
  local buf, ts, n, pending_wm
  local function reset()
    buf, n = { ts = {} }, 0
    ts = buf.ts
  end
  reset()
  local w = { blocked = blocked, records = 0 }
  local function flush()
    buf.n = n
    w.records = w.records + n
    if deliver(buf) then
      clear(ts)
      clear(buf)
      buf.ts, n = ts, 0
    else
      reset()
    end
    if pending_wm then
      local wm = pending_wm
      pending_wm = nil
      deliver({ watermark = wm })
    end
    while blocked() and may_wait() do yield(BLOCKED) end
  end
  function w.push(record, t, k)
    if n == 0 and direct ~= nil and direct(record, t, k) then
      w.records = w.records + 1
      return
    end
    n = n + 1
    buf[n], ts[n] = record, t
    if n >= M.BATCH_RECORDS then flush() end
  end
  function w.event(ev)
    if n > 0 then flush() end
    deliver(ev)
    -- After the end of input nothing follows on the channel.
    if ev.end_of_input then w.closed = true end
  end
  function w.watermark(wm, status)
    if n > 0 and not status then
      pending_wm = wm
    else
      w.event({ watermark = wm, status = status })
    end
  end
  --- Sends a watermark waiting for its batch, with the batch so far.
  function w.release()
    if pending_wm then flush() end
  end
  return w
end

-- A channel within this process. While it is empty, a record goes to the
-- consumer by a direct call (ch.direct, set by the consumer's task) rather
-- than through a batch: no batch to build and take apart, and the key the
-- router computed is reused.
local function local_writer(ch)
  return M.channel_writer(function(item) ch:put(item) end,
    function() return ch:size() >= M.CHANNEL_BATCHES end,
    function(record, t, k)
      local direct = ch.direct
      return direct ~= nil and ch.head > ch.tail and direct(record, t, k)
    end)
end

local function fan_out(targets)
  if #targets == 0 then return function() end end
  if #targets == 1 then return targets[1] end
  return function(a, b, c)
    for i = 1, #targets do targets[i](a, b, c) end
  end
end

--- The id of the channel of edge from producer subtask i to consumer
-- subtask j: the same number in every process of a job.
function M.channel_id(edge, i, j)
  return (edge.id * 65536 + i) * 65536 + j
end

-- -- Host --------------------------------------------------------------------

local Host = {}
Host.__index = Host

--- Creates the host of worker `worker` (0-based) of `workers`, running
-- every task whose subtask index modulo workers is worker.
function M.new_host(job, worker, workers)
  return setmetatable({ job = job, options = job.options, plan = job.plan,
    worker = worker, workers = workers, tasks = {}, sinks = {},
    periodic = {}, channels = {}, aborted = {}, landed = {}, writing = 0,
    stats = { late_records = 0 } }, Host)
end

--- The worker that runs subtask `subtask` of any chain.
function Host:worker_of(subtask)
  return subtask % self.workers
end

-- The writer of channel cid to consumer subtask j: in memory when the
-- consumer runs here, else over the network (self.remote_writer).
function Host:writer(edge, i, j)
  local cid = M.channel_id(edge, i, j)
  if self:worker_of(j) == self.worker then
    self.channels[cid] = self.channels[cid] or M.new_channel()
    return local_writer(self.channels[cid])
  end
  return self.remote_writer(cid, self:worker_of(j))
end

-- Routes records of `edge` leaving producer subtask i to the consumers'
-- writers; returns push, watermark and the writers.
function Host:router(edge, i)
  local p = edge.to.parallelism
  local ws = {}
  if edge.kind == "forward" then
    ws[1] = self:writer(edge, i, i)
    return ws[1].push, ws[1].watermark, ws
  end
  for j = 0, p - 1 do ws[j + 1] = self:writer(edge, i, j) end
  local function watermark(w, status)
    for _, wr in ipairs(ws) do wr.watermark(w, status) end
  end
  if edge.kind == "rebalance" then
    local next_j = i % p
    return function(record, ts)
      next_j = next_j + 1
      if next_j > p then next_j = 1 end
      ws[next_j].push(record, ts)
    end, watermark, ws
  end
  -- Hash: the key group of the key picks the subtask that owns it. String
  -- keys have theirs computed each time (cheaper than looking them up in a
  -- table as large as the key space), except in a run of equal keys; other
  -- scalar keys remember their subtask.
  local maxp = self.options.max_parallelism
  local owner = {}  -- key group + 1 -> push of the subtask owning it
  for kg = 0, maxp - 1 do
    owner[kg + 1] = ws[core.key_group_subtask(maxp, p, kg) + 1].push
  end
  local string_key_group = key.string_key_group
  local cache, last_key, last_push = {}, nil, nil
  local node = edge.from
  return errors.register(function(record, ts, k)
    local push
    if k == last_key then
      push = last_push
    elseif type(k) == "string" then
      push = owner[string_key_group(k, #k, maxp) + 1]
      last_key, last_push = k, push
    else
      push = cache[k]
    end
    if push == nil then
      local kg, why = key.key_group(k, maxp)
      if not kg then errors.raise_invalid_key(k, why) end
      push = owner[kg + 1]
      if type(k) ~= "table" then cache[k] = push end
    end
    push(record, ts, k)
  end, node), watermark, ws
end

--- Instantiates the operators of this worker's tasks, wiring each to its
-- consumers: direct calls within a task, channels between tasks.
function Host:build()
  for _, t in ipairs(self.plan.tasks) do
    if self:worker_of(t.subtask) == self.worker then
      self:build_task(t)
    end
  end
  for _, task in ipairs(self.tasks) do self:connect_inputs(task) end
end

-- -- Checkpoints in the middle of a record --------------------------------
--
-- A source's record may fan out into many (a flat_map of a huge line).
-- When the source's task waits mid-record for room and a checkpoint is
-- triggered, the barrier goes out at once, after the records passed on so
-- far: the source's position is that of the record being emitted (every
-- source keeps it so until emit returns) and the checkpoint also records
-- how many records the chain passed on from it. A restore emits that
-- record again and drops as many of what the chain passes on. Only the
-- replay prefix -- the source and the operators right after it that give
-- the same outputs for the same input (REPLAYABLE) -- runs again; records
-- are counted and dropped where they leave it, so no stateful operator
-- and no sink sees a record twice. (Flink instead lets a barrier wait for
-- the whole record; this keeps checkpoints going whatever the fan-out.)

-- The operators of a source's chain that form its replay prefix: { [node]
-- = true }.
local function replay_prefix(chain)
  local prefix = { [chain.head] = true }
  for k = 2, #chain.nodes do
    local node = chain.nodes[k]
    if REPLAYABLE[node.kind] and prefix[node.inputs[1]] then
      prefix[node] = true
    end
  end
  return prefix
end

-- Wraps push, where records leave the replay prefix: counts them, and
-- drops those a restore asked to skip (see env.skip_outputs). A record
-- counted here must be wholly before or wholly after any barrier: when
-- push goes to a writer it is, as the writer waits only after handing
-- the record on; when it goes to a stateful operator of the same chain
-- (in_chain), which may pass the record to several writers, the task
-- must not wait until push returns (task.hold).
function Host:replay_boundary(task, push, in_chain)
  local counter = task.counter
  if not in_chain then
    return function(record, ts, k)
      local n = counter.pushed + 1
      counter.pushed = n
      if n > counter.skip_until then push(record, ts, k) end
    end
  end
  return function(record, ts, k)
    local n = counter.pushed + 1
    counter.pushed = n
    if n > counter.skip_until then
      task.hold = task.hold + 1
      push(record, ts, k)
      task.hold = task.hold - 1
    end
  end
end

-- The emit a source calls for each record: marks where the record's
-- outputs start, and ends the step's turn (yielding, to go on at the next
-- loop turn) once the chain passed on STEP_RECORDS records in it, so
-- timers and checkpoint triggers are not held up by a fan-out.
function Host:source_emit(task, out)
  local counter = task.counter
  return function(record)
    counter.mark, counter.in_record = counter.pushed, true
    out(record)
    if counter.pushed >= counter.budget and may_wait() then
      yield(PAUSED)
    end
    counter.in_record = false
  end
end

--- The number of records the replay prefix of a source task has passed on
-- from the record being emitted (the task waits inside the source's emit),
-- or still has to drop (a restore's skip not yet used up): what the
-- source's snapshot records beside its position. A task that waits
-- outside a record (its step's watermarks or its end going out) is past
-- the record as its source's position is.
function Host:replay_skip(task)
  local c = task.counter
  if not c then return 0 end
  if task.suspended and c.in_record then return c.pushed - c.mark end
  return math.max(0, c.skip_until - c.pushed)
end

function Host:build_task(t)
  local chain, i = t.chain, t.subtask
  local task = { id = t.id, chain = chain, subtask = i, insts = {},
    outputs = {}, acked = 0, records_in = 0, backpressured_ms = 0,
    alignment_ms = 0, entered = 0, suspended = false, hold = 0,
    source = pipeline.sources[chain.head.kind] or false }
  local nodes = chain.nodes
  -- A source's task counts the records that leave its replay prefix:
  -- pushed in all, the count when the current record began (mark), the
  -- count up to which a restore drops them (skip_until), and the count
  -- at which the step yields (budget).
  local prefix = task.source and replay_prefix(chain)
  if prefix then
    task.counter = { pushed = 0, skip_until = 0, mark = 0, budget = 0,
      in_record = false }
  end
  for n = #nodes, 1, -1 do
    local node = nodes[n]
    local targets, watermarks, sides = {}, {}, {}
    for _, c in ipairs(node.consumers) do
      local push, watermark
      if c.chain == chain then
        push, watermark = task.insts[c.id].push, task.insts[c.id].watermark
      else
        for _, edge in ipairs(c.chain.inputs) do
          if edge.from == node and edge.to == c then
            local ws
            push, watermark, ws = self:router(edge, i)
            for _, w in ipairs(ws) do task.outputs[#task.outputs + 1] = w end
          end
        end
      end
      if prefix and prefix[node] and not prefix[c] then
        push = self:replay_boundary(task, push, c.chain == chain)
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
      subtask = i, parallelism = chain.parallelism,
      emit_watermark = fan_out(watermarks), side = sides, stats = self.stats,
      now_ms = core.monotonic_ms, wall_ms = core.time_ms }
    local emit = fan_out(targets)
    if n == 1 and prefix then
      emit = self:source_emit(task, emit)
      env.skip_outputs = function(count)
        task.counter.skip_until = task.counter.pushed + count
      end
    end
    local inst = factory(node.kind)(node, emit, env)
    inst.node = node
    inst.watermark = inst.watermark or env.emit_watermark
    if inst.periodic then self.periodic[#self.periodic + 1] = inst end
    if inst.notify_complete then self.sinks[#self.sinks + 1] = inst end
    task.insts[node.id] = inst
  end
  -- What receives the records of each input edge: the head's push (an
  -- operator with several distinct inputs, like connect, has one per
  -- input); the key of a record from key_by is computed again here.
  local head = task.insts[chain.head.id]
  task.edge_push, task.edge_direct = {}, {}
  for _, edge in ipairs(chain.inputs) do
    local push = head.inputs and head.inputs[edge.input] or head.push
    -- A record handed over directly from key_by comes with its key.
    task.edge_direct[edge.id] = push
    if edge.from.kind == "key_by" then
      local keyed_push, keyfn = push, edge.from.fn
      push = errors.register(function(record, ts)
        keyed_push(record, ts, keyfn(record))
      end, edge.from)
    end
    task.edge_push[edge.id] = push
  end
  task.head_watermark = task.insts[chain.head.id].watermark
  self.tasks[#self.tasks + 1] = task
end

-- The input channels of a task: per input edge, one per producer subtask.
function Host:connect_inputs(task)
  task.channels, task.channel_push, task.blocked = {}, {}, {}
  for _, edge in ipairs(task.chain.inputs) do
    for _, i in ipairs(plan.producers(edge, task.subtask)) do
      local cid = M.channel_id(edge, i, task.subtask)
      local ch = self.channels[cid] or M.new_channel()
      self.channels[cid] = ch
      task.channels[#task.channels + 1] = ch
      task.channel_push[#task.channels] = task.edge_push[edge.id]
      if self:worker_of(i) == self.worker then
        ch.direct = self:direct_push(task, #task.channels,
          task.edge_direct[edge.id], edge.from.kind == "key_by")
      end
    end
  end
  local n = #task.channels
  if n > 0 then
    task.handler = core.barrier_handler(n, self.options.mode)
  end
  task.watermarks, task.idle = {}, {}
  for c = 1, n do task.watermarks[c] = -math.huge end
  task.watermark = -math.huge
end

--- Hands each operator of this host its state from a loaded checkpoint.
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

-- -- Checkpoints -------------------------------------------------------------

-- Runs the synchronous part of checkpoint id for every operator of task
-- (serialize its state), starts the asynchronous writes and acknowledges
-- to the coordinator once they are durable. A write that fails (a full
-- disk) declines the checkpoint (the coordinator decides whether the job
-- goes on). Forwards the barrier on every output the task's end of input
-- has not reached.
function Host:checkpoint_task(task, id)
  if task.acked >= id then return end
  task.acked = id
  local path = checkpoint.path(self.job.job_dir, id)
  local files, writes, started = {}, 0, false
  local function done()
    if writes == 0 and started and not self.stopped then
      self.coord:ack(task.id, id, files)
    end
  end
  local skip = self:replay_skip(task)
  for _, node in ipairs(task.chain.nodes) do
    local inst = task.insts[node.id]
    if inst.snapshot then
      local ok, state = pcall(inst.snapshot, id,
        node == task.chain.head and skip or nil)
      if not ok then
        if errors.is(state) and state.kind == "unserializable" then
          error(errors.new(string.format(errors.messages.unserializable, id,
            errors.describe(node), errors.repr(state.key), state.path,
            state.type)), 0)
        end
        error(state, 0)
      end
      local name = node.uid .. "-" .. task.subtask .. ".snap"
      local bytes = checkpoint.encode_file({ uid = node.uid,
        kind = node.kind, subtask = task.subtask, state = state })
      writes = writes + 1
      self.writing = self.writing + 1
      local ok2, err = core.snapshot_write_async(path .. "/" .. name, bytes,
        guard(function(werr, size_bytes, checksum)
          self.writing = self.writing - 1
          if self.writing == 0 and self.after_writes then
            local after = self.after_writes
            self.after_writes = nil
            after()
          end
          if not werr then werr = failpoint.hit("checkpoint.state_file") end
          -- A stopped host's checkpoints no longer matter; a file that
          -- lands after its checkpoint was aborted is removed with it.
          if self.stopped then return end
          if self.aborted[id] then
            if not werr then self:remove_landed(path, { name }) end
            return
          end
          if werr then
            return self.coord:decline(id, string.format("cannot write "
              .. "%s/%s: %s", path, name, werr))
          end
          local landed = self.landed[id] or {}
          self.landed[id] = landed
          landed[#landed + 1] = name
          files[#files + 1] = { name = name, uid = node.uid,
            subtask = task.subtask, size_bytes = size_bytes,
            checksum = checksum }
          writes = writes - 1
          done()
        end))
      if not ok2 then
        -- The barrier still goes on below: tasks downstream align on it.
        writes = writes - 1
        self.writing = self.writing - 1
        self.coord:decline(id, string.format("cannot write %s/%s: %s", path,
          name, err))
      end
    end
  end
  started = true
  done()
  -- Every output the end of input has not reached yet gets the barrier:
  -- a task that ends waits for room between its outputs' ends, and a
  -- barrier on a channel that ended would come after the end.
  local barrier = { barrier = id }
  for _, w in ipairs(task.outputs) do
    if not w.closed then w.event(barrier) end
  end
end

--- Checkpoint id was triggered: source tasks and tasks that ended take
-- their snapshot now (all tasks for the final checkpoint); the others
-- when barrier id reaches them.
function Host:trigger(id, final)
  self.pending_id = id
  for _, task in ipairs(self.tasks) do
    if final or task.source or task.ended then
      self:checkpoint_task(task, id)
    end
  end
end

-- Removes the state files names of an aborted checkpoint's directory
-- path that this host wrote, and the directory once it is empty (the
-- coordinator removed the rest; a file may land after it did).
function Host:remove_landed(path, names)
  for _, name in ipairs(names) do core.unlink(path .. "/" .. name) end
  core.rmdir(path)
end

--- Checkpoint id was aborted: its acknowledgements and write errors no
-- longer matter, and the files this host wrote for it are removed.
function Host:abort(id)
  self.aborted[id] = true
  if self.pending_id == id then self.pending_id = nil end
  if self.landed[id] then
    self:remove_landed(checkpoint.path(self.job.job_dir, id), self.landed[id])
    self.landed[id] = nil
  end
end

--- Checkpoint id is complete: sinks commit what they pre-committed.
function Host:complete(id)
  if self.pending_id == id then self.pending_id = nil end
  for done in pairs(self.landed) do
    if done <= id then self.landed[done] = nil end
  end
  for _, sink in ipairs(self.sinks) do sink.notify_complete(id) end
end

--- Checkpoints are off and the job ended: sinks commit everything.
function Host:commit()
  for _, sink in ipairs(self.sinks) do sink.commit() end
end

-- -- Running -----------------------------------------------------------------

function Host:end_task(task)
  task.ended = true
  -- Bounded input ends with the maximal watermark: every pending window
  -- and event-time timer fires.
  task.head_watermark(math.huge)
  for _, node in ipairs(task.chain.nodes) do
    local inst = task.insts[node.id]
    if inst.finish then inst.finish() end
  end
  for _, w in ipairs(task.outputs) do w.event(END) end
  -- A checkpoint whose barrier can no longer reach this task takes its
  -- (now final) state directly.
  if self.pending_id then self:checkpoint_task(task, self.pending_id) end
  self.ended = (self.ended or 0) + 1
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

-- The direct call into channel c of task (see local_writer): refused while
-- the channel is held by barrier alignment, the task has ended or its
-- consumers have no room. keyed: push takes the key the router computed.
-- While the call runs the consumer counts as entered: a step of the
-- producer that waits for room mid-call (see channel_writer) leaves it
-- entered, and neither its own steps nor other direct calls run its
-- operators until that call is done.
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
  if backpressured(task) then return false end
  local counter = task.counter
  counter.budget = counter.pushed + M.STEP_RECORDS
  local ended, count =
    task.insts[task.chain.head.id].produce(M.SOURCE_RECORDS)
  task.records_in = task.records_in + count
  if ended then
    self:end_task(task)
  else
    release_watermarks(task)
  end
  return true
end

function Host:step_channels(task)
  local progress = self:take_channels(task)
  if progress and not task.ended then release_watermarks(task) end
  return progress
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
      elseif item.barrier then
        local r = handler:on_barrier(i, item.barrier)
        update_blocked(task)
        task.aligning = item.barrier
        if r == "aligned" or (r == "aborted" and not handler:pending()) then
          task.alignment_ms = handler:last_alignment_ms()
          self:checkpoint_task(task, item.barrier)
        end
      elseif item.watermark then
        self:input_watermark(task, i, item.watermark, item.status)
      elseif item.end_of_input then
        local r = handler:on_end_of_input(i)
        update_blocked(task)
        if r == "aligned" then
          self:checkpoint_task(task, task.aligning)
        end
        if handler:all_ended() then
          self:end_task(task)
          return true
        end
      end
    end
  end
  return progress
end

-- A task's watermark is the minimum over its input channels, leaving out
-- channels marked idle; it only advances.
function Host:input_watermark(task, channel, w, status)
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

-- The body of a task's coroutine: one step per resume, yielding
-- STEP_DONE with xpcall's outcome after each, or BLOCKED from inside a
-- step when an output has no room (see channel_writer).
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
    task.co, task_threads[co] = co, task
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

function Host:step()
  if #self.periodic > 0 then
    local now = core.monotonic_ms()
    for _, inst in ipairs(self.periodic) do inst.periodic(now) end
  end
  local progress = false
  for _, task in ipairs(self.tasks) do
    -- A task that ends may wait for room while its end goes out.
    if not task.ended or task.suspended then
      progress = self:run_task(task) or progress
    end
  end
  -- Nothing to do until input, credit or a trigger arrives (see wake), or
  -- ever again: the loop sleeps instead of spinning. Operators with
  -- periodic work (timers) keep it turning.
  if self.idle and ((self.ended or 0) == #self.tasks
      or not progress and #self.periodic == 0) then
    self.idle:stop()
    self.sleeping = true
  end
end

--- Per-task metrics: { { task, operator (uid of the chain's head),
-- subtask, records_in, records_out, backpressured_ms (total),
-- alignment_ms (last alignment) } }.
function Host:metrics()
  local out = {}
  for _, task in ipairs(self.tasks) do
    local records_out = 0
    for _, w in ipairs(task.outputs) do
      records_out = records_out + w.records
    end
    backpressured(task)
    out[#out + 1] = { task = task.id, operator = task.chain.head.uid,
      subtask = task.subtask, source = task.source,
      records_in = task.records_in,
      records_out = records_out, backpressured_ms = task.backpressured_ms,
      alignment_ms = task.alignment_ms }
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
-- times (a word-count worker did so at every cycle; BENCHMARKS.md).
function Host:start()
  self.gc_pause = collectgarbage("setpause", self.options.gc_pause)
  self.idle = core.idle(guard(function() self:step() end))
  self.idle:start()
end

--- Wakes the host after its idle handle stopped (new input arrived).
function Host:wake()
  if self.sleeping and self.idle and (self.ended or 0) < #self.tasks then
    self.sleeping = false
    self.idle:start()
  end
end

--- Stops running the tasks: no step runs after, LuaJIT's collector pause
-- is what it was before Host:start, and on_stop (if set) is called.
-- Safe to call more than once.
function Host:stop()
  self.stopped = true
  if self.idle then self.idle:close() self.idle = nil end
  if self.gc_pause then
    collectgarbage("setpause", self.gc_pause)
    self.gc_pause = nil
  end
  local on_stop = self.on_stop
  self.on_stop = nil
  if on_stop then on_stop() end
end

--- Closes every operator's files.
function Host:close()
  for _, task in ipairs(self.tasks) do
    for _, inst in pairs(task.insts) do
      if inst.close then inst.close() end
    end
  end
end

-- -- Entry point -------------------------------------------------------------

--- Plans a pipeline into a job: { pipeline, options, name, job_dir, plan,
-- lineage }. lineage = { run_id, restarts, base }: run_id names this run
-- in the manifest of every checkpoint it takes, restarts counts its
-- restarts after failures, and base is the path of the checkpoint or
-- savepoint it started from (set by weir.coordinator), so a restart
-- fails over only onto checkpoints of this run's own lineage.
function M.prepare(p, parallelism)
  local o = p.options
  return { pipeline = p, options = o, name = o.name,
    job_dir = o.checkpoint_dir .. "/" .. o.name,
    plan = plan.plan(p, parallelism),
    lineage = { restarts = 0, run_id = string.format("%x-%x",
      math.floor(core.time_ms()), core.getpid()) } }
end

-- Starts every task of the job in this process: builds, restores, opens,
-- listens for control requests and starts the host and the coordinator
-- on the loop, which the caller runs. Returns false when the restored
-- checkpoint is a finished job's (nothing left to run).
local function start_local(job, state, on_finish)
  local coord = coordinator.new(job)
  local host = M.new_host(job, 0, 1)
  state.coord, state.host = coord, host
  coord.hosts = { host }
  host.coord = coord
  host:build()
  local restored = coord:restore_point()
  host:restore(restored)
  host:open()
  if restored and restored.manifest.final then
    -- The job had finished; recovering the sinks committed its output.
    coord.last_completed = restored.manifest.id
    return false
  end
  state.running = true  -- failures from now on are not in the set-up
  state.control = coordinator.serve_control(job,
    function() return coord end,
    function() return { parallelism = job.plan.default_parallelism,
      restarts = 0 } end,
    function() return host:metrics() end)
  coord.on_finish = function()
    if state.control then state.control.close() state.control = nil end
    if on_finish then on_finish() end
  end
  host:start()
  coord:start()
  return true
end

-- Stops the loop handles start_local started.
local function stop_local(state)
  if state.coord then state.coord:close() end
  if state.control then state.control.close() state.control = nil end
  if state.host then state.host:stop() end
end

-- Stops what start_local started (after the job finished, failed or was
-- cancelled) and returns the job's statistics; raises err's message when
-- the job failed (ok false).
local function finish_local(job, state, start_ms, ok, err)
  stop_local(state)
  if state.host then state.host:close() end
  if not ok then
    if os.getenv("WEIR_DEBUG") and err.traceback then
      io.stderr:write(err.traceback, "\n")
    end
    error(tostring(err.message), 0)
  end
  local coord = state.coord
  if coord.cancelled then
    -- Once no snapshot write is in flight (a background job's may be).
    local host = state.host
    if host.writing > 0 then
      host.after_writes = function() coord:remove_checkpoints() end
    else
      coord:remove_checkpoints()
    end
  end
  return { name = job.name, checkpoints = coord.checkpoints,
    records = coord:close_metrics(),
    late_records = state.host.stats.late_records,
    last_checkpoint = coord.last_completed and
      checkpoint.path(job.job_dir, coord.last_completed),
    restored_from = coord.restored and coord.restored.path,
    cancelled = coord.cancelled and true or nil,
    savepoint = coord.cancelled and coord.cancelled.savepoint,
    duration_ms = core.monotonic_ms() - start_ms }
end

-- Runs the job in this process until it ends; after a failure in a
-- running job (not in its set-up: a missing input or a checkpoint that
-- does not fit) it restarts from the newest checkpoint of the run's
-- lineage as the restart strategy allows, when restarts is true.
-- Returns the statistics of finish_local, or raises its error.
local function run_local(job, restarts)
  local strategy = restarts and restart.strategy(job.options.restart)
  local start = core.monotonic_ms()
  while true do
    local state = {}
    local ok, err = xpcall(function()
      if start_local(job, state) then core.run() end
    end, errors.handler)
    if not ok then stop_local(state) end
    core.drain()
    if state.coord then state.coord:remove_abandoned() end
    local delay = not ok and state.running and strategy
      and strategy:next_delay(core.monotonic_ms())
    if not delay then
      if not ok and state.running and strategy then
        err.message = restart.give_up_message(tostring(err.message),
          job.lineage.restarts, job.lineage)
      end
      local stats = finish_local(job, state, start, ok, err)
      stats.restarts = job.lineage.restarts
      return stats
    end
    if state.host then state.host:close() end
    local lineage = job.lineage
    lineage.restarts = lineage.restarts + 1
    errors.warn(restart.restarting_message(tostring(err.message), delay,
      lineage.restarts))
    local due = false
    local timer = core.timer(function() due = true end)
    timer:start(delay, 0)
    while not due do core.run_once() end
    timer:close()
  end
end

-- Warns about stateful operators without an explicit uid.
local function warn_uids(p)
  for _, node in ipairs(p.nodes) do
    if pipeline.stateful[node.kind] and not node.explicit_uid then
      errors.warn(string.format("%s keeps state but has no :uid(); its "
        .. "state is named '%s' after its place in the graph, which "
        .. "changes when operators are added before it",
        errors.describe(node), node.uid))
    end
  end
end

--- Runs a pipeline to completion: in this process, or, when the weir
-- command line runs a script at a parallelism above 1, on worker
-- processes (weir.cluster).
-- @param p Pipeline (weir.pipeline)
-- @return { name = job name, checkpoints = checkpoints completed by this
--   run, late_records = records windows found too late, last_checkpoint =
--   path|nil, restored_from = path|nil, duration_ms = wall time,
--   cancelled = true|nil (weir cancel), savepoint = path|nil (the
--   savepoint it was cancelled with) }; M.report(stats), if set, sees it
--   too
-- Raises a one-line message on failure: a user function that threw (with
-- the operator, where the script defined it and the record), a checkpoint
-- that failed, a missing input, an unusable directory, another process
-- running the same job. Complete checkpoints are left intact for
-- `restore = "latest"`.
function M.run(p)
  local cluster = require "weir.cluster"
  if cluster.worker_context then
    return cluster.run_worker(M.prepare(p, cluster.worker_context.parallelism))
  end
  local parallelism = p.options.parallelism or M.default_parallelism or 1
  local job = M.prepare(p, parallelism)
  if M.script then warn_uids(p) end
  if job.plan.max_parallelism > 1 and M.script then
    return cluster.run_coordinator(job, M)
  end
  local stats = run_local(job, M.script or p.options.restart)
  if M.report then M.report(stats) end
  return stats
end

-- The background of this process (weir.background) starts, stops and
-- finishes jobs as run() does.
M.start_local, M.stop_local, M.finish_local = start_local, stop_local,
  finish_local

return M
