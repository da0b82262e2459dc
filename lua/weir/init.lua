--- weir: stream processing with exactly-once state, pipelines in Lua.
--   local weir = require "weir"
--   local p = weir.pipeline { name = "wordcount" }
--   p:read_lines("in.txt"):map(string.upper):write_lines("out")
--   p:run()
local pipeline = require "weir.pipeline"
local windows = require "weir.windows"

local M = {}

M.version = "0.1.0"

--- Creates a pipeline; see weir.pipeline for its options and operators.
M.pipeline = pipeline.pipeline

--- Window assigners for key_by(...):window(...): tumbling(size_ms),
-- sliding(size_ms, slide_ms), session(gap_ms). Raise on sizes <= 0 or a
-- slide larger than the size.
M.tumbling, M.sliding, M.session =
  windows.tumbling, windows.sliding, windows.session

--- Timestamp helpers: utc_ms(y, m, d, h, mi, s), parse_clf(apache_time),
-- parse_iso("YYYY-MM-DD HH:MM:SS"); see weir.time.
M.time = require "weir.time"

--- Reading snapshots: weir.snapshot.open(path) (see weir.snapshot).
M.snapshot = require "weir.snapshot"

--- Restart strategies for the `restart` option: fixed_delay{ attempts,
-- delay_ms }, exponential_delay{ initial_ms, max_ms, multiplier },
-- failure_rate{ max_failures, interval_ms, delay_ms }, none().
local restart = require "weir.restart"
M.fixed_delay, M.exponential_delay = restart.fixed_delay,
  restart.exponential_delay
M.failure_rate, M.none = restart.failure_rate, restart.none

return M
