-- The body of scripts/bench-parallel (see there).
local core = require "weir.core"
local children_cpu = dofile("scripts/bench/cpu.lua")

local runs = tonumber(arg[1])
local dir = "build/bench"
os.execute("mkdir -p " .. dir)

local common = dofile("scripts/bench/common.lua")
local sh, median = common.runner("bench-parallel"), common.median

-- Wall seconds of a shell command, and its CPU seconds.
local function timed(cmd)
  local start, cpu = core.monotonic_ms(), children_cpu()
  sh(cmd .. " >/dev/null 2>&1")
  return (core.monotonic_ms() - start) / 1000, children_cpu() - cpu
end

-- The input: tinyshakespeare 48 times (51 MiB), as scripts/bench-wordcount.
local input = dir .. "/tinyshakespeare-x48.txt"
if not core.stat(input) then
  sh("for i in $(seq 48); do cat examples/data/tinyshakespeare.txt; done > "
    .. input)
end

local function wordcount(parallelism, interval)
  return timed(string.format("build/weir run --parallelism %d "
    .. "--checkpoint-interval %d --checkpoint-dir %s/ck-par "
    .. "examples/wordcount.lua %s %s/out-par-%d", parallelism, interval, dir,
    input, dir, parallelism))
end

local p1, p2, p2c, cpu1, cpu2 = {}, {}, {}, {}, {}
for i = 1, runs do
  p1[i], cpu1[i] = wordcount(1, 0)
  p2[i], cpu2[i] = wordcount(2, 0)
  p2c[i] = wordcount(2, 1000)
end
sh(string.format("sort %s/out-par-1/part-* > %s/sorted-1 && sort %s/out-par-2/part-* > %s/sorted-2 && cmp -s %s/sorted-1 %s/sorted-2", dir, dir, dir, dir, dir, dir))
local m1, m2, m2c = median(p1), median(p2), median(p2c)

-- Channel throughput: N records through one channel between two workers,
-- vs the same pipeline in one process (parallelism 1: a chain of direct
-- calls, no channel).
local N = 10000000
local channel, chained = {}, {}
for i = 1, runs do
  channel[i] = timed("build/weir run --parallelism 2 scripts/bench/channel.lua "
    .. N)
  chained[i] = timed("build/weir run --parallelism 1 scripts/bench/channel.lua "
    .. N)
end
local mc, mp = median(channel), median(chained)

-- Recovery: kill a worker mid-run; time to the next first record.
local recovery = {}
for i = 1, runs do
  local marks = dir .. "/recovery-marks"
  os.remove(marks)
  sh("rm -rf " .. dir .. "/ck-rec " .. dir .. "/out-rec")
  local pidfile = dir .. "/recovery.pid"
  sh(string.format("(build/weir run --parallelism 2 --checkpoint-dir "
    .. "%s/ck-rec scripts/bench/recovery.lua %s %s/out-rec %s >/dev/null "
    .. "2>&1 & echo $! > %s)", dir, input, dir, marks, pidfile))
  local pid = io.open(pidfile):read("*l")
  -- Wait until both workers processed a record, then kill one.
  local deadline = core.monotonic_ms() + 30000
  local function marks_count()
    local f = io.open(marks)
    if not f then return 0 end
    local n = 0
    for _ in f:lines() do n = n + 1 end
    f:close()
    return n
  end
  while marks_count() < 2 and core.monotonic_ms() < deadline do
    os.execute("sleep 0.05")
  end
  os.execute("sleep 0.5")
  local victim = io.popen("pgrep -P " .. pid):read("*l")
  local killed_ms = core.time_ms()
  sh("kill -KILL " .. victim)
  while marks_count() < 4 and core.monotonic_ms() < deadline do
    os.execute("sleep 0.01")
  end
  local f = io.open(marks)
  local t = {}
  for line in f:lines() do t[#t + 1] = tonumber(line) end
  f:close()
  recovery[i] = math.min(t[3], t[4]) - killed_ms
  sh("while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.05; done")
end

print(string.format("%d runs each, medians; input %s; %d cores", runs, input,
  core.cpu_count()))
print("| benchmark | baseline | weir | ratio |")
print("| --- | ---: | ---: | ---: |")
print(string.format("| word count, parallelism 2 vs 1 | %.2f s | %.2f s | "
  .. "%.2fx speed-up |", m1, m2, m1 / m2))
print(string.format("| word count CPU time, parallelism 2 vs 1 | %.2f s | "
  .. "%.2f s | %.2fx the work |", median(cpu1), median(cpu2),
  median(cpu2) / median(cpu1)))
print(string.format("| checkpoint every 1 s vs none, parallelism 2 | %.2f s "
  .. "| %.2f s | %.1f%% cost |", m2, m2c, (m2c / m2 - 1) * 100))
print(string.format("| one channel between two workers, %d records | "
  .. "%.2f M/s (in one process) | %.2f M/s | %.2f |", N, N / mp / 1e6,
  N / mc / 1e6, mp / mc))
print(string.format("| worker death to first record after recovery | - | "
  .. "%.0f ms | - |", median(recovery)))
