--- Failpoints: named steps where a fault-injection test can make the
-- process crash, or make a write fail. With WEIR_FAILPOINT="NAME[:N]" in
-- the environment, the N-th time (default: the first) this process
-- reaches step NAME it kills itself with SIGKILL, as kill -9 at that
-- moment would. With WEIR_FAILPOINT="NAME[:N]=ENOSPC", the write of that
-- step fails instead, as on a full disk (only the steps marked "can
-- fail" below; elsewhere it is ignored). Worker processes inherit the
-- variable and count on their own. Without the variable a failpoint
-- costs one comparison.
--
-- Publishing a checkpoint:
--   checkpoint.mkdir (can fail): its chk-N directory is about to be made;
--   checkpoint.after_mkdir: it is made and durable, no state file yet;
--   checkpoint.state_file (can fail): a state file is durable, and the
--     subtask not yet acknowledged;
--   checkpoint.before_manifest: every state file is durable, no manifest;
--   checkpoint.manifest (can fail): the manifest is about to be written;
--   checkpoint.manifest_dir_fsync (can fail): the manifest is renamed
--     into place, and the fsync of its directory is reported as failed;
--   checkpoint.after_manifest: the manifest is durable; sinks not yet
--     told to commit, retention not yet applied;
--   final.before_manifest, final.after_manifest: the same two steps of
--     the final checkpoint (which the others do not count);
-- the write_lines sink (exactly-once files):
--   sink.pre_commit: an in-progress file is renamed pending, its
--     directory not yet fsynced;
--   sink.mid_commit: the first pending file a completed checkpoint covers
--     is renamed committed, any others not;
--   sink.after_commit: every file of a checkpoint is committed, the
--     directory not yet fsynced;
-- retention and removal:
--   retention.before: a checkpoint is complete, retention not yet begun;
--   removal.after_manifest: a checkpoint being removed (by retention, or
--     aborted) lost its manifest, its files are still there;
--   removal.mid_files: one of its files is removed, the others not;
--   removal.before_rmdir: its files are removed, the directory not;
-- incremental checkpoints (the RocksDB state backend):
--   shared.after_upload: a shared file of a checkpoint is durable in
--     <job>/shared/, its state files are not written;
--   shared.mid_collect: one shared file no complete checkpoint
--     references is deleted, any others not.
local core = require "weir.core"

local M = {}

local ERRORS = { ENOSPC = "no space left on device" }

local name, count, code
do
  local spec = os.getenv("WEIR_FAILPOINT")
  if spec then
    name, count, code = spec:match("^([%w_.]+):?(%d*)=?(%u*)$")
    count = tonumber(count) or 1
    if code == "" then code = nil end
  end
end

--- Marks step `step`. When WEIR_FAILPOINT names it and this is its N-th
-- time: crashes the process, or, with a code, returns the message of
-- that error (e.g. "no space left on device (failpoint step)"), which
-- the caller treats as its write's failure. Returns nil otherwise.
function M.hit(step)
  if step ~= name then return nil end
  count = count - 1
  if count ~= 0 then return nil end
  if code then
    io.stderr:write("weir: failpoint ", step, " reached; failing with ",
      code, "\n")
    return string.format("%s (failpoint %s)", ERRORS[code] or code, step)
  end
  io.stderr:write("weir: failpoint ", step, " reached; crashing\n")
  core.crash()
end

return M
