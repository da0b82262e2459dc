-- The keyed state of scripts/bench-state: RECORDS numbers keyed into KEYS
-- distinct keys, each key keeping a count and the last value; results
-- discarded. With HOT, the records after the first KEYS go to HOT keys
-- only: KEYS cold keys, then a few hot ones (what incremental
-- checkpoints are for).
--   weir run scripts/bench/state_job.lua RECORDS KEYS [HOT]
local weir = require "weir"
local n, keys = tonumber(arg[1]), tonumber(arg[2])
local hot = tonumber(arg[3])
local p = weir.pipeline { name = "bench_state" }
p:sequence(1, n):uid("numbers")
  :key_by(hot and function(x)
      if x <= keys then return x end
      return x % hot
    end or function(x) return x % keys end)
  :process(function(ctx, x)
    local s = ctx.state
    s.count = (s.count or 0) + 1
    s.last = x
  end):uid("state")
  :discard()
p:run()
