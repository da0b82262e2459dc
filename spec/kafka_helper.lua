--- The Kafka specs' mock cluster (spec/kafka_mock.lua, a process of its
-- own, so a spec can kill jobs around it) and blocking calls to it
-- through weir.core's librdkafka binding.
local core = require "weir.core"
local h = require "helpers"

local M = {}

--- Whether weir was built with librdkafka.
function M.available() return core.kafka_consumer ~= nil end

--- Starts a mock cluster with topics { name = partitions }; returns
-- { brokers, pid, dir }.
function M.start(topics)
  local dir = h.tmpdir()
  local args = {}
  for name, n in pairs(topics) do args[#args + 1] = h.quote(name .. ":" .. n) end
  os.execute(string.format("sh -c 'luajit spec/kafka_mock.lua %s/brokers %s "
    .. "& echo $! > %s/pid' >/dev/null 2>&1", h.quote(dir),
    table.concat(args, " "), h.quote(dir)))
  local brokers = h.wait_until(function()
    local s = h.read_file(dir .. "/brokers")
    return s and s:match("%S+")
  end, 10000, "the Kafka mock cluster")
  return { brokers = brokers, dir = dir,
    pid = tonumber(h.read_file(dir .. "/pid"):match("%d+")) }
end

--- Stops the mock cluster and removes its directory.
function M.stop(cluster)
  os.execute("kill -9 " .. cluster.pid .. " 2>/dev/null")
  h.sh("rm -rf " .. h.quote(cluster.dir))
end

--- Produces { { key, value [, partition] } } to topic and waits until
-- every one is delivered.
function M.produce(cluster, topic, messages)
  local p = assert(core.kafka_producer({ ["bootstrap.servers"] =
    cluster.brokers }))
  for _, m in ipairs(messages) do
    assert(p:produce(topic, m[1], m[2], m[3]))
  end
  assert(p:flush(10000))
  p:close(1000)
end

--- Every message of topic's partitions 0 .. partitions-1, from the start:
-- { { key, value, partition, offset } }, read until count messages came
-- (or 10 s passed).
function M.read_all(cluster, topic, partitions, count, props)
  local conf = { ["bootstrap.servers"] = cluster.brokers }
  for k, v in pairs(props or {}) do conf[k] = v end
  local c = assert(core.kafka_consumer(conf, function() end))
  local assign = {}
  for p = 0, partitions - 1 do assign[#assign + 1] = { topic, p, -2 } end
  assert(c:assign(assign))
  local out = {}
  local deadline = core.monotonic_ms() + 10000
  while #out < count and core.monotonic_ms() < deadline do
    local msgs = assert(c:poll(1000))
    for _, m in ipairs(msgs) do
      out[#out + 1] = { m.key, m.value, m.partition, m.offset }
    end
    if #msgs == 0 then  -- wait for messages (the consumer wakes the
      local t = core.timer(function() end)  -- loop) or 20 ms
      t:start(20, 0)
      core.run_once()
      t:close()
    end
  end
  c:close()
  return out
end

--- The offset the group committed for topic's partition 0, or false.
function M.committed(cluster, group, topic)
  local c = assert(core.kafka_consumer({ ["bootstrap.servers"] =
    cluster.brokers, ["group.id"] = group }, function() end))
  local id = c:committed(topic, 0, 10000)
  c:close()
  return id
end

return M
