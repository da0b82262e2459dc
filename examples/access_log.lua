-- Access log: how many requests each HTTP status code and each client IP
-- account for in an Apache access log (combined log format).
--   weir run examples/access_log.lua LOGFILE OUTDIR
--   weir run examples/access_log.lua spec/fixtures/apache_logs_slice.log \
--     out/access_log
--
-- OUTDIR/part-* holds one tab-separated line per count (\t is a tab); on
-- the 10,000-line log of elastic/examples, for instance:
--   status\t200\t9125       requests answered with HTTP status 200
--   ip\t83.149.9.216\t23    requests from the client 83.149.9.216
--   malformed\t1            lines not in the combined log format
-- The malformed line appears only if some line failed to parse: such lines
-- are counted rather than dropped, so that bad input shows in the output.
local weir = require "weir"

-- host ident user [time] "request" status bytes "referer" "user agent".
-- Anchoring both ends rejects a line cut short, such as one whose user
-- agent lost its closing quote.
local COMBINED = '^(%S+) %S+ %S+ %[[^%]]*%] "[^"]*" (%d%d%d) %S+ '
  .. '"[^"]*" "[^"]*"$'

local p = weir.pipeline { name = "access_log" }
p:read_lines(arg[1]):uid("lines")
  :flat_map(function(line, emit)
    local ip, status = line:match(COMBINED)
    if ip then
      emit("status\t" .. status)
      emit("ip\t" .. ip)
    else
      emit("malformed")
    end
  end)
  :key_by(function(what) return what end)
  :process(function(ctx) ctx.state.n = (ctx.state.n or 0) + 1 end, {
    finish = function(ctx) ctx:emit(ctx.key .. "\t" .. ctx.state.n) end,
  }):uid("counts")
  :write_lines(arg[2]):uid("output")
p:run()
