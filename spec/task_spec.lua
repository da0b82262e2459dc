-- The task host's steps and checkpoints, driven by hand: no processes, no
-- loop, fake writers.
local channel = require "weir.channel"
local host_mod = require "weir.host"
local replay = require "weir.replay"

-- A writer whose deliveries are logged into log as "name:kind".
local function writer(log, name)
  return channel.writer(function(item)
    log[#log + 1] = name .. ":" .. (item.barrier and "barrier"
      or item.end_of_input and "end" or "batch")
    return true
  end, function() return false end)
end

-- A host of no plan, whose coordinator takes acknowledgements.
local function host_of(acks)
  local host = host_mod.new({ options = { max_parallelism = 128 },
    plan = { tasks = {} }, job_dir = "unused" }, 0, 1)
  host.coord = { ack = function(_, task, id)
    acks[#acks + 1] = { task, id }
  end }
  return host
end

local function task_of(outputs)
  return { id = 1, subtask = 0, chain = { nodes = {} }, insts = {},
    outputs = outputs, acked = 0, entered = 0, suspended = false,
    records_in = 0 }
end

-- The host of one task with one output a, logged into log, whose
-- acknowledgements go into acks: for end_task.
local function ending_task(log, acks)
  local a = writer(log, "a")
  local host, task = host_of(acks), task_of({ a })
  host.coord.task_ended = function() end
  host.tasks = { task }
  return host, task, a
end

describe("weir.host", function()
  it("sends a checkpoint's barrier only on the outputs the end of input "
    .. "has not reached yet", function()
    local log, acks = {}, {}
    local a, b = writer(log, "a"), writer(log, "b")
    -- The task is ending: its end went out on a, not yet on b.
    a.event({ end_of_input = true })
    local host, task = host_of(acks), task_of({ a, b })
    task.ended = true
    host.checkpoints:snapshot_task(task, 7)
    assert.same({ "a:end", "b:barrier" }, log)
    assert.same({ { 1, 7 } }, acks)
  end)

  it("snapshots a task whose end is going out (its final timers firing) "
    .. "once it ended, not halfway when the checkpoint is triggered",
    function()
      local log, acks = {}, {}
      local host, task, a = ending_task(log, acks)
      function task.head_watermark()
        a.push("fired first")
        a.event({ watermark = 1 })  -- a batch goes out
        host.checkpoints:trigger(7)  -- while it waits for room
        a.push("fired next")
      end
      host:end_task(task)
      -- Not "a:batch", "a:barrier", "a:batch": the restore would not
      -- fire again what went out after the barrier.
      assert.same({ "a:batch", "a:batch", "a:end" },
        { log[1], log[3], log[4] })
      assert.are.equal(4, #log)
      assert.same({ { 1, 7 } }, acks)
    end)

  it("snapshots a task whose end is going out between two of its final "
    .. "timers, so a long final firing lets checkpoints through",
    function()
      local log, acks = {}, {}
      local host, task, a = ending_task(log, acks)
      function task.head_watermark()
        a.push("fired first")
        host.checkpoints:between_timers(task)  -- nothing pending
        host.checkpoints:trigger(7)
        a.push("fired next")
        host.checkpoints:between_timers(task)
        a.push("fired last")
        host.checkpoints:between_timers(task)  -- taken already
      end
      host:end_task(task)
      assert.same({ "a:batch", "a:barrier", "a:batch", "a:end" }, log)
      assert.same({ { 1, 7 } }, acks)
    end)

  it("snapshots a task between two timers of the maximal watermark from "
    .. "every input, before their ends arrive: no barrier can follow it",
    function()
      local log, acks = {}, {}
      local host, task, a = ending_task(log, acks)
      task.watermarks, task.idle, task.watermark = { 5, 5 }, {}, 5
      local fired = 0
      function task.head_watermark(w)
        if w < math.huge then return end
        a.push("fired first")
        host.checkpoints:trigger(7)
        host.checkpoints:between_timers(task)  -- no barrier will come
        a.push("fired next")
        fired = fired + 1
      end
      host:input_watermark(task, 1, math.huge)
      assert.same({}, acks)  -- one input may still send a barrier
      host:input_watermark(task, 2, math.huge)
      assert.are.equal(1, fired)
      a.event({ watermark = 1 })  -- what fired after the barrier goes out
      assert.same({ "a:batch", "a:barrier", "a:batch", "a:batch" }, log)
      assert.same({ { 1, 7 } }, acks)
      assert.is_nil(task.ending)
    end)

  it("snapshots a task whose timers of the maximal watermark fired once "
    .. "they did, when a checkpoint came after the last", function()
      local log, acks = {}, {}
      local host, task, a = ending_task(log, acks)
      task.watermarks, task.idle, task.watermark = { 5 }, {}, 5
      function task.head_watermark()
        a.push("fired")
        host.checkpoints:trigger(7)
      end
      host:input_watermark(task, 1, math.huge)
      assert.same({ "a:batch", "a:barrier" }, log)
      assert.same({ { 1, 7 } }, acks)
    end)

  it("sleeps between steps when nothing moves, with periodic work too",
    function()
      local core = require "weir.core"
      local host, task = host_of({}), task_of({})
      host.tasks, host.state_backend = { task }, { kind = "heap" }
      host.options = { gc_pause = 200 }
      function host.run_task() return false end  -- waits for input
      local turns = 0
      host.periodic = { { periodic = function() turns = turns + 1 end } }
      host:start()
      local done = false
      local stop = core.timer(function() done = true end)
      stop:start(200, 0)
      while not done do core.run_once() end
      stop:close()
      host:stop()
      -- A spinning loop turns some 100,000 times in 200 ms; asleep, it
      -- wakes once per ms at most for the periodic work.
      assert.is_true(turns >= 1 and turns <= 400, turns .. " turns")
    end)

  it("notes a source record's outputs for a checkpoint only while the "
    .. "task waits inside that record", function()
    local host, task = host_of({}), task_of({})
    task.suspended = true
    -- Waiting after its step, with its watermarks: past the record.
    task.counter = { pushed = 5, mark = 4, skip_until = 0,
      in_record = false }
    assert.are.equal(0, replay.skip(task))
    -- Waiting in the middle of a record that passed on one record.
    task.counter.in_record = true
    assert.are.equal(1, replay.skip(task))
    -- Not waiting, with two records of a restore still to drop.
    task.suspended, task.counter.skip_until = false, 7
    assert.are.equal(2, replay.skip(task))
  end)

  it("resumes a task that waits for room while its end goes out",
    function()
      local host, task = host_of({}), task_of({})
      local resumed = false
      task.source, task.counter = true, { pushed = 0, skip_until = 0 }
      task.chain.head = { id = 1 }
      task.insts[1] = { produce = function()
        resumed = true
        return false, 0
      end }
      task.ended, task.suspended = true, true
      host.tasks = { task }
      host:step()
      assert.is_true(resumed)
    end)
end)
