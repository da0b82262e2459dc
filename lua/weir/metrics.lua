--- Metrics of a running job: per-subtask records in and out, rates, time
-- backpressured, the last alignment and how far a bounded file input is
-- read, plus the last checkpoint. The coordinator gathers the hosts'
-- samples once a second, appends them as a JSON line (weir.json) to the
-- metrics file (--metrics FILE) and, on a terminal, keeps a live status
-- line on stderr.
local core = require "weir.core"
local errors = require "weir.errors"
local json = require "weir.json"

local M = {}

M.INTERVAL_MS = 1000  -- time between samples

local Reporter = {}
Reporter.__index = Reporter

M.STATUS_LOG_MS = 10000  -- time between status log lines
M.RATE_SAMPLES = 10      -- reports the input's read rate (for ETA) spans

-- A duration of seconds as the status line gives it: "14 s", "3 min 20 s"
-- or "2 h 5 min", rounded up.
local function duration_text(seconds)
  local s = math.ceil(seconds)
  if s < 60 then return string.format("%d s", s) end
  if s < 3600 then
    return string.format("%d min %d s", math.floor(s / 60), s % 60)
  end
  return string.format("%d h %d min", math.floor(s / 3600),
    math.floor(s % 3600 / 60))
end

--- The status line's progress of a bounded input, read of total bytes
-- (total > 0) at bytes_per_s (nil or 0 while there is no rate): e.g.
-- "input 41% (12.3 of 30.0 MB, ETA 14 s)", in GB from 1 GB (10^9 bytes).
-- The percent rounds down, so 100% means all read; the ETA is left out
-- without a rate and once all is read.
function M.progress_text(read, total, bytes_per_s)
  local unit, scale = "MB", 1e6
  if total >= 1e9 then unit, scale = "GB", 1e9 end
  local text = string.format("input %d%% (%.1f of %.1f %s",
    math.floor(read * 100 / total), read / scale, total / scale, unit)
  if bytes_per_s and bytes_per_s > 0 and read < total then
    text = text .. ", ETA " .. duration_text((total - read) / bytes_per_s)
  end
  return text .. ")"
end

--- Creates a reporter for job `name`: path of the JSON-lines file (or
-- nil), and the status on stderr: "line" (a live status line, on a
-- terminal), "log" (the same as a log line every STATUS_LOG_MS) or nil.
function M.reporter(name, path, status)
  local now = core.monotonic_ms()
  local r = setmetatable({ name = name, samples = {}, last = {},
    status_line = status == "line", status_log = status == "log",
    logged_ms = now, start_ms = now, reads = {} }, Reporter)
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

-- The progress part of the status line ("input ...  ") for the bytes of
-- bounded inputs read of total at now (ms), its rate over the last
-- RATE_SAMPLES reports; "" without a bounded input.
function Reporter:input_text(read, total, now)
  if total == 0 then return "" end
  local reads = self.reads
  -- A restart reads again from its checkpoint: the rate starts over.
  if reads[1] and read < reads[#reads].read then
    reads = {}
    self.reads = reads
  end
  reads[#reads + 1] = { ms = now, read = read }
  if #reads > M.RATE_SAMPLES then table.remove(reads, 1) end
  local first, rate = reads[1], nil
  if now > first.ms then
    rate = (read - first.read) * 1000 / (now - first.ms)
  end
  return M.progress_text(read, total, rate) .. "  "
end

--- Writes one report: the JSON line and the status line. checkpoint is
-- the coordinator's last completed checkpoint ({ id, duration_ms,
-- size_bytes }) or nil.
function Reporter:tick(checkpoint)
  local now = core.monotonic_ms()
  local tasks, source_rate, backpressure = {}, 0, 0
  local bytes_read, bytes_total = 0, 0
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
      if s.bytes_total then
        bytes_read = bytes_read + s.bytes_read
        bytes_total = bytes_total + s.bytes_total
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
  local status = string.format("%s  %.0f records/s from sources  %s"
    .. "backpressure %.0f%%  %s", self.name, source_rate,
    self:input_text(bytes_read, bytes_total, now), backpressure * 100,
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
