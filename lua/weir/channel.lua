--- Channels between tasks (Flink's RecordWriter and input channel): a
-- channel's queue on the consuming side, its writing end that batches
-- records, and the writer of a channel within this process.
--
-- Backpressure holds per batch. A writer whose consumer has no room after
-- a batch went out waits by yielding BLOCKED from the coroutine that runs
-- the producing task's step (weir.host registers those coroutines here
-- with run_in), so a record that fans out into many waits mid-record
-- instead of queueing its whole fan-out in memory. Code that runs outside
-- such a coroutine, or that cannot yield (a user function that emits from
-- inside a C call, such as a string.gsub callback), queues the batch as
-- before. A consumer over the network grants credits instead of queue
-- room (weir.transport); the writer asks blocked() either way.
local clear = require "table.clear"

local M = {}

M.BATCH_RECORDS = 2048     -- records per channel batch
M.CHANNEL_BATCHES = 16     -- batches queued on a channel before backpressure

--- What a task's coroutine yields when an output has no room.
M.BLOCKED = {}

local isyieldable, yield = coroutine.isyieldable, coroutine.yield
local running = coroutine.running

-- The coroutines that run tasks' steps -> their task: only they yield on
-- backpressure (a job may run inside some other coroutine, a test
-- runner's say).
local task_threads = setmetatable({}, { __mode = "k" })

--- Registers coroutine co as the one that runs task's steps: writers
-- called from it may wait for room by yielding BLOCKED while task.hold is
-- 0 (see weir.replay).
function M.run_in(co, task)
  task_threads[co] = task
end

-- Whether the running code may wait for room by yielding: in a task's
-- step, outside a record that a stateful operator of a source's chain is
-- passing on (task.hold).
local function may_wait()
  local task = task_threads[running()]
  return task ~= nil and task.hold == 0 and isyieldable()
end
M.may_wait = may_wait

-- -- Input queue ------------------------------------------------------------

local Channel = {}
Channel.__index = Channel

--- A channel's queue on the consuming side: record batches (a batch is
-- { n = count, ts = timestamps, record1, ... }) and events (barrier,
-- watermark, end_of_input). on_take, if set, runs for every batch taken
-- (remote channels return a credit to the sender then).
function M.new()
  return setmetatable({ items = {}, head = 1, tail = 0 }, Channel)
end

--- Appends a batch or an event.
function Channel:put(item)
  local t = self.tail + 1
  self.items[t] = item
  self.tail = t
end

--- Removes and returns the oldest item, or nil when the queue is empty.
function Channel:take()
  local h = self.head
  if h > self.tail then return nil end
  local item = self.items[h]
  self.items[h] = nil
  self.head = h + 1
  if self.on_take and item.n then self.on_take() end
  return item
end

--- The number of items queued.
function Channel:size() return self.tail - self.head + 1 end

-- -- Writing end ------------------------------------------------------------

--- A channel's writing end: batches records and hands each full batch (and
-- each event, after the batch before it) to deliver(item), which returns
-- true if it is done with the batch (it was sent), so the table is reused.
-- blocked() tells whether the consumer has no room. Keys do not travel:
-- the consumer of a hash exchange computes them again, which costs less
-- than shipping them. A watermark that comes while a batch is filling
-- waits for the batch to fill or for the task's step to end (release),
-- and a later one replaces it: records that precede a watermark are never
-- late by it, and per-record watermarks do not cut batches down to one
-- record. The maximal watermark goes out just before the end of input,
-- after everything else (the output of a task's finish too): a consumer
-- that has it from every input gets nothing more but their ends, and
-- fires its timers as final ones (weir.host's fire_final).
-- direct(record, ts, key), if given, may hand a record straight to the
-- consumer (returning true) when no batch is filling, so order is kept.
-- @return { push(record, ts, key), event(ev), watermark(wm, status),
--   release(), blocked(), records = records written, watermark_ms = the
--   last watermark sent (event time, ms), closed = true once the end of
--   input went out }
function M.writer(deliver, blocked, direct)
  -- The batch is set up here, not by calling reset(): a closure that
  -- LuaJIT compiles while an upvalue it stores into is still open (its
  -- creator running) omits the write barrier of that store once the
  -- upvalue is closed, and the collector then frees the live batch
  -- (LuaJIT issue 1085, fixed after the 2.1 snapshot Debian ships). So
  -- reset() is never called while M.writer runs, and it stays
  -- interpreted.
  local ts, pending_wm, held_max = {}, nil, false
  local buf, n = { ts = ts }, 0
  local function reset()
    buf, n = { ts = {} }, 0
    ts = buf.ts
  end
  jit.off(reset)
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
    while blocked() and may_wait() do yield(M.BLOCKED) end
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
    if ev.end_of_input and held_max then
      held_max = false
      deliver({ watermark = math.huge })
    end
    deliver(ev)
    -- After the end of input nothing follows on the channel.
    if ev.end_of_input then w.closed = true end
  end
  function w.watermark(wm, status)
    w.watermark_ms = wm
    if wm == math.huge and not status then
      held_max = true  -- goes out with the end
      return
    end
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

--- The writer of channel ch within this process: it has room while fewer
-- than CHANNEL_BATCHES items are queued. While the queue is empty, a
-- record goes to the consumer by a direct call (ch.direct, set by the
-- consumer's task) rather than through a batch: no batch to build and
-- take apart, and the key the router computed is reused.
function M.local_writer(ch)
  return M.writer(function(item) ch:put(item) end,
    function() return ch:size() >= M.CHANNEL_BATCHES end,
    function(record, t, k)
      local direct = ch.direct
      return direct ~= nil and ch.head > ch.tail and direct(record, t, k)
    end)
end

--- The id of the channel of edge from producer subtask i to consumer
-- subtask j: the same number in every process of a job (edge.id < 65536,
-- subtasks < 65536).
function M.id(edge, i, j)
  return (edge.id * 65536 + i) * 65536 + j
end

--- The edge id of channel id cid (see M.id).
function M.edge_of(cid)
  return math.floor(cid / 4294967296)
end

return M
