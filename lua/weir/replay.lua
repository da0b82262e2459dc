--- Checkpoints in the middle of a record: the replay prefix of a source's
-- chain.
--
-- A source's record may fan out into many (a flat_map of a huge line).
-- When the source's task waits mid-record for room and a checkpoint is
-- triggered, the barrier goes out at once, after the records passed on so
-- far: the source's position is that of the record being emitted (every
-- source keeps it so until emit returns) and the checkpoint also records
-- how many records the chain passed on from it. A restore emits that
-- record again and drops as many of what the chain passes on. Only the
-- replay prefix -- the source and the operators right after it that give
-- the same outputs for the same input (weir.kinds "replayable") -- runs
-- again; records are counted and dropped where they leave it, so no
-- stateful operator and no sink sees a record twice. (Flink instead lets
-- a barrier wait for the whole record; this keeps checkpoints going
-- whatever the fan-out.)
--
-- A source task's counter: pushed (records that left the prefix in all),
-- mark (pushed when the current record began), skip_until (the count up
-- to which a restore drops them), budget (the count at which the step
-- yields) and in_record (the source is inside emit).
local channel = require "weir.channel"
local kinds = require "weir.kinds"

local M = {}

M.STEP_RECORDS = 16384     -- records a source's chain passes on per step

--- What a task's coroutine yields when a source's step passed on
-- STEP_RECORDS records (see M.source_emit).
M.PAUSED = {}

local REPLAYABLE = kinds.with("replayable")
local may_wait, yield = channel.may_wait, coroutine.yield

--- A fresh counter for a source task (see the header).
function M.new_counter()
  return { pushed = 0, skip_until = 0, mark = 0, budget = 0,
    in_record = false }
end

--- The operators of a source's chain that form its replay prefix:
-- { [node] = true }.
function M.prefix(chain)
  local prefix = { [chain.head] = true }
  for k = 2, #chain.nodes do
    local node = chain.nodes[k]
    if REPLAYABLE[node.kind] and prefix[node.inputs[1]] then
      prefix[node] = true
    end
  end
  return prefix
end

--- Wraps push, where records leave the replay prefix: counts them, and
-- drops those a restore asked to skip (see M.skip_outputs). A record
-- counted here must be wholly before or wholly after any barrier: when
-- push goes to a writer it is, as the writer waits only after handing
-- the record on; when it goes to a stateful operator of the same chain
-- (in_chain), which may pass the record to several writers, the task
-- must not wait until push returns (task.hold).
function M.boundary(task, push, in_chain)
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

--- The emit a source calls for each record: marks where the record's
-- outputs start, and ends the step's turn (yielding PAUSED, to go on at
-- the next loop turn) once the chain passed on STEP_RECORDS records in
-- it, so timers and checkpoint triggers are not held up by a fan-out.
function M.source_emit(task, out)
  local counter = task.counter
  return function(record, ts)
    counter.mark, counter.in_record = counter.pushed, true
    out(record, ts)
    if counter.pushed >= counter.budget and may_wait() then
      yield(M.PAUSED)
    end
    counter.in_record = false
  end
end

--- The function a restored source calls with the count its snapshot
-- recorded: that many of the records the prefix passes on next are
-- dropped.
function M.skip_outputs(task)
  return function(count)
    task.counter.skip_until = task.counter.pushed + count
  end
end

--- A source goes on from position pos (a table) of a restored snapshot:
-- if pos.skip is set, the outputs its next record already gave before the
-- checkpoint are dropped (env.skip_outputs), once.
function M.resume_skip(pos, env)
  if pos.skip then
    if env.skip_outputs then env.skip_outputs(pos.skip) end
    pos.skip = nil
  end
end

--- Starts a source's step: it may pass on STEP_RECORDS records.
function M.start_step(task)
  local counter = task.counter
  counter.budget = counter.pushed + M.STEP_RECORDS
end

--- The number of records the replay prefix of a source task has passed on
-- from the record being emitted (the task waits inside the source's emit),
-- or still has to drop (a restore's skip not yet used up): what the
-- source's snapshot records beside its position. A task that waits
-- outside a record (its step's watermarks or its end going out) is past
-- the record as its source's position is. 0 for other tasks.
function M.skip(task)
  local c = task.counter
  if not c then return 0 end
  if task.suspended and c.in_record then return c.pushed - c.mark end
  return math.max(0, c.skip_until - c.pushed)
end

return M
