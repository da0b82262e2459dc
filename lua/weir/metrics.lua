--- Metrics of a running job: per-subtask records in and out, rates, time
-- backpressured and the last alignment, plus the last checkpoint. The
-- coordinator gathers the hosts' samples once a second, appends them as a
-- JSON line (weir.json) to the metrics file (--metrics FILE) and, on a
-- terminal, keeps a live status line on stderr.
local core = require "weir.core"
local errors = require "weir.errors"
local json = require "weir.json"

local M = {}

M.INTERVAL_MS = 1000  -- time between samples

local Reporter = {}
Reporter.__index = Reporter

M.STATUS_LOG_MS = 10000  -- time between status log lines

--- Creates a reporter for job `name`: path of the JSON-lines file (or
-- nil), and the status on stderr: "line" (a live status line, on a
-- terminal), "log" (the same as a log line every STATUS_LOG_MS) or nil.
function M.reporter(name, path, status)
  local now = core.monotonic_ms()
  local r = setmetatable({ name = name, samples = {}, last = {},
    status_line = status == "line", status_log = status == "log",
    logged_ms = now, start_ms = now }, Reporter)
  if path then
    local f, err = io.open(path, "ab")
    if not f then error("--metrics: cannot open " .. err, 0) end
    r.file = f
  end
  return r
end

--- Replaces the samples of one host (a list from weir.host Host:metrics()).
function Reporter:update(host, samples)
  self.samples[host] = samples
end

--- Writes one report: the JSON line and the status line. checkpoint is
-- the coordinator's last completed checkpoint ({ id, duration_ms,
-- size_bytes }) or nil.
function Reporter:tick(checkpoint)
  local now = core.monotonic_ms()
  local tasks, source_rate, backpressure = {}, 0, 0
  for _, samples in pairs(self.samples) do
    for _, s in ipairs(samples) do
      local prev = self.last[s.task]
      local dt = prev and (now - prev.ms) / 1000 or nil
      s.records_in_per_s = dt and dt > 0
        and (s.records_in - prev.records_in) / dt or 0
      local bp = dt and dt > 0
        and (s.backpressured_ms - prev.backpressured_ms) / (dt * 1000) or 0
      s.backpressured_share = math.min(1, math.max(0, bp))
      backpressure = math.max(backpressure, s.backpressured_share)
      if s.source then
        source_rate = source_rate + s.records_in_per_s
      end
      self.last[s.task] = { ms = now, records_in = s.records_in,
        backpressured_ms = s.backpressured_ms }
      tasks[#tasks + 1] = s
    end
  end
  table.sort(tasks, function(a, b) return a.task < b.task end)
  if self.file then
    self.file:write(json.encode({ job = self.name, time_ms = core.time_ms(),
      tasks = tasks, last_checkpoint = checkpoint }), "\n")
    self.file:flush()
  end
  local status = string.format("%s  %.0f records/s from sources  "
    .. "backpressure %.0f%%  %s", self.name, source_rate, backpressure * 100,
    checkpoint and string.format("last checkpoint chk-%d (%.0f ms: sync "
    .. "%.0f, async %.0f; %d bytes)", checkpoint.id, checkpoint.duration_ms,
    checkpoint.sync_ms or 0, checkpoint.async_ms or 0, checkpoint.size_bytes)
    or "no checkpoint yet")
  if self.status_line then
    io.stderr:write("\r\27[Kweir: ", status)
  elseif self.status_log and now - self.logged_ms >= M.STATUS_LOG_MS then
    self.logged_ms = now
    errors.note(status)
  end
end

--- Ends reporting: a last report, the status line cleared, the file
-- closed. Returns the records the sources read in total.
function Reporter:close(checkpoint)
  self:tick(checkpoint)
  if self.status_line then io.stderr:write("\r\27[K") end
  if self.file then self.file:close() self.file = nil end
  local total = 0
  for _, samples in pairs(self.samples) do
    for _, s in ipairs(samples) do
      if s.source then
        total = total + s.records_in
      end
    end
  end
  return total
end

return M
