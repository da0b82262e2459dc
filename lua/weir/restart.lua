--- Restart strategies: how often and how soon a failed job is restarted
-- from its newest complete checkpoint (the strategies Flink offers).
-- A strategy object answers next_delay(now_ms) with the delay in ms before
-- the next restart, or nil when the job must give up.
local M = {}

local function check(name, spec, fields)
  if type(spec) ~= "table" then
    error(name .. ": expected a table of options", 3)
  end
  for field, default in pairs(fields) do
    local v = spec[field]
    if v == nil then v = default end
    if type(v) ~= "number" or v < 0 or v ~= v then
      error(string.format("%s: %s must be a number >= 0", name, field), 3)
    end
    spec[field] = v
  end
  return spec
end

--- Restarts up to `attempts` times, `delay_ms` apart.
function M.fixed_delay(spec)
  spec = check("fixed_delay", spec or {}, { attempts = 3, delay_ms = 1000 })
  spec.kind = "fixed_delay"
  return spec
end

--- Restarts without limit, the delay growing from initial_ms by
-- `multiplier` per restart up to max_ms.
function M.exponential_delay(spec)
  spec = check("exponential_delay", spec or {},
    { initial_ms = 1000, max_ms = 60000, multiplier = 2 })
  spec.kind = "exponential_delay"
  return spec
end

--- Restarts after delay_ms unless more than max_failures failures fall
-- within interval_ms.
function M.failure_rate(spec)
  spec = check("failure_rate", spec or {},
    { max_failures = 3, interval_ms = 60000, delay_ms = 1000 })
  spec.kind = "failure_rate"
  return spec
end

--- Never restarts: the first failure fails the job.
function M.none()
  return { kind = "none" }
end

--- The default: three restarts, a second apart.
M.default = M.fixed_delay { attempts = 3, delay_ms = 1000 }

--- Returns a strategy object for a spec made by the functions above.
function M.strategy(spec)
  spec = spec or M.default
  local s = { failures = {}, restarts = 0 }
  function s:next_delay(now)
    self.restarts = self.restarts + 1
    if spec.kind == "none" then return nil end
    if spec.kind == "fixed_delay" then
      if self.restarts > spec.attempts then return nil end
      return spec.delay_ms
    end
    if spec.kind == "exponential_delay" then
      return math.min(spec.max_ms,
        spec.initial_ms * spec.multiplier ^ (self.restarts - 1))
    end
    local recent = {}
    for _, t in ipairs(self.failures) do
      if now - t <= spec.interval_ms then recent[#recent + 1] = t end
    end
    recent[#recent + 1] = now
    self.failures = recent
    if #recent > spec.max_failures then return nil end
    return spec.delay_ms
  end
  return s
end

--- The line that announces a restart: cause (one line), the delay before
-- it (ms) and its number (1 for the first).
function M.restarting_message(cause, delay_ms, restarts)
  return string.format("%s; restarting from the newest complete "
    .. "checkpoint in %d ms (restart %d)", cause, delay_ms, restarts)
end

--- The error of a job the strategy gave up on after `restarts` restarts:
-- cause, and the checkpoint that stays for --restore latest (lineage:
-- weir.launch.prepare's, whose `last` is the newest checkpoint the run
-- completed and `base` the one it started from), if any.
function M.give_up_message(cause, restarts, lineage)
  local kept = lineage.last or lineage.base
  return string.format("%s (no restart left after %d restart%s; %s)", cause,
    restarts, restarts == 1 and "" or "s", kept and "the last complete "
      .. "checkpoint stays for --restore latest" or "no checkpoint was "
      .. "completed, so --restore latest would start from the beginning")
end

return M
