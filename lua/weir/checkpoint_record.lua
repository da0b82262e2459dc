--- The checkpoint record users see, one per complete checkpoint: what
-- `weir checkpoints` prints (a header of RECORD_FIELDS and a row each, or
-- JSON), and what benchmarks and specs read of a job directory.
local checkpoint = require "weir.checkpoint_storage"
local incremental = require "weir.incremental"

local M = {}

--- The fields of a checkpoint record (see M.describe), in order.
M.RECORD_FIELDS = { "id", "time", "size_bytes", "full_bytes", "sync_ms",
  "async_ms", "alignment_ms", "duration_ms" }

--- Describes the complete checkpoints of job_dir, newest first, one
-- checkpoint record each: { id = "chk-<n>", time = ISO 8601 UTC,
-- size_bytes = bytes it added to storage, full_bytes = bytes of every file
-- it references (more than size_bytes for an incremental checkpoint, whose
-- shared files earlier ones wrote: weir.incremental), sync_ms and
-- async_ms = its synchronous part and the writes after it, alignment_ms =
-- barrier alignment (each the largest over its tasks; 0 when the manifest
-- predates them), duration_ms = trigger to manifest, marker = "final",
-- "savepoint" or nil; path, time_ms }. Damaged manifests are reported
-- through warn(message).
function M.describe(job_dir, warn)
  local out = {}
  for _, c in ipairs(checkpoint.list(job_dir)) do
    if c.complete then
      local m, size = checkpoint.read_manifest(c.path)
      if m then
        local added, full = incremental.sizes(m.files)
        out[#out + 1] = { id = "chk-" .. c.id, path = c.path,
          time_ms = m.time_ms,
          time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(m.time_ms / 1000)),
          size_bytes = size + added, full_bytes = size + full,
          sync_ms = m.sync_ms or 0, async_ms = m.async_ms or 0,
          alignment_ms = m.alignment_ms or 0, duration_ms = m.duration_ms,
          marker = m.final and "final" or m.savepoint and "savepoint" or nil }
      else
        warn(string.format("checkpoint %s is damaged (%s)", c.path, size))
      end
    end
  end
  return out
end

return M
