-- A Kafka mock cluster in a process of its own (librdkafka's, through
-- weir.core), for the Kafka specs: creates the topics given as NAME:PARTITIONS,
-- writes its bootstrap servers to FILE, then serves until killed.
--   luajit spec/kafka_mock.lua FILE NAME:PARTITIONS ...
package.cpath = "build/lib/?.so;" .. package.cpath
local core = require "weir.core"
local mock = assert(core.kafka_mock(1))
for i = 2, #arg do
  local name, n = arg[i]:match("^(.+):(%d+)$")
  assert(mock:create_topic(name, tonumber(n)))
end
local f = assert(io.open(arg[1] .. ".tmp", "w"))
f:write(mock:bootstraps(), "\n")
f:close()
os.rename(arg[1] .. ".tmp", arg[1])
local t = core.timer(function() end)
t:start(1000, 1000)
core.run()
