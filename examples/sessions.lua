-- Sessions: the visits of each client of a web site, from an Apache access
-- log (combined log format). A client's requests belong to one session
-- while each comes at most 30 minutes after the one before it.
--   weir run examples/sessions.lua LOGFILE OUTDIR
--   weir run examples/sessions.lua spec/fixtures/apache_logs_slice.log \
--     out/sessions
--
-- OUTDIR/part-* holds one tab-separated line per session: client IP, time
-- of its first request (UTC), number of requests, and seconds from the
-- first request to the last; on the 10,000-line log of elastic/examples,
-- for instance:
--   83.149.9.216\t2015-05-17T10:05:00\t23\t59
-- (That log has requests only in minute 5 of each hour, so none of its
-- sessions lasts longer than a minute.)
-- Lines not in the combined log format are skipped by a filter.
--
-- Each request opens a session window [t, t + 30 min); windows that
-- overlap or touch merge, so a request exactly 30 minutes after the
-- previous one continues its session.
local weir = require "weir"

-- host ident user [time] "request" status bytes "referer" "user agent".
local COMBINED = '^(%S+) %S+ %S+ %[([^%]]*)%] "[^"]*" %d%d%d %S+ '
  .. '"[^"]*" "[^"]*"$'

local MINUTE = 60 * 1000

local p = weir.pipeline { name = "sessions" }
p:read_lines(arg[1]):uid("lines")
  :filter(function(line) return line:match(COMBINED) ~= nil end)
  :map(function(line)
    local ip, time = line:match(COMBINED)
    return { ip = ip, ts = weir.time.parse_clf(time) }
  end)
  -- The log is in order by minute but not within a minute, so the
  -- watermark trails the latest time seen by a minute.
  :with_timestamps(function(request) return request.ts end,
    { max_out_of_orderness = MINUTE }):uid("timestamps")
  :key_by(function(request) return request.ip end)
  :window(weir.session(30 * MINUTE))
  :aggregate {
    init = function()
      return { n = 0, first = math.huge, last = -math.huge }
    end,
    add = function(s, request)
      return { n = s.n + 1, first = math.min(s.first, request.ts),
               last = math.max(s.last, request.ts) }
    end,
    -- A request that bridges two sessions joins them into one.
    merge = function(a, b)
      return { n = a.n + b.n, first = math.min(a.first, b.first),
               last = math.max(a.last, b.last) }
    end,
    result = function(s, ctx)
      return string.format("%s\t%s\t%d\t%d", ctx.key,
        os.date("!%Y-%m-%dT%H:%M:%S", s.first / 1000), s.n,
        (s.last - s.first) / 1000)
    end,
  }:uid("sessions")
  :write_lines(arg[2]):uid("output")
p:run()
