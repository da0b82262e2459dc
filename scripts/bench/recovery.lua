-- For scripts/bench-parallel: word count at parallelism 2 that restarts at
-- once after a failure and appends, in each worker run, the wall-clock ms
-- of its first record to MARKS.
--   weir run --parallelism 2 scripts/bench/recovery.lua INPUT OUTDIR MARKS
local weir = require "weir"
local core = require "weir.core"

local marked = false
local p = weir.pipeline { name = "bench_recovery", checkpoint_interval = 500,
  restart = weir.fixed_delay { attempts = 10, delay_ms = 0 } }
p:read_lines(arg[1]):uid("lines")
  :flat_map(function(line, emit)
    if not marked then
      marked = true
      local f = io.open(arg[3], "a")
      f:write(string.format("%.0f\n", core.time_ms()))
      f:close()
    end
    for w in line:gmatch("%a+") do emit(w:lower()) end
  end)
  :key_by(function(word) return word end)
  :process(function(ctx) ctx.state.n = (ctx.state.n or 0) + 1 end,
    { finish = function(ctx) ctx:emit(ctx.key .. "\t" .. ctx.state.n) end })
  :uid("counts")
  :write_lines(arg[2]):uid("output")
p:run()
