--- Watermarks per split (a Kafka partition, a Redis stream) inside one
-- source subtask, combined into the subtask's own: the smallest
-- watermark of the splits that are not idle (Flink's
-- WatermarkOutputMultiplexer under its Kafka source). A split's
-- watermark is its largest timestamp - max_out_of_orderness - 1; a split
-- with no record for idle_timeout ms is idle and holds nothing back until
-- its next record; once every split is idle, so is the subtask. So the
-- records of a partition that lags behind another are not late just
-- because the subtask read the other first.
local M = {}

local NONE = -math.huge

local Splits = {}
Splits.__index = Splits

--- A combiner for one source subtask.
-- @param emit_watermark env.emit_watermark of the source (w [, status])
-- @param opts { max_out_of_orderness = ms (default 0), idle_timeout =
--   ms or nil (never idle), now_ms = clock in ms }
function M.new(emit_watermark, opts)
  return setmetatable({ emit_watermark = emit_watermark, splits = {},
    ooo = opts.max_out_of_orderness or 0, idle_timeout = opts.idle_timeout,
    now_ms = opts.now_ms, current = NONE, idle = false }, Splits)
end

--- Split `name` belongs to this subtask, with the largest timestamp a
-- checkpoint recorded for it (or none).
function Splits:add(name, max_ts)
  self.splits[name] = { max_ts = max_ts or NONE, last_ms = self.now_ms(),
    idle = false }
end

-- Emits the combined watermark if it went up, and the subtask's idleness
-- when it changed.
function Splits:update()
  local low, any = math.huge, false
  for _, s in pairs(self.splits) do
    if not s.idle then
      any = true
      local w = s.max_ts == NONE and NONE or s.max_ts - self.ooo - 1
      if w < low then low = w end
    end
  end
  if not any then
    if not self.idle and next(self.splits) then
      self.idle = true
      self.emit_watermark(self.current, "idle")
    end
    return
  end
  if self.idle then
    self.idle = false
    self.emit_watermark(self.current, "active")
  end
  if low > self.current then
    self.current = low
    self.emit_watermark(low)
  end
end

--- A record of split `name` with timestamp ts (ms) was emitted.
function Splits:record(name, ts)
  local s = self.splits[name]
  s.last_ms = self.now_ms()
  local was_idle = s.idle
  s.idle = false
  if ts > s.max_ts then
    s.max_ts = ts
    if ts - self.ooo - 1 > self.current or was_idle then self:update() end
  elseif was_idle then
    self:update()
  end
end

--- Marks the splits without a record for idle_timeout ms idle (call it
-- at every step of the source), the one silent longest first: the others
-- were still active when it turned idle, so their watermark goes out
-- before they turn idle too.
function Splits:check()
  if not self.idle_timeout then return end
  local now, due = self.now_ms(), {}
  for _, s in pairs(self.splits) do
    if not s.idle and now - s.last_ms >= self.idle_timeout then
      due[#due + 1] = s
    end
  end
  table.sort(due, function(a, b) return a.last_ms < b.last_ms end)
  for _, s in ipairs(due) do
    s.idle = true
    self:update()
  end
end

--- The largest timestamp of split `name`, for its checkpoint.
function Splits:max_ts(name)
  local s = self.splits[name]
  return s and s.max_ts ~= NONE and s.max_ts or nil
end

return M
