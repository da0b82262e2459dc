-- The parallel part of scripts/bench-windows: event-time windows per
-- network over a time-ordered earthquake catalogue at parallelism 1 (the
-- baseline) and 2, in the same invocation. At parallelism 2 the second
-- file reader starts mid-file, years of event time ahead of the first, so
-- the window operator's watermark (the smaller of its inputs') lags the
-- second reader's records by that much.
--   luajit scripts/bench/windows_parallel.lua ROWS RUNS
-- 1-hour session windows over ROWS rows spanning 5 years, and daily
-- tumbling windows over 10 x ROWS rows spanning 50 years (the catalogues
-- scripts/bench/quakes.lua writes into build/bench). Each run is a
-- `weir run` of scripts/bench/quake_windows.lua; the parallelisms take
-- turns RUNS times and the medians are reported. Exits 1 unless both
-- parallelisms write the same windows.
local core = require "weir.core"
local children_cpu = dofile("scripts/bench/cpu.lua")

local rows, runs = tonumber(arg[1]), tonumber(arg[2])
local dir = "build/bench"
os.execute("mkdir -p " .. dir)

local common = dofile("scripts/bench/common.lua")
local sh, median = common.runner("bench-windows"), common.median

local function catalogue(n, years)
  local path = string.format("%s/quakes-%d-%dy.csv", dir, n, years)
  if not core.stat(path) then
    sh(string.format("luajit scripts/bench/quakes.lua %d %d %s", n, years,
      path))
  end
  return path
end

-- Wall and CPU seconds of one run, and the sorted windows it wrote.
local function run(input, kind, parallelism)
  local out = string.format("%s/quake-%s-p%d", dir, kind, parallelism)
  local start, cpu = core.monotonic_ms(), children_cpu()
  sh(string.format("build/weir run --parallelism %d --checkpoint-interval 0 "
    .. "--checkpoint-dir %s/ck-quake scripts/bench/quake_windows.lua %s %s "
    .. "%s >/dev/null 2>&1", parallelism, dir, input, out, kind))
  local wall = (core.monotonic_ms() - start) / 1000
  cpu = children_cpu() - cpu
  sh(string.format("cat %s/part-* | sort > %s.sorted", out, out))
  return wall, cpu, out .. ".sorted"
end

local function lines(path)
  local n = 0
  for _ in io.lines(path) do n = n + 1 end
  return n
end

local rows_out = {}
local function measure(name, kind, input, n)
  local t1, t2, c1, c2, windows = {}, {}, {}, {}, nil
  for i = 1, runs do
    local s1, s2
    t1[i], c1[i], s1 = run(input, kind, 1)
    t2[i], c2[i], s2 = run(input, kind, 2)
    if os.execute("cmp -s " .. s1 .. " " .. s2) ~= 0 then
      io.stderr:write("bench-windows: ", name, ": parallelism 1 and 2 wrote "
        .. "different windows (" .. s1 .. ", " .. s2 .. ")\n")
      os.exit(1)
    end
    windows = lines(s1)
  end
  rows_out[#rows_out + 1] = { name, n, windows, median(t1), median(t2),
    median(c1), median(c2) }
end

measure("1-hour sessions per network, 5 years", "session",
  catalogue(rows, 5), rows)
measure("daily tumbling per network, 50 years", "daily",
  catalogue(10 * rows, 50), 10 * rows)

print(string.format("earthquake catalogue (synthetic, time-ordered, %s); "
  .. "median of %d runs each", dir, runs))
print("| windows | rows | windows out | parallelism 1 s | parallelism 2 s "
  .. "| p2 / p1 | CPU s p1 | CPU s p2 |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for _, r in ipairs(rows_out) do
  print(string.format("| %s | %d | %d | %.2f | %.2f | %.2fx | %.2f | %.2f |",
    r[1], r[2], r[3], r[4], r[5], r[5] / r[4], r[6], r[7]))
end
