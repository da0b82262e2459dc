-- The benchmark of scripts/bench-http: a word count with and without a
-- client scraping /metrics and polling the REST API at the dashboard's
-- rate (one round of requests a second), then /metrics latency at
-- parallelism 2.
--   luajit scripts/bench/http.lua RUNS COPIES REQUESTS
local core = require "weir.core"
local common = dofile("scripts/bench/common.lua")

local runs, copies, requests = tonumber(arg[1]), tonumber(arg[2]),
  tonumber(arg[3])
local sh = common.runner("bench-http")
local dir = "build/bench"
sh("mkdir -p " .. dir)

common.print_machine()
local input = common.repeated_input(dir, copies)

-- The client: waits for the job's "weir: http://ADDR:PORT/" line, then
-- once a second sends the dashboard's four API requests and a /metrics
-- scrape over one connection, appending each status code to LOG (000 when
-- the job closed its server between the check and the request), until
-- the job's process is gone; PAUSE 0 sends the rounds back to back. (A
-- load generator: its one-second pace is the point, nothing waits on it.)
local CLIENT = [[
err=$1 pid=$2 log=$3 pause=$4
base=
while [ -z "$base" ] && kill -0 "$pid" 2>/dev/null; do
  base=$(sed -n 's|.*weir: \(http://[0-9.]*:[0-9]*\)/$|\1|p' "$err")
  sleep 0.05
done
api=$base/api/v1/jobs
while kill -0 "$pid" 2>/dev/null; do
  curl -s -w '%{http_code}\n' -o /dev/null "$api" -o /dev/null \
    "$api/wordcount" -o /dev/null "$api/wordcount/checkpoints" \
    -o /dev/null "$api/wordcount/exceptions" -o /dev/null \
    "$base/metrics" >>"$log" || true
  [ "$pause" = 0 ] || sleep "$pause"
done
]]
local client = dir .. "/http-client.sh"
local f = assert(io.open(client, "wb"))
f:write(CLIENT)
f:close()

local function weir_cmd(parallelism, http, out, chk)
  return string.format("build/weir run --parallelism %d --http %s "
    .. "--checkpoint-interval 1000 --checkpoint-dir %s examples/wordcount.lua "
    .. "%s %s", parallelism, http, chk, input, out)
end

