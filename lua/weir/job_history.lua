--- What a running job's HTTP API shows of its past: its recent checkpoints
-- and savepoints (Flink's checkpoint statistics: status, trigger time,
-- duration, sync, async and alignment time, size, failure cause) and the
-- causes of its restarts (Flink's exception history). One history per
-- job, kept across the attempts of a job that restarts; the checkpoint
-- coordinator and the supervisor write it, weir.http_api reads it.
local core = require "weir.core"
local incremental = require "weir.incremental"

local M = {}

M.LIMIT = 100  -- entries kept of each kind, the newest

local History = {}
History.__index = History

--- A new, empty history.
-- @return history
function M.new()
  return setmetatable({ checkpoints = {}, exceptions = {},
    counts = { completed = 0, failed = 0 }, state_bytes = {} }, History)
end

-- Appends entry to list, dropping the oldest beyond LIMIT.
local function append(list, entry)
  list[#list + 1] = entry
  if #list > M.LIMIT then table.remove(list, 1) end
end

--- Checkpoint or savepoint `pending` (weir.coordinator: id, final,
-- savepoint) was triggered: it is in progress.
function History:triggered(pending)
  local entry = { id = pending.id, status = "in_progress",
    savepoint = pending.savepoint ~= nil, final = pending.final or false,
    trigger_time_ms = core.time_ms() }
  pending.stats = entry
  append(self.checkpoints, entry)
end

--- Checkpoint `pending` completed at path (its directory; a savepoint's
-- after it was moved): fields of the coordinator's pending record
-- (start_ms, sync_ms, async_ms, alignment_ms, files) give its timing
-- (ms) and size (bytes added to checkpoint storage); a checkpoint's files
-- also give each subtask's state size (see History:state_size).
function History:completed(pending, path)
  local entry = pending.stats
  if not entry then return end
  entry.status, entry.path = "completed", path
  entry.duration_ms = core.monotonic_ms() - pending.start_ms
  entry.sync_ms, entry.async_ms = pending.sync_ms, pending.async_ms
  entry.alignment_ms = pending.alignment_ms
  entry.size_bytes = incremental.sizes(pending.files)
  self.counts.completed = self.counts.completed + 1
  if entry.savepoint then return end
  local sizes = {}
  for _, f in ipairs(pending.files) do
    local _, full = incremental.sizes({ f })
    local k = f.uid .. "/" .. tostring(f.subtask)
    sizes[k] = (sizes[k] or 0) + full
  end
  self.state_bytes = sizes
end

--- Checkpoint `pending` failed (declined, expired, or abandoned when the
-- job failed or stopped) with reason (a message, or nil).
function History:failed(pending, reason)
  local entry = pending.stats
  if not entry or entry.status ~= "in_progress" then return end
  entry.status = "failed"
  entry.failure = reason or "the job stopped before it completed"
  entry.duration_ms = core.monotonic_ms() - pending.start_ms
  self.counts.failed = self.counts.failed + 1
end

--- The bytes of operator uid's state, subtask `subtask`, in the last
-- completed checkpoint (its own files and every shared file it
-- references), or nil when that checkpoint holds none.
function History:state_size(uid, subtask)
  return self.state_bytes[uid .. "/" .. tostring(subtask)]
end

--- The job failed with cause (a message); restart is the number of the
-- restart it leads to, or nil when the job gives up.
function History:exception(cause, restart)
  append(self.exceptions, { time_ms = core.time_ms(), cause = cause,
    worker = tonumber(cause:match("^worker (%d+)")), restart = restart })
end

-- A copy of list, newest first.
local function newest_first(list)
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = list[i] end
  return out
end

--- The checkpoint history as GET /api/v1/jobs/<name>/checkpoints answers
-- it: { counts = { completed, failed, in_progress }, history = { entry,
-- newest first } }.
function History:checkpoints_json()
  local in_progress = 0
  for _, e in ipairs(self.checkpoints) do
    if e.status == "in_progress" then in_progress = in_progress + 1 end
  end
  return { counts = { completed = self.counts.completed,
    failed = self.counts.failed, in_progress = in_progress },
    history = newest_first(self.checkpoints) }
end

--- The exception history as GET /api/v1/jobs/<name>/exceptions answers
-- it: { exceptions = { { time_ms, cause, worker, restart }, newest
-- first } }.
function History:exceptions_json()
  return { exceptions = newest_first(self.exceptions) }
end

return M
