-- Status per minute from a Redis stream: examples/status_per_minute.lua
-- with Apache log lines read from the stream STREAM (entries { line =
-- ... }, as examples/redis_push_lines.lua adds them) and one entry
-- { minute, status, count } per minute and status added to the stream
-- status_per_minute, exactly once. Unbounded, it counts what comes until
-- `weir cancel redis_status_per_minute`; with "bounded" it counts what the
-- stream holds when the job starts, then ends.
--   weir run examples/redis_status_per_minute.lua [URL [STREAM [bounded]]]
--   redis-cli XRANGE status_per_minute - + COUNT 3
local weir = require "weir"

local COMBINED = '^%S+ %S+ %S+ %[([^%]]*)%] "[^"]*" (%d%d%d) %S+ '
  .. '"[^"]*" "[^"]*"$'
local MINUTE = 60 * 1000
local url = arg[1] or "redis://127.0.0.1:6379"

local p = weir.pipeline { name = "redis_status_per_minute", parallelism = 1 }
p:read_redis_stream({ url = url, stream = arg[2] or "access",
    bounded = arg[3] == "bounded" }):uid("access")
  :map(function(entry) return entry.fields.line or "" end)
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
      return { minute = os.date("!%Y-%m-%dT%H:%M", ctx.window.start / 1000),
        status = ctx.key, count = n }
    end,
  }:uid("counts")
  :write_redis_stream({ url = url, stream = "status_per_minute" })
  :uid("output")
p:run()
