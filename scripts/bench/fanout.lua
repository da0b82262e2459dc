-- The benchmark of scripts/bench-fanout: one input line of WORDS distinct
-- words (about 10 MB for 1.5 M) that flat_map turns into one record per
-- word, counted per word length at parallelism 2, against a plain LuaJIT
-- loop doing the same work in the same invocation. Reports wall time,
-- the peak resident memory of the largest weir process (VmHWM, sampled
-- from /proc every 20 ms) and the checkpoints that completed while the
-- line drained.
--   luajit scripts/bench/fanout.lua WORDS RUNS
local core = require "weir.core"

local words, runs = tonumber(arg[1]), tonumber(arg[2])
local dir = "build/bench"
os.execute("mkdir -p " .. dir)
local input = string.format("%s/fanout-%d.txt", dir, words)
if not core.stat(input) then
  local f = assert(io.open(input, "wb"))
  for i = 1, words do f:write("w", i, i < words and " " or "\n") end
  f:close()
end

local SCRIPT = dir .. "/fanout_job.lua"
local f = assert(io.open(SCRIPT, "wb"))
f:write([[
local weir = require "weir"
local p = weir.pipeline { name = "fanout" }
p:read_lines(arg[1]):uid("lines")
  :flat_map(function(line, emit)
    for w in line:gmatch("%S+") do emit(w) end
  end)
  :key_by(function(w) return #w end)
  :process(function(ctx) ctx.state.n = (ctx.state.n or 0) + 1 end,
    { finish = function(ctx) ctx:emit(ctx.key .. "\t" .. ctx.state.n) end })
  :uid("counts")
  :write_lines(arg[2]):uid("output")
p:run()
]])
f:close()

-- Peak VmHWM (KB) over the process tree of pid, sampled until it exits.
local function hwm(pid)
  local s = io.open("/proc/" .. pid .. "/status")
  if not s then return 0 end
  local v = tonumber(s:read("*a"):match("VmHWM:%s*(%d+)")) or 0
  s:close()
  return v
end

local function plain()
  local t0 = core.monotonic_ms()
  local counts = {}
  for line in io.lines(input) do
    for w in line:gmatch("%S+") do counts[#w] = (counts[#w] or 0) + 1 end
  end
  return (core.monotonic_ms() - t0) / 1000
end

local function weir_run()
  os.execute("rm -rf " .. dir .. "/fanout-out " .. dir .. "/fanout-ck")
  local cmd = string.format("exec build/weir run --parallelism 2 "
    .. "--checkpoint-interval 100 --checkpoint-dir %s/fanout-ck %s %s "
    .. "%s/fanout-out 2>%s/fanout-err", dir, SCRIPT, input, dir, dir)
  local t0 = core.monotonic_ms()
  local peak, done = 0, false
  local proc = assert(core.spawn("/bin/sh", { "-c", cmd }, nil,
    function() done = true end))
  local pid = proc:pid()
  local timer = core.timer(function()
    local kids = io.popen("pgrep -P " .. pid .. "; for c in $(pgrep -P "
      .. pid .. "); do pgrep -P $c; done")
    for k in kids:lines() do peak = math.max(peak, hwm(k)) end
    kids:close()
  end)
  timer:start(20, 20)
  while not done do core.run_once() end
  timer:close()
  local secs = (core.monotonic_ms() - t0) / 1000
  local err = io.open(dir .. "/fanout-err"):read("*a")
  local checkpoints = tonumber(err:match("; (%d+) checkpoints")) or 0
  return secs, peak, checkpoints
end

local median = dofile("scripts/bench/common.lua").median

local ps, ws, peaks, cks = {}, {}, {}, {}
for _ = 1, runs do
  ps[#ps + 1] = plain()
  local s, peak, ck = weir_run()
  ws[#ws + 1], peaks[#peaks + 1], cks[#cks + 1] = s, peak, ck
end
print(string.format("one line of %d words (%.1f MB); median of %d runs",
  words, core.stat(input).size / 1e6, runs))
print("| variant | s | x plain loop | peak resident MB | checkpoints |")
print("| --- | ---: | ---: | ---: | ---: |")
local p, w = median(ps), median(ws)
print(string.format("| plain LuaJIT loop | %.2f | 1.00 | | |", p))
print(string.format("| weir, parallelism 2, checkpoint every 100 ms | %.2f "
  .. "| %.2f | %.0f | %d |", w, p / w, median(peaks) / 1024, median(cks)))
