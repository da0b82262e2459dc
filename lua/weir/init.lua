--- weir: stream processing with exactly-once state, pipelines in Lua.
--   local weir = require "weir"
--   local p = weir.pipeline { name = "wordcount" }
--   p:read_lines("in.txt"):map(string.upper):write_lines("out")
--   p:run()
local pipeline = require "weir.pipeline"

local M = {}

M.version = "0.1.0"

--- Creates a pipeline; see weir.pipeline for its options and operators.
M.pipeline = pipeline.pipeline

return M
