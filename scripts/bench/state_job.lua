-- The keyed state of scripts/bench-state: RECORDS numbers keyed into KEYS
-- distinct keys, each key keeping a count and the last value; results
-- discarded.
--   weir run scripts/bench/state_job.lua RECORDS KEYS
local weir = require "weir"
local n, keys = tonumber(arg[1]), tonumber(arg[2])
local p = weir.pipeline { name = "bench_state" }
p:sequence(1, n):uid("numbers")
  :key_by(function(x) return x % keys end)
  :process(function(ctx, x)
    local s = ctx.state
    s.count = (s.count or 0) + 1
    s.last = x
  end):uid("state")
  :discard()
p:run()
