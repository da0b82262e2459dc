-- Machine temperature: the average temperature of a sensor per hour of
-- event time, with the readings that came too late kept apart.
--   weir run examples/temperature.lua CSVFILE OUTDIR \
--     [MAX_OUT_OF_ORDERNESS_MS [WINDOW_MS]]
--   weir run examples/temperature.lua spec/fixtures/nab_temperature_slice.csv \
--     out/temperature
--
-- CSVFILE holds "timestamp,value" rows with UTC times, as NAB's
-- machine_temperature_system_failure.csv does. The results:
--   OUTDIR/averages/part-*  one line per window (\t is a tab): its start,
--                           the average temperature and the readings in it
--                           2014-01-07 02:00\t93.940\t24
--   OUTDIR/late/part-*      the rows whose window had already fired when
--                           they arrived, unchanged; the summary line of
--                           `weir run` counts them
--
-- That sensor's clock steps back 55 minutes on 2014-01-07, from 02:55 to
-- 02:00. Hourly windows (the default WINDOW_MS, 3600000) absorb it: the
-- 02:00 hour is still open and gets 24 readings. With 15-minute windows
-- (900000) and no out-of-orderness, the 02:00, 02:15 and 02:30 windows
-- have fired by then, so the nine repeated readings from 02:00 to 02:40
-- are late; a MAX_OUT_OF_ORDERNESS_MS of 3600000 waits for them instead.
local weir = require "weir"

local max_out_of_orderness_ms = tonumber(arg[3] or 0)
local window_ms = tonumber(arg[4] or 3600000)

-- Which records are late depends on the order they are read in. One
-- reader (parallelism 1) reads the file in order; parallel readers would
-- each read a part, and the slowest part would hold the watermark back.
local p = weir.pipeline { name = "temperature", parallelism = 1 }
local averages = p:read_lines(arg[1]):uid("lines")
  -- Skips the header, the one row that does not start with a date.
  :filter(function(row) return row:match("^%d") end)
  :with_timestamps(function(row)
    return weir.time.parse_iso(row:match("^[^,]*"))
  end, { max_out_of_orderness = max_out_of_orderness_ms }):uid("timestamps")
  -- The file holds a single sensor, so all its readings share one key.
  :key_by(function() return "machine" end)
  :window(weir.tumbling(window_ms))
  :aggregate {
    init = function() return { sum = 0, n = 0 } end,
    add = function(acc, row)
      acc.sum = acc.sum + tonumber(row:match(",(.*)$"))
      acc.n = acc.n + 1
      return acc
    end,
    result = function(acc, ctx)
      return string.format("%s\t%.3f\t%d",
        os.date("!%Y-%m-%d %H:%M", ctx.window.start / 1000),
        acc.sum / acc.n, acc.n)
    end,
  }:uid("averages")
averages:write_lines(arg[2] .. "/averages"):uid("output")
averages:late():write_lines(arg[2] .. "/late"):uid("late")
p:run()
