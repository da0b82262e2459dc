-- Window benchmark body (run by scripts/bench-windows through luajit with
-- weir on the paths; with a fourth argument it runs that one variant): 1-minute tumbling count per status code, and a
-- sliding window of 5 minutes every minute, over the access log repeated
-- (each copy shifted by 4 days, past the end of the one before) to
-- RECORDS records; each against a plain
-- LuaJIT loop computing the same windows in the same process.
local weir = require "weir"
local core = require "weir.core"

local log, records, runs = arg[1], tonumber(arg[2]), tonumber(arg[3])
local SHIFT, MINUTE = 4 * 86400000, 60000

-- The log, parsed once: timestamps and status codes of its lines.
local times, statuses, n = {}, {}, 0
for line in io.lines(log) do
  local t, status = line:match('^%S+ %S+ %S+ %[([^%]]+)%] "[^"]*" (%d+) ')
  if t then
    n = n + 1
    times[n], statuses[n] = weir.time.parse_clf(t), status
  end
end

local floor = math.floor
local function ts_of(i)
  local k = (i - 1) % n + 1
  return times[k] + floor((i - 1) / n) * SHIFT
end
local function status_of(i) return statuses[(i - 1) % n + 1] end

-- Windows of `size` every `slide` as a plain loop: counts[start][status].
local function plain(size, slide)
  local counts, windows = {}, 0
  for i = 1, records do
    local ts, status = ts_of(i), status_of(i)
    local start = ts - ts % slide
    while start > ts - size do
      local w = counts[start]
      if not w then
        w = {}
        counts[start] = w
      end
      local c = w[status]
      if c == nil then windows = windows + 1 end
      w[status] = (c or 0) + 1
      start = start - slide
    end
  end
  return windows
end

local function with_weir(assigner)
  local p = weir.pipeline { name = "bench_windows", checkpoint_interval = 0 }
  local windows = 0
  p:sequence(1, records)
    :with_timestamps(ts_of, { max_out_of_orderness = MINUTE })
    :key_by(status_of)
    :window(assigner)
    :aggregate { init = function() return 0 end,
                 add = function(c) return c + 1 end,
                 merge = function(a, b) return a + b end }
    :map(function(c)
      windows = windows + 1
      return c
    end)
  p:run()
  return windows
end

local function timed(fn, ...)
  local start = core.monotonic_ms()
  local result = fn(...)
  return (core.monotonic_ms() - start) / 1000, result
end

local function median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)]
end

local variants = {
  ["plain-tumbling"] = function() return plain(MINUTE, MINUTE) end,
  ["weir-tumbling"] = function() return with_weir(weir.tumbling(MINUTE)) end,
  ["plain-sliding"] = function() return plain(5 * MINUTE, MINUTE) end,
  ["weir-sliding"] = function()
    return with_weir(weir.sliding(5 * MINUTE, MINUTE))
  end,
}

-- One variant in this process: prints "<seconds> <windows>".
if arg[4] then
  local t, windows = timed(variants[arg[4]])
  print(string.format("%.6f %d", t, windows))
  os.exit(0)
end

-- Each run in a process of its own, the variants taking turns, RUNS times;
-- the medians decide, so that one disturbed run does not.
local function run_variant(name)
  local cmd = string.format("luajit %s %s %d %d %s", arg[0], log, records,
    runs, name)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local t, windows = out:match("^([%d.]+) (%d+)")
  if not t then
    io.stderr:write("bench-windows: ", name, " failed: ", out, "\n")
    os.exit(1)
  end
  return tonumber(t), tonumber(windows)
end

local rows = {}
local function measure(name, shape)
  local tps, tws, wp = {}, {}, nil
  for i = 1, runs do
    local ww
    tps[i], wp = run_variant("plain-" .. shape)
    tws[i], ww = run_variant("weir-" .. shape)
    if wp ~= ww then
      io.stderr:write(string.format("bench-windows: %s: the plain loop made "
        .. "%d windows, weir %d\n", name, wp, ww))
      os.exit(1)
    end
  end
  rows[#rows + 1] = { name, median(tps), median(tws), wp }
end

measure("tumbling 1 min", "tumbling")
measure("sliding 5 min / 1 min", "sliding")

print(string.format("%d records (%d log lines repeated), %d windows "
  .. "(tumbling); median of %d runs each", records, n, rows[1][4], runs))
print("| window | plain loop s | weir s | plain rec/s | weir rec/s "
  .. "| weir / plain |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for _, r in ipairs(rows) do
  print(string.format("| %s | %.2f | %.2f | %.2f M | %.2f M | %.2f |", r[1],
    r[2], r[3], records / r[2] / 1e6, records / r[3] / 1e6, r[2] / r[3]))
end
print(string.format("sliding / tumbling cost in weir: %.2fx",
  rows[2][3] / rows[1][3]))
