-- For scripts/bench-parallel: every record crosses one channel between two
-- workers. The source runs in worker 0; all records carry one key whose
-- key group belongs to subtask 1, in worker 1.
--   weir run --parallelism 2 scripts/bench/channel.lua RECORDS
local weir = require "weir"
local key = require "weir.key"
local core = require "weir.core"

local target
for i = 1, 1000 do
  local k = "k" .. i
  if core.key_group_subtask(128, 2, key.key_group(k, 128)) == 1 then
    target = k
    break
  end
end

local p = weir.pipeline { name = "bench_channel", checkpoint_interval = 0 }
p:sequence(1, tonumber(arg[1])):parallelism(1):uid("numbers")
  :key_by(function() return target end)
  :process(function(ctx) end):uid("sink")
p:run()
