-- The job of scripts/bench-state-recovery: RECORDS numbers keyed into KEYS
-- distinct keys (a count and the last value per key, results discarded),
-- restarting at once after a failure. Each source subtask emits a range
-- of consecutive numbers, so after its first KEYS records every key holds
-- state. Appends lines to MARKS: "filled SUBTASK MS" when a source subtask
-- has emitted KEYS records, "first PID MS" at the first record a process
-- (a worker, or one after a restart) handles; MS wall-clock.
--   weir run scripts/bench/state_recovery_job.lua RECORDS KEYS MARKS
local weir = require "weir"
local core = require "weir.core"

local n, keys, marks = tonumber(arg[1]), tonumber(arg[2]), arg[3]
local function mark(line)
  local f = assert(io.open(marks, "a"))
  f:write(line, " ", string.format("%.0f", core.time_ms()), "\n")
  f:close()
end

local p = weir.pipeline { name = "bench_state_recovery",
  restart = weir.fixed_delay { attempts = 10, delay_ms = 0 } }
local first, emitted = true, 0
p:sequence(1, n):uid("numbers")
  :map(function(x)
    if first then
      first = false
      mark("first " .. core.getpid())
    end
    emitted = emitted + 1
    if emitted == keys then mark("filled " .. core.getpid()) end
    return x
  end)
  :key_by(function(x) return x % keys end)
  :process(function(ctx, x)
    local s = ctx.state
    s.count = (s.count or 0) + 1
    s.last = x
  end):uid("state")
  :discard()
p:run()
