-- scripts/bench-connectors: records/s through Redis Streams, source to
-- sink, against a plain client loop doing the same reads and writes in
-- the same invocation; then the latency from an entry's append to its
-- copy, at a steady rate, at checkpoint intervals of 100 ms and 1 s.
-- Runs its own redis-server on a free loopback port.
--   luajit scripts/bench/connectors.lua ENTRIES RUNS
package.path = "spec/?.lua;" .. package.path
io.stdout:setvbuf("line")
local core = require "weir.core"
local redis = require "weir.redis"
local rh = require "redis_helper"
local h = require "helpers"

local entries, runs = tonumber(arg[1]) or 1000000, tonumber(arg[2]) or 3

local ok, why = rh.available()
if not ok then
  io.stderr:write("bench-connectors: ", why, "\n")
  os.exit(1)
end
local server = rh.start({})
local dir = h.tmpdir()

-- Fills stream "in" with entries { n = 1..count, pad = 40 bytes }.
local function fill(count)
  rh.call(server, { "DEL", "in", "out" })
  local done = 0
  while done < count do
    local k = math.min(50000, count - done)
    rh.call(server, { "EVAL", "for i = tonumber(ARGV[1]), tonumber(ARGV[2]) "
      .. "do redis.call('XADD', KEYS[1], '*', 'n', i, 'pad', "
      .. "string.rep('x', 40)) end", 1, "in", done + 1, done + k })
    done = done + k
  end
end

-- The plain client loop: XREAD COUNT 1000 from "in", the entries added to
-- "out" by one pipelined XADD each, the next read once they are written.
local function plain_loop(count)
  local client = redis.client(server.url, "bench")
  local last, copied, done = "0-0", 0, false
  local function step()
    client:call({ "XREAD", "COUNT", 1000, "STREAMS", "in", last },
      function(reply)
        local es = reply and reply[1] and reply[1][2] or {}
        local waiting = #es
        if waiting == 0 then done = true return end
        for _, e in ipairs(es) do
          last = e[1]
          local args = { "XADD", "out", "*" }
          for j = 1, #e[2] do args[#args + 1] = e[2][j] end
          client:call(args, function()
            waiting = waiting - 1
            copied = copied + 1
            if waiting == 0 then
              if copied >= count then done = true else step() end
            end
          end)
        end
      end)
  end
  local t0 = core.monotonic_ms()
  step()
  while not done do core.run_once() end
  local ms = core.monotonic_ms() - t0
  client:close()
  core.drain()
  return ms
end

-- The weir job: read_redis_stream (bounded) -> write_redis_stream.
local function job(delivery, interval)
  local script = dir .. "/copy.lua"
  h.write_file(script, string.format([[
local weir = require "weir"
local p = weir.pipeline { name = "bench_connectors" }
p:read_redis_stream({ url = %q, stream = "in", bounded = true }):uid("in")
  :map(function(r) return r.fields end)
  :write_redis_stream({ url = %q, stream = "out", delivery = %q }):uid("out")
p:run()
]], server.url, server.url, delivery))
  local t0 = core.monotonic_ms()
  local r = h.run_weir({ "run", "--parallelism", "1", "--checkpoint-interval",
    tostring(interval), "--checkpoint-dir", dir .. "/ck", script })
  local ms = core.monotonic_ms() - t0
  assert(r.status == 0, r.stderr)
  return ms
end

-- Waits ms milliseconds, running the loop (connections stay open).
local function sleep(ms)
  local due = false
  local t = core.timer(function() due = true end)
  t:start(ms, 0)
  while not due do core.run_once() end
  t:close()
end

local median = dofile("scripts/bench/common.lua").median

print(string.format("$ scripts/bench-connectors %d %d", entries, runs))
print(string.format("%d entries of 2 fields, Redis %s, parallelism 1, "
  .. "median of %d runs", entries,
  rh.call(server, { "INFO", "server" }):match("redis_version:(%S+)"), runs))
print("| variant | s | records/s | x plain loop |")
print("| --- | ---: | ---: | ---: |")
local variants = {
  { "plain client loop", function() return plain_loop(entries) end },
  { "weir, at-least-once, checkpoints every 1 s",
    function() return job("at_least_once", 1000) end },
  { "weir, exactly-once, checkpoints every 1 s",
    function() return job("exactly_once", 1000) end },
  { "weir, exactly-once, checkpoints every 100 ms",
    function() return job("exactly_once", 100) end },
}
local base
for _, v in ipairs(variants) do
  local times = {}
  for i = 1, runs do
    fill(entries)
    times[i] = v[2]()
    assert(#rh.call(server, { "XRANGE", "out", "-", "+", "COUNT", 1 }) == 1)
  end
  local ms = median(times)
  base = base or ms
  print(string.format("| %s | %.2f | %.0f | %.2f |", v[1], ms / 1000,
    entries / ms * 1000, base / ms))
end

-- Latency: entries appended at RATE per second for SECONDS while an
-- unbounded job copies them; an entry's latency is its copy's id (the
-- server's clock at XADD) minus its own.
local RATE, SECONDS = 20000, 5
local function latency(interval)
  rh.call(server, { "DEL", "in", "out" })
  local script = dir .. "/follow.lua"
  h.write_file(script, string.format([[
local weir = require "weir"
local p = weir.pipeline { name = "bench_latency" }
p:read_redis_stream({ url = %q, stream = "in" }):uid("in")
  :map(function(r) return { src = r.id } end)
  :write_redis_stream({ url = %q, stream = "out" }):uid("out")
p:run()
]], server.url, server.url))
  local proc = h.spawn_weir({ "run", "--parallelism", "1",
    "--checkpoint-interval", tostring(interval), "--checkpoint-dir",
    dir .. "/lck", script })
  sleep(1000)
  local client = redis.client(server.url, "bench")
  local sent, t0 = 0, core.monotonic_ms()
  local timer = core.timer(function()
    local due = math.floor((core.monotonic_ms() - t0) * RATE / 1000)
    while sent < due and sent < RATE * SECONDS do
      sent = sent + 1
      client:call({ "XADD", "in", "*", "n", sent }, function() end)
    end
  end)
  timer:start(1, 1)
  while sent < RATE * SECONDS do core.run_once() end
  timer:close()
  sleep(interval + 1000)
  client:close()
  core.drain()
  h.run_weir({ "cancel", "bench_latency", "--checkpoint-dir", dir .. "/lck" })
  h.wait_exit(proc)
  local lat = {}
  for _, e in ipairs(rh.call(server, { "XRANGE", "out", "-", "+" })) do
    local src = e[2][2]
    lat[#lat + 1] = tonumber(e[1]:match("^%d+")) - tonumber(src:match("^%d+"))
  end
  table.sort(lat)
  return lat[math.ceil(#lat * 0.5)], lat[math.ceil(#lat * 0.99)], #lat
end

print("")
print(string.format("Latency from append to committed copy (exactly-once), "
  .. "%d entries/s for %d s:", RATE, SECONDS))
print("| checkpoint interval | p50 ms | p99 ms | entries |")
print("| ---: | ---: | ---: | ---: |")
for _, interval in ipairs({ 100, 1000 }) do
  local p50, p99, n = latency(interval)
  print(string.format("| %d ms | %d | %d | %d |", interval, p50, p99, n))
end

rh.stop(server)
rh.remove(server)
h.sh("rm -rf " .. h.quote(dir))
