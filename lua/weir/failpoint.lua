--- Failpoints: named steps where a fault-injection test can make the
-- process crash. With WEIR_FAILPOINT="NAME[:N]" in the environment, the
-- N-th time (default: the first) this process reaches step NAME it kills
-- itself with SIGKILL, as kill -9 at that moment would. Without the
-- variable a failpoint costs one comparison.
--
-- Steps: checkpoint.before_manifest (every state file of a checkpoint is
-- durable, its manifest not yet written), checkpoint.after_manifest (the
-- manifest is durable; sinks not yet told to commit, retention not yet
-- applied), removal.after_manifest (a checkpoint being removed -- by
-- retention, or aborted -- lost its manifest, its files are still there),
-- removal.mid_files (one of its files is removed, the others not).
local core = require "weir.core"

local M = {}

local name, count
do
  local spec = os.getenv("WEIR_FAILPOINT")
  if spec then
    name, count = spec:match("^([%w_.]+):?(%d*)$")
    count = tonumber(count) or 1
  end
end

--- Marks step `step`; crashes the process when WEIR_FAILPOINT names it
-- and this is its N-th time.
function M.hit(step)
  if step ~= name then return end
  count = count - 1
  if count == 0 then
    io.stderr:write("weir: failpoint ", step, " reached; crashing\n")
    core.crash()
  end
end

return M
