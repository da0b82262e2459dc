--- Choosing the checkpoint a job restores from, for its coordinator
-- (weir.coordinator): on a restart after a failure the newest intact
-- checkpoint of the run's own lineage, else as the restore option says
-- (the newest of any run, or a path); verified, and checked to fit the
-- job (max parallelism, operators and their kinds) before any state is
-- read from it.
local checkpoint = require "weir.checkpoint_storage"
local core = require "weir.core"
local errors = require "weir.errors"

local M = {}

local function warn(msg) errors.warn(msg) end

local function restore_error(fmt, ...)
  error(string.format(fmt, ...), 0)
end

-- The checkpoint a restart of this run restores: the newest intact one
-- of its lineage (those it took, carrying its run_id), else the one the
-- run started from, else none (the run starts over). A run never fails
-- over onto a checkpoint of an earlier run of the same job, as each Flink
-- run has a job id of its own.
local function lineage_point(self, open)
  local lineage = self.job.lineage
  local loaded = checkpoint.find_latest(self.job_dir, warn, open,
    lineage.run_id)
  if loaded then return loaded end
  -- A run continued from etcd's record (weir.ha) that had completed a
  -- checkpoint must not start over: its output was committed.
  local leader = lineage.adopted and self.job.leader
  local hint = leader and string.format("; this run was continued from "
    .. "etcd's record of an unfinished run of the job (%s): to start a "
    .. "new run instead, add --ha-new-run (and --restore PATH|latest to "
    .. "start it from a snapshot)", leader.lineage_key) or ""
  if leader and lineage.last then
    restore_error("cannot continue run %s: no intact checkpoint of it is "
      .. "left in %s (its last was %s)%s", lineage.run_id, self.job_dir,
      lineage.last, hint)
  end
  if not lineage.base then return nil end
  local err
  loaded, err = open(lineage.base)
  if not loaded then
    restore_error("cannot restore from %s, where this run started: %s%s",
      lineage.base, err, hint)
  end
  return loaded
end

--- Finds the checkpoint to restore, verified, and checks it fits the job
-- from its manifest: on a restart after a failure, the newest of this
-- run's lineage (see lineage_point); otherwise as options.restore says,
-- "latest" (the newest intact checkpoint of any run) or a path. Returns
-- it, loaded with its state (see weir.checkpoint_storage.load) unless
-- without_state (workers load their own), or nil when there is nothing to restore.
-- Raises when a path given cannot be restored or does not fit the job.
function M.point(self, without_state)
  local what = self.options.restore
  local lineage = self.job.lineage
  -- After a failure, or continuing a run taken over (weir.ha).
  if lineage.restarts > 0 or lineage.adopted then what = "lineage" end
  if not what then return nil end
  local open = without_state and checkpoint.open_verified or checkpoint.load
  local loaded, err
  if what == "lineage" then
    loaded = lineage_point(self, open)
    if not loaded then
      errors.note("no checkpoint of this run completed yet; starting from "
        .. "the beginning")
      return nil
    end
  elseif what == "latest" then
    loaded = checkpoint.find_latest(self.job_dir, warn, open)
    if not loaded then
      warn(string.format("no complete checkpoint in %s; starting from the "
        .. "beginning", self.job_dir))
      return nil
    end
  else
    if not core.stat(what) then
      restore_error("cannot restore from %s: no such checkpoint or "
        .. "savepoint directory (--restore latest picks the newest "
        .. "checkpoint under --checkpoint-dir)", what)
    end
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
  if lineage.restarts == 0 then lineage.base = loaded.path end
  errors.note(string.format("restoring %s (checkpoint %d%s, taken %s)",
    loaded.path, m.id, m.savepoint and ", a savepoint" or "",
    os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor((m.time_ms or 0) / 1000))))
  -- Checkpoint ids go on from the restored one, so they never repeat one
  -- the restored state has seen (a savepoint may come from elsewhere).
  self.next_id = math.max(self.next_id, m.id + 1)
  return loaded
end

return M
