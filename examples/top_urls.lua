-- Top URLs: the five most requested paths of a web site in every five
-- minutes, updated every minute, from an Apache access log (combined log
-- format).
--   weir run examples/top_urls.lua LOGFILE OUTDIR
--   weir run examples/top_urls.lua spec/fixtures/apache_logs_slice.log \
--     out/top_urls
--
-- OUTDIR/part-* holds, per window, up to five tab-separated lines: window
-- start and end (UTC), rank, path (without the query string) and number
-- of requests; most requests first, equal counts by path, so the output
-- does not depend on the order of the log. On the 10,000-line log of
-- elastic/examples, for instance:
--   2015-05-17T10:05\t2015-05-17T10:10\t1\t/favicon.ico\t6
-- (That log has requests only in minute 5 of each hour, so the five
-- windows around such a minute hold the same requests.)
-- Lines not in the combined log format are skipped by a filter.
local weir = require "weir"

-- host ident user [time] "method path?query protocol" status bytes
-- "referer" "user agent".
local COMBINED = '^%S+ %S+ %S+ %[([^%]]*)%] "%S+ ([^%s?]*)%S* [^"]*" '
  .. '%d%d%d %S+ "[^"]*" "[^"]*"$'

local MINUTE = 60 * 1000

-- Formats ms since the epoch as a UTC minute, 2015-05-17T10:05.
local function minute(ms)
  return os.date("!%Y-%m-%dT%H:%M", ms / 1000)
end

-- Orders counts by number of requests, most first, then by path.
local function more_requests(a, b)
  if a.n ~= b.n then return a.n > b.n end
  return a.path < b.path
end

local p = weir.pipeline { name = "top_urls" }
p:read_lines(arg[1]):uid("lines")
  :filter(function(line) return line:match(COMBINED) ~= nil end)
  :map(function(line)
    local time, path = line:match(COMBINED)
    return { ts = weir.time.parse_clf(time), path = path }
  end)
  -- The log is in order by minute but not within a minute, so the
  -- watermark trails the latest time seen by a minute.
  :with_timestamps(function(request) return request.ts end,
    { max_out_of_orderness = MINUTE }):uid("timestamps")
  :key_by(function(request) return request.path end)
  :window(weir.sliding(5 * MINUTE, MINUTE))
  :aggregate {
    init = function() return 0 end,
    add = function(n) return n + 1 end,
    -- With merge, weir counts each minute once and adds up the five
    -- minutes of a window when it fires.
    merge = function(a, b) return a + b end,
    result = function(n, ctx)
      return { from = ctx.window.start, to = ctx.window["end"],
               path = ctx.key, n = n }
    end,
  }:uid("counts")
  -- A window's counts carry its last millisecond as their timestamp, so
  -- those of a window ending at minute m all fall in the one-minute window
  -- before m, which fires once they are all there.
  :key_by(function(count) return count.from end)
  :window(weir.tumbling(MINUTE))
  :apply(function(ctx, counts)
    table.sort(counts, more_requests)
    for rank = 1, math.min(5, #counts) do
      local c = counts[rank]
      ctx:emit(string.format("%s\t%s\t%d\t%s\t%d", minute(c.from),
        minute(c.to), rank, c.path, c.n))
    end
  end):uid("top5")
  :write_lines(arg[2]):uid("output")
p:run()
