-- Pushes the lines of a file into a Redis stream, one entry { line = ... }
-- per line, exactly once (a restored run adds no line twice).
--   weir run examples/redis_push_lines.lua FILE [URL [STREAM]]
--   weir run examples/redis_push_lines.lua \
--     spec/fixtures/apache_logs_slice.log redis://127.0.0.1:6379 access
local weir = require "weir"

local p = weir.pipeline { name = "redis_push_lines", parallelism = 1 }
p:read_lines(arg[1]):uid("lines")
  :write_redis_stream({ url = arg[2] or "redis://127.0.0.1:6379",
    stream = arg[3] or "access",
    fields = function(line) return { line = line } end }):uid("entries")
p:run()
