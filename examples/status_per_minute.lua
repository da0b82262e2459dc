-- Status per minute: how many requests each HTTP status code accounts for
-- in each minute of an Apache access log (combined log format), the minute
-- being the one the request was logged at (event time), not the one weir
-- read it at.
--   weir run examples/status_per_minute.lua LOGFILE OUTDIR
--   weir run examples/status_per_minute.lua \
--     spec/fixtures/apache_logs_slice.log out/status_per_minute
--
-- With "follow", LOGFILE may be a glob such as 'logs/*.log' whose files
-- are read as they grow (a log directory with rotation), until
-- `weir cancel status_per_minute`, which reads them to their ends, counts
-- the minutes still open and finishes:
--   weir run --checkpoint-interval 1000 examples/status_per_minute.lua \
--     'logs/*.log' out/status_per_minute follow
--
-- OUTDIR/part-* holds one tab-separated line per minute (UTC) and status;
-- on the 10,000-line log of elastic/examples, for instance:
--   2015-05-17T10:05\t200\t73     73 requests answered 200 at 10:05
-- (That log has requests only in minute 5 of each hour.)
-- Lines not in the combined log format are skipped by a filter (that log
-- has one, cut short in its user agent).
--
-- Requests need not come in time order: the watermark trails the latest
-- time seen by a minute (max_out_of_orderness), and a minute is counted
-- once the watermark passes its end. A request that comes after its
-- minute was counted is written to OUTDIR/late rather than lost. (That
-- log is in order by minute and shuffled only within a minute, so none
-- of its requests is late.)
local weir = require "weir"

-- host ident user [time] "request" status bytes "referer" "user agent".
local COMBINED = '^%S+ %S+ %S+ %[([^%]]*)%] "[^"]*" (%d%d%d) %S+ '
  .. '"[^"]*" "[^"]*"$'

local MINUTE = 60 * 1000

-- Formats ms since the epoch as a UTC minute, 2015-05-17T10:05.
local function minute(ms)
  return os.date("!%Y-%m-%dT%H:%M", ms / 1000)
end

-- Which records are late depends on the order they are read in. One
-- reader (parallelism 1) reads the file in order; parallel readers would
-- each read a part, and the slowest part would hold the watermark back.
local p = weir.pipeline { name = "status_per_minute", parallelism = 1 }
local counts = p:read_lines(arg[1], { follow = arg[3] == "follow" })
  :uid("lines")
  :filter(function(line) return line:match(COMBINED) ~= nil end)
  :map(function(line)
    local time, status = line:match(COMBINED)
    return { ts = weir.time.parse_clf(time), status = status }
  end)
  :with_timestamps(function(request) return request.ts end,
    { max_out_of_orderness = MINUTE }):uid("timestamps")
  :key_by(function(request) return request.status end)
  :window(weir.tumbling(MINUTE))
  :aggregate {
    init = function() return 0 end,
    add = function(n) return n + 1 end,
    result = function(n, ctx)
      return minute(ctx.window.start) .. "\t" .. ctx.key .. "\t" .. n
    end,
  }:uid("counts")
counts:write_lines(arg[2]):uid("output")
counts:late():write_lines(arg[2] .. "/late", function(request)
  return os.date("!%Y-%m-%dT%H:%M:%S", request.ts / 1000) .. "\t"
    .. request.status
end):uid("late")
p:run()
