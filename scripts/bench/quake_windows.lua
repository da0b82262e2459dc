-- The pipeline of scripts/bench-windows's parallel part, run by weir run
-- at parallelism 1 and 2:
--   weir run scripts/bench/quake_windows.lua CATALOGUE OUTDIR session|daily
-- Counts the shocks of each network per 1-hour session window (session)
-- or per UTC day (daily) of the catalogue scripts/bench/quakes.lua
-- writes; OUTDIR/part-* holds "network<TAB>window start ms<TAB>count".
local weir = require "weir"

local input, output, kind = arg[1], arg[2], arg[3]
local HOUR, DAY = 3600000, 86400000
local assigner = ({ session = weir.session(HOUR),
                    daily = weir.tumbling(DAY) })[kind]
if not assigner then
  error("quake_windows.lua: the third argument must be session or daily, "
    .. "got " .. tostring(kind))
end

local p = weir.pipeline { name = "quake_windows_" .. kind }
p:read_lines(input):uid("lines")
  :map(function(line)
    local time, net = line:match("^([^,]+),[^,]*,[^,]*,[^,]*,[^,]*,(%w+)$")
    return { ts = weir.time.parse_iso(time), net = net }
  end)
  :with_timestamps(function(q) return q.ts end):uid("timestamps")
  :key_by(function(q) return q.net end)
  :window(assigner)
  :apply(function(ctx, quakes)
    ctx:emit(ctx.key .. "\t" .. ctx.window.start .. "\t" .. #quakes)
  end):uid("windows")
  :write_lines(output):uid("output")
p:run()
