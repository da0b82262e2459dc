-- The body of scripts/bench-nexmark (see there).
local core = require "weir.core"
local children_cpu = dofile("scripts/bench/cpu.lua")

-- Flink 1.13's events per core-second, nexmark/nexmark's published V1
-- table (NEXMARK.md §4.2: 100 M events, 8 TaskManagers).
local FLINK = { q0 = 155.02e3, q1 = 157.94e3, q2 = 175.21e3, q3 = 152.12e3,
  q4 = 34.33e3, q5 = 22.14e3, q7 = 12.33e3, q8 = 146.14e3, q9 = 14.24e3,
  q10 = 57.81e3, q11 = 39.7e3, q12 = 75.67e3, q13 = 130.73e3,
  q14 = 161.23e3, q15 = 72.42e3, q16 = 18.65e3, q17 = 116.8e3,
  q18 = 53.7e3, q19 = 44.04e3, q20 = 18.98e3, q21 = 98.49e3,
  q22 = 129.96e3 }
-- The stateless queries, whose target is 5x Flink's (2x for the others).
local STATELESS = { q0 = true, q1 = true, q2 = true, q14 = true,
  q21 = true, q22 = true }

local events, parallelism, queries = 10000000, 2, {}
local backend = "heap"
local i = 1
while i <= #arg do
  if arg[i] == "--state-backend" then
    backend = assert(arg[i + 1], "--state-backend needs heap or rocksdb")
    assert(backend == "heap" or backend == "rocksdb",
      "--state-backend needs heap or rocksdb")
    i = i + 2
  elseif arg[i] == "--events" then
    events = assert(tonumber(arg[i + 1]), "--events needs a number")
    i = i + 2
  elseif arg[i] == "--parallelism" then
    parallelism = assert(tonumber(arg[i + 1]), "--parallelism needs a number")
    i = i + 2
  else
    queries[#queries + 1] = arg[i]:match("^q?(%d+)$") and "q"
      .. arg[i]:match("(%d+)$") or error("not a query: " .. arg[i])
    i = i + 1
  end
end
if #queries == 0 then
  for _, name in ipairs(core.scandir("examples/nexmark") or {}) do
    local n = name:match("^q(%d+)%.lua$")
    if n then queries[#queries + 1] = "q" .. n end
  end
  table.sort(queries, function(a, b)
    return tonumber(a:sub(2)) < tonumber(b:sub(2))
  end)
end

local dir = "build/bench/nexmark"
os.execute("rm -rf " .. dir .. " && mkdir -p " .. dir)

local function si(v)
  if v >= 1e6 then return string.format("%.2f M/s", v / 1e6) end
  return string.format("%.2f K/s", v / 1e3)
end

print(string.format("%d events per query, parallelism %d, %d cores, "
  .. "checkpoints every 10 s, results discarded, stateful queries on the "
  .. "%s state backend", events, parallelism, core.cpu_count(), backend))
print("")
print("| Query | Events | Cores | Time (s) | Cores x Time (s) | "
  .. "Throughput/Cores | Flink | ratio | target | max RSS MiB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
local failed = false
for _, q in ipairs(queries) do
  local script = "examples/nexmark/" .. q .. ".lua"
  local err = dir .. "/" .. q .. ".err"
  local cpu0 = children_cpu()
  -- GNU time's %M: the largest resident set of weir and the workers it
  -- waited for.
  local rss_file = dir .. "/" .. q .. ".rss"
  local ok = os.execute(string.format("/usr/bin/time -f %%M -o %s "
    .. "build/weir run --parallelism %d --state-backend %s "
    .. "--checkpoint-interval 10000 --checkpoint-dir %s/ck %s %d - "
    .. ">/dev/null 2>%s", rss_file, parallelism,
    STATELESS[q] and "heap" or backend, dir, script, events, err))
  local cpu = children_cpu() - cpu0
  local f = io.open(err)
  local stderr = f and f:read("*a") or ""
  if f then f:close() end
  f = io.open(rss_file)
  local rss_kb = f and tonumber(f:read("*a"):match("(%d+)%s*$")) or 0
  if f then f:close() end
  -- The job's own time, from its start to its last record's commit.
  local time = tonumber(stderr:match("finished after ([%d.]+) s"))
  if (ok ~= 0 and ok ~= true) or not time then
    print(string.format("| %s | failed: %s |", q,
      (stderr:gsub("\n", " "))))
    failed = true
  else
    local cores = cpu / time
    local per_core = events / cpu
    local flink = FLINK[q]
    local target = STATELESS[q] and 5 or 2
    print(string.format("| %s | %d | %.2f | %.3f | %.3f | %s | %s | %.2fx "
      .. "| %s | %.0f |", q, events, cores, time, cpu, si(per_core),
      flink and si(flink) or "-", flink and per_core / flink or 0,
      flink and (per_core / flink >= target and "met (" or "missed (")
        .. target .. "x)" or "-", rss_kb / 1024))
  end
  io.stdout:flush()
end
if failed then os.exit(1) end
