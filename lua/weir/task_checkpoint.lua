--- The task side of a checkpoint (Flink's SubtaskCheckpointCoordinator):
-- for each task of a host, the synchronous part of checkpoint n (every
-- operator of the task's chain serializes its state), the asynchronous
-- writes of the state files on libuv's thread pool, the acknowledgement
-- to the checkpoint coordinator once they are durable, and the barrier
-- forwarded on the task's outputs; then what the coordinator decides:
-- abort (files written for it are removed), complete (sinks commit what
-- they pre-committed, two-phase commit) or, with checkpoints off, commit
-- at the end.
--
-- Asynchronous barrier snapshotting: Carbone et al. 2015, "Lightweight
-- Asynchronous Snapshots for Distributed Dataflows".
local buffer = require "string.buffer"
local core = require "weir.core"
local checkpoint = require "weir.checkpoint_storage"
local errors = require "weir.errors"
local failpoint = require "weir.failpoint"
local incremental = require "weir.incremental"
local replay = require "weir.replay"
local rocksdb_checkpoint = require "weir.rocksdb_checkpoint"

local M = {}

local guard = errors.guard

-- Key groups compacted per forked checkpoint of an operator: the forked
-- process compacts its copy only, so this one compacts its own in turn.
local FORK_COMPACT_GROUPS = 4

local Checkpoints = {}
Checkpoints.__index = Checkpoints

--- The task-side checkpoints of host (weir.host): uses host.coord (ack,
-- decline), host.job.job_dir, host.tasks, host.sinks and host.stopped.
function M.new(host)
  return setmetatable({ host = host, aborted = {}, landed = {},
    writing = 0 }, Checkpoints)
end

--- The checkpoint triggered and neither completed nor aborted yet, or nil.
function Checkpoints:pending()
  return self.pending_id
end

--- Whether no state file write is in flight.
function Checkpoints:idle()
  return self.writing == 0
end

--- Calls fn once no state file write is in flight (at once if none is).
function Checkpoints:after_writes(fn)
  if self.writing == 0 then return fn() end
  self.after = fn
end

-- A file write ended: the last one calls what waits for them.
function Checkpoints:write_ended()
  self.writing = self.writing - 1
  if self.writing == 0 and self.after then
    local after = self.after
    self.after = nil
    after()
  end
end

-- Raises the error of a snapshot that failed: an unserializable value
-- is named with the operator, the key and the path to the value.
local function snapshot_error(node, id, err)
  if errors.is(err) and err.kind == "unserializable" then
    error(errors.new(string.format(errors.messages.unserializable, id,
      errors.describe(node), errors.repr(err.key), err.path, err.type)), 0)
  end
  error(err, 0)
end

-- The state file name of node (subtask of task) for checkpoint id has
-- landed (werr nil: durable, size_bytes and checksum as the manifest lists
-- them) or failed (werr, a message): on_written(file) gets the file's
-- manifest entry, a failure (a full disk) declines the checkpoint.
function Checkpoints:file_written(task, node, id, path, name, werr,
    size_bytes, checksum, on_written)
  local host = self.host
  self:write_ended()
  if not werr then werr = failpoint.hit("checkpoint.state_file") end
  -- A stopped host's checkpoints no longer matter; a file that lands
  -- after its checkpoint was aborted is removed with it.
  if host.stopped then return end
  if self.aborted[id] then
    if not werr then self:remove_landed(path, { name }) end
    return
  end
  if werr then
    return host.coord:decline(id, string.format("cannot write %s/%s: %s",
      path, name, werr))
  end
  local landed = self.landed[id] or {}
  self.landed[id] = landed
  landed[#landed + 1] = name
  on_written({ name = name, uid = node.uid, subtask = task.subtask,
    size_bytes = size_bytes, checksum = checksum })
end

local function file_name(task, node)
  return node.uid .. "-" .. task.subtask .. ".snap"
end

-- The content of node's state file (weir.checkpoint_storage.encode_file).
local function file_content(task, node, state)
  return checkpoint.encode_file({ uid = node.uid, kind = node.kind,
    subtask = task.subtask, state = state })
end

-- Writes the state of node (subtask of task) for checkpoint id into its
-- directory path on the thread pool; on_written(file) runs once it is
-- durable (see file_written). Returns false when the write could not
-- start (the checkpoint is declined).
function Checkpoints:write_state(task, node, id, path, state, on_written)
  local name = file_name(task, node)
  local bytes = file_content(task, node, state)
  self.writing = self.writing + 1
  local ok, err = core.snapshot_write_async(path .. "/" .. name, bytes,
    guard(function(werr, size_bytes, checksum)
      self:file_written(task, node, id, path, name, werr, size_bytes,
        checksum, on_written)
    end))
  if not ok then
    self:write_ended()
    self.host.coord:decline(id, string.format("cannot write %s/%s: %s", path,
      name, err))
    return false
  end
  return true
end

-- In a forked copy of the process (see core.fork_call): snapshots and
-- writes the state of nodes of task for checkpoint id into path; returns
-- the encoded results, per node { size_bytes, checksum } or { err }, or
-- { unserializable = message } when a state cannot be serialized.
local function write_in_child(task, nodes, id, path)
  local out = {}
  for k, node in ipairs(nodes) do
    local ok, state = pcall(task.insts[node.id].snapshot, id)
    if not ok then
      local _, err = pcall(snapshot_error, node, id, state)
      return buffer.encode({ unserializable = tostring(errors.is(err)
        and err.message or err) })
    end
    local size, checksum = core.snapshot_write(path .. "/" .. file_name(task,
      node), file_content(task, node, state))
    out[k] = size and { size_bytes = size, checksum = checksum }
      or { err = checksum }
  end
  return buffer.encode(out)
end

-- Decodes what write_in_child returned (bytes of another process).
local function decode_results(bytes)
  local ok, v = pcall(buffer.decode, bytes)
  if ok and type(v) == "table" then return v end
  return { error = "the forked process handed back results that cannot be "
    .. "decoded" }
end
jit.off(decode_results)

-- Whether node's checkpoint goes to a forked process: its snapshot reads
-- only its own memory and it holds at least fork_snapshot_keys keys.
local function forks(inst, min_keys)
  return inst.fork_safe and min_keys >= 0 and inst.state.count >= min_keys
end

-- Takes the state of nodes (of task) for checkpoint id in a forked
-- copy-on-write process that serializes and writes it while this one goes
-- on (as Redis's BGSAVE); on_written(file) runs per file as for
-- write_state. Returns false when the fork failed (nothing started).
function Checkpoints:fork_states(task, nodes, id, path, on_written)
  for _, node in ipairs(nodes) do
    task.insts[node.id].state:compact_some(FORK_COMPACT_GROUPS)
  end
  local fork_ms = core.fork_call(function()
    return write_in_child(task, nodes, id, path)
  end, guard(function(ferr, bytes)
    local results = ferr and { error = ferr } or decode_results(bytes)
    if results.unserializable then
      -- As when the state is taken here: the job fails, naming the
      -- operator, the key and the value.
      for _ = 1, #nodes do self:write_ended() end
      error(errors.new(results.unserializable), 0)
    end
    for k, node in ipairs(nodes) do
      local r = results[k]
      local werr = results.error or (type(r) ~= "table"
        or type(r.size_bytes) ~= "number" or type(r.checksum) ~= "number")
        and tostring(type(r) == "table" and r.err or "no result")
      self:file_written(task, node, id, path, file_name(task, node), werr,
        not werr and r.size_bytes, not werr and r.checksum, on_written)
    end
  end))
  if not fork_ms then return false end
  self.writing = self.writing + #nodes
  return true
end

-- Takes the RocksDB states of nodes (of task) for checkpoint id
-- incrementally (weir.rocksdb_checkpoint): the task's database is
-- checkpointed here, with what each operator holds besides its keys
-- (inst.snapshot_native), its new files copied after, then each node's
-- state file, referencing them, is written; on_written(file) runs per file as
-- for write_state, the file's manifest entry listing the shared files.
-- A failure declines the checkpoint.
function Checkpoints:native_states(task, nodes, id, path, on_written)
  local host = self.host
  local t = host.state_backend:task_db(task.id)
  local dir, err = rocksdb_checkpoint.take(t, id)
  if not dir then return host.coord:decline(id, err) end
  local make_state = {}
  for _, node in ipairs(nodes) do
    make_state[node] = task.insts[node.id].snapshot_native()
  end
  self.writing = self.writing + 1
  rocksdb_checkpoint.upload(t, id, dir, incremental.dir_of(path),
    function() self.writing = self.writing + 1 end,
    function() self:write_ended() end,
    guard(function(uerr, ref)
      self:write_ended()
      if host.stopped or self.aborted[id] then return end
      if uerr then return host.coord:decline(id, uerr) end
      local shared = {}
      for i, f in ipairs(ref.files) do
        shared[i] = { name = f.name, size_bytes = f.size_bytes,
          checksum = f.checksum, new = f.new }
      end
      for _, node in ipairs(nodes) do
        self:write_state(task, node, id, path, make_state[node](ref),
          function(file)
            file.shared = shared
            on_written(file)
          end)
      end
    end))
end

--- Takes checkpoint id of task: runs the synchronous part for every
-- operator of its chain (serialize its state, or fork a process that
-- will), starts the asynchronous writes and acknowledges to the
-- coordinator once they are durable (with timing: { sync_ms, async_ms,
-- alignment_ms }, the synchronous part, the writes after it and the
-- barrier alignment before it), then
-- forwards the barrier on every output the task's end of input has not
-- reached. Raises when an operator's state cannot be serialized (the
-- error names the operator, key and value). Does nothing for a
-- checkpoint the task took already.
function Checkpoints:snapshot_task(task, id)
  if task.acked >= id then return end
  task.acked = id
  local host = self.host
  local start_ms = core.monotonic_ms()
  local path = checkpoint.path(host.job.job_dir, id)
  local files, writes, started, sync_end = {}, 0, false, nil
  local timing = { alignment_ms = task.alignment_id == id
    and task.alignment_ms or 0 }
  local function done()
    if writes == 0 and started and not host.stopped then
      timing.async_ms = core.monotonic_ms() - sync_end
      host.coord:ack(task.id, id, files, timing)
    end
  end
  local function written(file)
    files[#files + 1] = file
    writes = writes - 1
    done()
  end
  -- Large keyed states go to a forked process first; the rest (and
  -- those, if the fork failed: out of processes or memory) are taken
  -- here, before any record moves on, so both see the same moment.
  local min_keys = host.job.options.fork_snapshot_keys or -1
  local forked, taken = {}, {}  -- taken: by a fork or incrementally
  for _, node in ipairs(task.chain.nodes) do
    local inst = task.insts[node.id]
    if inst.snapshot and forks(inst, min_keys) then
      forked[#forked + 1] = node
    end
  end
  if #forked > 0 then
    writes = writes + #forked
    if self:fork_states(task, forked, id, path, written) then
      for _, node in ipairs(forked) do taken[node] = true end
    else
      writes = writes - #forked
    end
  end
  -- RocksDB states, but for a savepoint (full, in the heap backend's
  -- format: portable), are checkpointed incrementally.
  local native = {}
  for _, node in ipairs(task.chain.nodes) do
    if task.insts[node.id].snapshot_native and self.savepoint_id ~= id then
      native[#native + 1] = node
      taken[node] = true
    end
  end
  if #native > 0 then
    writes = writes + #native
    self:native_states(task, native, id, path, written)
  end
  local skip = replay.skip(task)
  for _, node in ipairs(task.chain.nodes) do
    local inst = task.insts[node.id]
    if inst.snapshot and not taken[node] then
      local ok, state = pcall(inst.snapshot, id,
        node == task.chain.head and skip or nil,
        self.savepoint_id == id and self.savepoint_dir or nil)
      if not ok then snapshot_error(node, id, state) end
      writes = writes + 1
      -- A failed write declines; the barrier still goes on below, as
      -- tasks downstream align on it.
      if not self:write_state(task, node, id, path, state, written) then
        writes = writes - 1
      end
    end
  end
  -- The synchronous part ends here: records flow on after the barrier.
  sync_end = core.monotonic_ms()
  timing.sync_ms = sync_end - start_ms
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

--- Called by task's keyed operators between two timers they fire (a
-- consistent point: every fired timer's output went out): a task still
-- ending takes a triggered checkpoint's snapshot there, so a final firing
-- longer than the checkpoint timeout lets checkpoints through (as
-- Flink's interruptible timers). The rest of the due timers are in the
-- snapshot, and its restore fires them (weir.operators' keyed).
function Checkpoints:between_timers(task)
  local id = self.pending_id
  if id and task.ending and task.acked < id then
    self:snapshot_task(task, id)
  end
end

--- Checkpoint id was triggered: source tasks and tasks that ended take
-- their snapshot now (all tasks for the final checkpoint); the others
-- when barrier id reaches them, and a task still ending (its final
-- timers firing, its finish emitting: halfway, waiting for room) between
-- two timers (between_timers) or once it ended (weir.host's end_task).
-- savepoint: the directory of a savepoint (sources that keep a log pin
-- what it needs), or nil.
function Checkpoints:trigger(id, final, savepoint)
  self.pending_id = id
  if savepoint then
    self.savepoint_id = id
    -- Where it goes (a string), or true from a host that does not say.
    self.savepoint_dir = type(savepoint) == "string" and savepoint or nil
  end
  for _, task in ipairs(self.host.tasks) do
    if final or ((task.source or task.ended) and not task.ending) then
      self:snapshot_task(task, id)
    end
  end
end

-- Removes the state files names of an aborted checkpoint's directory
-- path that this host wrote, and the directory once it is empty (the
-- coordinator removed the rest; a file may land after it did).
function Checkpoints:remove_landed(path, names)
  for _, name in ipairs(names) do core.unlink(path .. "/" .. name) end
  core.rmdir(path)
end

--- Checkpoint id was aborted: its acknowledgements and write errors no
-- longer matter, and the files this host wrote for it are removed.
function Checkpoints:abort(id)
  self.aborted[id] = true
  for _, t in pairs(self.host.state_backend.tasks or {}) do
    rocksdb_checkpoint.forget(t, id)
  end
  if self.pending_id == id then self.pending_id = nil end
  if self.landed[id] then
    self:remove_landed(checkpoint.path(self.host.job.job_dir, id),
      self.landed[id])
    self.landed[id] = nil
  end
end

--- Checkpoint id is complete: sinks commit what they pre-committed.
function Checkpoints:complete(id)
  if self.pending_id == id then self.pending_id = nil end
  for _, t in pairs(self.host.state_backend.tasks or {}) do
    rocksdb_checkpoint.confirm(t, id)
  end
  for done in pairs(self.landed) do
    if done <= id then self.landed[done] = nil end
  end
  for _, sink in ipairs(self.host.sinks) do sink.notify_complete(id) end
end

--- Checkpoints are off and the job ended: sinks commit everything.
function Checkpoints:commit()
  for _, sink in ipairs(self.host.sinks) do sink.commit() end
end

return M
