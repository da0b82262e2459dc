-- scripts/bench-connectors, Kafka: records/s from a topic to another
-- through librdkafka's mock cluster (real Kafka protocol on loopback, no
-- broker is packaged), a bounded read_kafka copied by write_kafka
-- (transactional and not) against a plain librdkafka loop in the same
-- invocation doing the same reads and writes.
--   luajit scripts/bench/connectors_kafka.lua MESSAGES RUNS
package.path = "spec/?.lua;" .. package.path
io.stdout:setvbuf("line")
local core = require "weir.core"
local kh = require "kafka_helper"
local h = require "helpers"

local count, runs = tonumber(arg[1]) or 50000, tonumber(arg[2]) or 3

-- The mock keeps the last 5 MB of a partition (older messages are
-- dropped), about 90,000 of these messages.
if count > 80000 then
  io.stderr:write("bench-connectors: at most 80000 Kafka messages (the "
    .. "mock cluster keeps the last 5 MB of a partition)\n")
  os.exit(1)
end

if not kh.available() then
  io.stderr:write("bench-connectors: weir was built without librdkafka\n")
  os.exit(1)
end
local cluster = kh.start({ ["in"] = 1, out = 1 })
local dir = h.tmpdir()
local VALUE = string.rep("x", 40)

-- Waits for the consumer's next message, or 20 ms.
local function wait_a_little()
  local t = core.timer(function() end)
  t:start(20, 0)
  core.run_once()
  t:close()
end

-- Fills topic "in" (partition 0) with count messages: key n, 40 bytes.
local function fill()
  local p = assert(core.kafka_producer({ ["bootstrap.servers"] =
    cluster.brokers, ["linger.ms"] = "5" }))
  for n = 1, count do assert(p:produce("in", tostring(n), VALUE, 0)) end
  assert(p:flush(60000))
  p:close(1000)
end

-- The plain loop: a consumer of "in" from its start, each message
-- produced to "out" as it comes, flushed at the end.
local function plain_loop()
  local t0 = core.monotonic_ms()
  local c = assert(core.kafka_consumer({ ["bootstrap.servers"] =
    cluster.brokers }, function() end))
  local p = assert(core.kafka_producer({ ["bootstrap.servers"] =
    cluster.brokers, ["linger.ms"] = "5" }))
  assert(c:assign({ { "in", 0, -2 } }))
  local copied = 0
  while copied < count do
    local msgs = assert(c:poll(4096))
    for i = 1, #msgs do
      local m = msgs[i]
      assert(p:produce("out", m.key, m.value, 0))
    end
    copied = copied + #msgs
    if #msgs == 0 then wait_a_little() end
  end
  assert(p:flush(60000))
  local ms = core.monotonic_ms() - t0
  p:close(1000)
  c:close()
  return ms
end

-- The weir job: read_kafka (bounded) -> write_kafka.
local function job(transactional, interval)
  local script = dir .. "/copy.lua"
  h.write_file(script, string.format([[
local weir = require "weir"
local p = weir.pipeline { name = "bench_kafka" }
p:read_kafka({ brokers = %q, topic = "in", bounded = true }):uid("in")
  :write_kafka({ brokers = %q, topic = "out", transactional = %s,
    key = function(m) return m.key end,
    value = function(m) return m.value end }):uid("out")
p:run()
]], cluster.brokers, cluster.brokers, tostring(transactional)))
  local t0 = core.monotonic_ms()
  local r = h.run_weir({ "run", "--parallelism", "1", "--checkpoint-interval",
    tostring(interval), "--checkpoint-dir", dir .. "/ck", script })
  local ms = core.monotonic_ms() - t0
  assert(r.status == 0, r.stderr)
  return ms
end

local median = dofile("scripts/bench/common.lua").median

fill()
print("")
print(string.format("Kafka (librdkafka %s mock cluster): %d messages of "
  .. "40 bytes, one partition, parallelism 1, median of %d runs",
  core.kafka_version or "", count, runs))
print("| variant | s | records/s | x plain loop |")
print("| --- | ---: | ---: | ---: |")
local variants = {
  { "plain librdkafka loop", plain_loop },
  { "weir, at-least-once (transactional = false), checkpoints every 1 s",
    function() return job(false, 1000) end },
  { "weir, exactly-once (transactions), checkpoints every 1 s",
    function() return job(true, 1000) end },
  { "weir, exactly-once (transactions), checkpoints every 100 ms",
    function() return job(true, 100) end },
}
local base
for _, v in ipairs(variants) do
  local times = {}
  for i = 1, runs do times[i] = v[2]() end
  local ms = median(times)
  base = base or ms
  print(string.format("| %s | %.2f | %.0f | %.2f |", v[1], ms / 1000,
    count / ms * 1000, base / ms))
end

kh.stop(cluster)
h.sh("rm -rf " .. h.quote(dir))