-- One run of a variant (http: "off" or an address; pause: seconds between
-- the client's rounds, nil for no client):
-- its wall time (s) and the requests the client had answered.
local function run_once(http, pause)
  local chk, out = dir .. "/http-ck", dir .. "/http-out"
  local err, log = dir .. "/http-err", dir .. "/http-client.log"
  sh("rm -rf " .. chk .. " " .. out .. " " .. log .. "; : >" .. err)
  local cmd = weir_cmd(1, http, out, chk) .. " 2>" .. err
  if pause then
    cmd = string.format("%s & job=$!; sh %s %s $job %s %s & wait $job", cmd,
      client, err, log, pause)
  end
  local t0 = core.monotonic_ms()
  sh(cmd)
  local secs = (core.monotonic_ms() - t0) / 1000
  local ok, bad = 0, 0
  local l = io.open(log)
  for code in (l and l:read("*a") or ""):gmatch("%d+") do
    -- 000: no connection, the job had just closed its server on its way
    -- out; any other status is a failure of the API.
    if code == "200" then ok = ok + 1 elseif code ~= "000" then
      bad = bad + 1
    end
  end
  if l then l:close() end
  if bad > 0 then
    io.stderr:write("bench-http: ", bad, " requests failed\n")
    os.exit(1)
  end
  return secs, ok
end

local variants = {
  { name = "(a) --http off", http = "off" },
  { name = "(b) HTTP on, no client", http = "127.0.0.1:8081" },
  { name = "(c) HTTP on, /metrics + API polled every 1 s",
    http = "127.0.0.1:8081", pause = 1 },
  { name = "(d) HTTP on, /metrics + API polled back to back",
    http = "127.0.0.1:8081", pause = 0 },
}
for _, v in ipairs(variants) do
  v.times, v.answered = {}, {}
  print(v.name .. ": " .. weir_cmd(1, v.http, "OUT", "CHK"))
end
for round = 1, runs do
  for _, v in ipairs(variants) do
    local t, n = run_once(v.http, v.pause)
    v.times[round], v.answered[round] = t, n
    io.stderr:write(string.format("run %d/%d  %-46s %.2f s, %d requests "
      .. "answered\n", round, runs, v.name, t, n))
  end
end

print()
print("| variant | median s | fastest s | requests answered per run |")
print("| --- | ---: | ---: | --- |")
for _, v in ipairs(variants) do
  v.fastest = math.min(unpack(v.times))
  v.median = common.median({ unpack(v.times) })
  print(string.format("| %s | %.2f | %.2f | %s |", v.name, v.median,
    v.fastest, v.pause and table.concat(v.answered, ", ") or "-"))
end
local a, b, c = variants[1].median, variants[2].median, variants[3].median
print(string.format("cost in records/s of (c) against (a): %.1f%%; of the "
  .. "server alone, (b) against (a): %.1f%%", (1 - a / c) * 100,
  (1 - a / b) * 100))
-- The machine's drift between runs is larger than what one round a second
-- costs, so (d) amplifies it: the job's extra time divided by the rounds
-- answered is what one round costs it; at one round a second that is the
-- share of its time the dashboard and a scraper take.
local d = variants[4]
local rounds = common.median({ unpack(d.answered) }) / 5
local per_round = (d.median - a) / rounds
print(string.format("one round (4 API requests and a /metrics scrape) "
  .. "costs the job %.2f ms (%.0f rounds in (d), %.2f s over (a)): at one "
  .. "round a second %.2f%% of its records/s (target <= 3%%: %s)",
  per_round * 1000, rounds, d.median - a, per_round * 100,
  per_round <= 0.03 and "met" or "NOT met"))

-- Latency: a job at parallelism 2 (a coordinator and two worker
-- processes), /metrics fetched REQUESTS times over one connection once
-- the job serves it, while it runs.
local chk, out, err = dir .. "/http-ck", dir .. "/http-out", dir .. "/http-err"
sh("rm -rf " .. chk .. " " .. out .. "; : >" .. err)
local times = dir .. "/http-times"
local urls = {}
for i = 1, requests do urls[i] = "-o /dev/null \"$base/metrics\"" end
sh(string.format([[
%s 2>%s & job=$!
base=
while [ -z "$base" ] && kill -0 $job 2>/dev/null; do
  base=$(sed -n 's|.*weir: \(http://[0-9.]*:[0-9]*\)/$|\1|p' %s)
  sleep 0.05
done
until curl -sf "$base/metrics" | grep -q '^weir_records_in_total{' || \
    ! kill -0 $job 2>/dev/null; do
  sleep 0.05
done
curl -s -w '%%{http_code} %%{time_total}\n' %s >%s
running=no; kill -0 $job 2>/dev/null && running=yes
wait $job
echo $running >>%s
]], weir_cmd(2, "127.0.0.1:8081", out, chk), err, err,
  table.concat(urls, " "), times, times))
local ms, still = {}, nil
for line in io.lines(times) do
  local code, t = line:match("^(%d+) ([%d.]+)$")
  if code then
    if code ~= "200" then
      io.stderr:write("bench-http: /metrics answered ", code, "\n")
      os.exit(1)
    end
    ms[#ms + 1] = tonumber(t) * 1000
  else
    still = line
  end
end
table.sort(ms)
local p95 = ms[math.ceil(#ms * 0.95)]
print(string.format("GET /metrics at parallelism 2, %d requests while the "
  .. "job ran (still running after the last: %s): median %.2f ms, 95th "
  .. "percentile %.2f ms, max %.2f ms (target <= 5 ms: %s)", #ms, still,
  common.median(ms), p95, ms[#ms], p95 <= 5 and "met" or "NOT met"))
