-- scripts/bench-state-recovery's body: for each number of keys, the job
-- of state_recovery_job.lua on the RocksDB state backend at parallelism 2
-- (two worker processes) with a checkpoint every INTERVAL ms. Once every
-- key holds state and a checkpoint completed after that, one worker is
-- killed (SIGKILL) and the time measured from the kill to the first
-- record a restarted worker handles (the first and the last of the two),
-- with the restored checkpoint's size. The job is then stopped.
--   luajit scripts/bench/state_recovery.lua INTERVAL KEYS...
local common = dofile("scripts/bench/common.lua")
local core = require "weir.core"
local checkpoint_record = require "weir.checkpoint_record"
local sh = common.runner("bench-state-recovery")

local interval = tonumber(arg[1])
local dir = os.tmpname()
os.remove(dir)
sh("mkdir -p " .. dir)

local read = common.read

local job_pid
local function fail(msg)
  if job_pid then os.execute("kill -KILL " .. job_pid .. " 2>/dev/null") end
  io.stderr:write("bench-state-recovery: ", msg, "; the job's log:\n",
    read(dir .. "/err"), "\n")
  os.exit(1)
end

local function running()
  return job_pid and os.execute("kill -0 " .. job_pid .. " 2>/dev/null")
    == 0
end

-- Waits (bounded: limit s) for fn() to return a value; returns it. Fails
-- when the job ended first.
local function wait(what, limit, fn)
  local deadline = core.monotonic_ms() + limit * 1000
  while true do
    local v = fn()
    if v then return v end
    if core.monotonic_ms() > deadline then
      fail("timed out waiting for " .. what)
    end
    if not running() then fail("the job ended before " .. what) end
    os.execute("sleep 0.01")
  end
end

-- The newest complete checkpoint's record (weir.checkpoint_storage
-- describe), with its number as n, or nil.
local function newest(job_dir)
  local c = checkpoint_record.describe(job_dir, function() end)[1]
  if c then c.n = tonumber(c.id:match("%d+")) end
  return c
end

common.print_machine()
print(string.format("build/weir run --parallelism 2 --state-backend rocksdb "
  .. "--checkpoint-interval %d scripts/bench/state_recovery_job.lua "
  .. "RECORDS KEYS MARKS (RECORDS: more than it reaches; stopped after), "
  .. "one worker killed", interval))
print()
print("| keys | checkpoint restored MiB (full) | kill to first record s "
  .. "| kill to both workers' first record s |")
print("| ---: | ---: | ---: | ---: |")
for i = 2, #arg do
  local keys = tonumber(arg[i])
  local ck, marks = dir .. "/ck", dir .. "/marks"
  sh("rm -rf " .. ck .. " " .. marks .. "; : >" .. marks)
  sh(string.format("build/weir run --http off --log-level debug "
    .. "--parallelism 2 "
    .. "--state-backend rocksdb --checkpoint-interval %d --checkpoint-dir "
    .. "%s scripts/bench/state_recovery_job.lua %.0f %d %s 2>%s/err & "
    .. "echo $! >%s/pid", interval, ck, 2 ^ 40, keys, marks, dir, dir))
  job_pid = tonumber(read(dir .. "/pid"))
  local job_dir = ck .. "/bench_state_recovery"
  -- Every key holds state, and a checkpoint took it.
  wait("the keys to fill", 3600, function()
    local _, filled = read(marks):gsub("filled", "")
    return filled >= 2
  end)
  local before = newest(job_dir)
  local taken = wait("a checkpoint of every key", 600, function()
    local c = newest(job_dir)
    return c and (not before or c.n > before.n) and c
  end)
  local workers = {}
  for pid in read(marks):gmatch("first (%d+)") do
    workers[#workers + 1] = tonumber(pid)
  end
  if #workers < 2 then fail("fewer than two workers marked") end
  if not running() then fail("the job ended before the kill") end
  local t0 = core.time_ms()
  os.execute("kill -KILL " .. workers[1])
  local firsts = wait("the restarted workers' first records", 120,
    function()
      local after = {}
      for pid, ms in read(marks):gmatch("first (%d+) (%d+)") do
        if tonumber(ms) >= t0 and tonumber(pid) ~= workers[1]
            and tonumber(pid) ~= workers[2] then
          after[#after + 1] = tonumber(ms)
        end
      end
      return #after >= 2 and after
    end)
  table.sort(firsts)
  os.execute("kill -TERM " .. job_pid .. "; while kill -0 " .. job_pid
    .. " 2>/dev/null; do sleep 0.05; done")
  job_pid = nil
  local log = read(dir .. "/err")
  if not log:find("restoring", 1, true) then
    fail("the job did not restore")
  end
  -- The restart's steps, for where the time goes.
  io.stderr:write(keys, " keys, the log from the kill on:\n",
    log:match("\n([^\n]*was killed by signal.*)$") or "", "\n")
  print(string.format("| %d | %.1f | %.2f | %.2f |", keys,
    taken.full_bytes / 1048576,
    (firsts[1] - t0) / 1000, (firsts[#firsts] - t0) / 1000))
  io.stdout:flush()
end
sh("rm -rf " .. dir)
