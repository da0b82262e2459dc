-- The benchmark of scripts/bench-hosts (see there).
--   luajit scripts/bench/hosts.lua RUNS COPIES
local core = require "weir.core"
local common = dofile("scripts/bench/common.lua")

local runs, copies = tonumber(arg[1]), tonumber(arg[2])
local run_or_exit = common.runner("bench-hosts")
local PREFIX_ = "wb"
local running = {}  -- pids of the processes started, killed on a failure
local function clean_up()
  for pid in pairs(running) do os.execute("kill -KILL " .. pid) end
  os.execute("sleep 0.2; scripts/netns down " .. PREFIX_ .. " c a b d e")
end
local function sh(cmd)
  local ok = os.execute(cmd)
  if ok == 0 or ok == true then return end
  clean_up()
  run_or_exit(cmd)
end
local read = common.read
local dir = "build/bench"
local PREFIX, NET = PREFIX_, "10.197.0"
local IP = { c = NET .. ".2", a = NET .. ".3", b = NET .. ".4",
  d = NET .. ".5", e = NET .. ".6" }
sh("mkdir -p " .. dir)
local abs = core.cwd() .. "/" .. dir

common.print_machine()
local input = common.repeated_input(abs, copies)

local secret = abs .. "/hosts-secret"
local f = assert(io.open(secret, "wb"))
f:write("the secret of the benchmark's hosts\n")
f:close()

os.execute("scripts/netns down " .. PREFIX .. " c a b d e")
sh("scripts/netns up " .. PREFIX .. " " .. NET .. " c a b d e")

-- Starts an agent on host name; returns its pid.
local function agent(name, slots)
  local log = abs .. "/hosts-agent-" .. name .. ".log"
  sh(string.format(": >%s; ip netns exec %s%s build/weir agent --listen "
    .. "%s:6123 --slots %d --secret-file %s --work-dir %s/hosts-work >>%s "
    .. "2>&1 & echo $! >%s.pid", log, PREFIX, name, IP[name], slots, secret,
    abs, log, log))
  repeat
    local l = io.open(log):read("*a")
  until l:find("agent listening") or not os.execute("sleep 0.05")
  local pid = tonumber(io.open(log .. ".pid"):read("*a"))
  running[pid] = true
  return pid
end

local function stop(pid)
  running[pid] = nil
  os.execute("kill -TERM " .. pid .. " 2>/dev/null; while kill -0 " .. pid
    .. " 2>/dev/null; do sleep 0.05; done")
end

-- `weir run` of script with script_args (a string) at parallelism 2, on
-- host c (or on_host) with the agents, or on this host without; extra:
-- more options.
local function weir_cmd(agents, ck, script, script_args, interval, on_host,
    extra)
  local prefix = agents and "ip netns exec " .. PREFIX .. (on_host or "c")
    .. " " or ""
  return string.format("%sbuild/weir run --http off --parallelism 2 "
    .. "--checkpoint-interval %d --checkpoint-dir %s %s%s%s %s", prefix,
    interval or 1000, ck, agents and ("--agents " .. agents
    .. " --secret-file " .. secret .. " ") or "", extra or "", script,
    script_args)
end

-- The jobs each variant runs: word count on the input, and Nexmark q5
-- (hot items: sliding windows, a keyed exchange and a join) on
-- NEXMARK_EVENTS generated events.
local NEXMARK_EVENTS = 2000000
local jobs = {
  { name = "word count", script = "examples/wordcount.lua",
    args = function(out) return input .. " " .. out end },
  { name = "Nexmark q5, " .. NEXMARK_EVENTS .. " events",
    script = "examples/nexmark/q5.lua",
    args = function(out) return NEXMARK_EVENTS .. " " .. out end },
}

local variants = {
  { name = "(a) one host, no agents" },
  { name = "(b) 1 agent host x 2 slots", agents = IP.a .. ":6123",
    start = function() return { agent("a", 2) } end },
  { name = "(c) 2 agent hosts x 1 slot", agents = IP.a .. ":6123,"
    .. IP.b .. ":6123",
    start = function() return { agent("a", 1), agent("b", 1) } end },
}
for _, v in ipairs(variants) do
  print(v.name .. ": " .. weir_cmd(v.agents, "CK", "SCRIPT", "ARGS..."))
end
for _, job in ipairs(jobs) do
  local reference
  for _, v in ipairs(variants) do v.times = {} end
  for round = 1, runs do
    for _, v in ipairs(variants) do
      local pids = v.start and v.start() or {}
      local ck, out = abs .. "/hosts-ck", abs .. "/hosts-out"
      sh("rm -rf " .. ck .. " " .. out)
      local t0 = core.monotonic_ms()
      sh(weir_cmd(v.agents, ck, job.script, job.args(out)) .. " 2>"
        .. abs .. "/hosts-run.log")
      local secs = (core.monotonic_ms() - t0) / 1000
      for _, pid in ipairs(pids) do stop(pid) end
      local digest = common.capture("cat " .. out
        .. "/part-* | sort | md5sum")
      reference = reference or digest
      if digest ~= reference then
        io.stderr:write("bench-hosts: ", v.name, " wrote another output of ",
          job.name, "\n")
        os.exit(1)
      end
      v.times[round] = secs
      io.stderr:write(string.format("run %d/%d  %s  %-28s %.2f s\n", round,
        runs, job.name, v.name, secs))
    end
  end
  print()
  print(job.name .. " (the same output in every variant):")
  print()
  print("| variant | median s | fastest s | x (a) |")
  print("| --- | ---: | ---: | ---: |")
  local base = common.median({ unpack(variants[1].times) })
  for _, v in ipairs(variants) do
    local m = common.median({ unpack(v.times) })
    print(string.format("| %s | %.2f | %.2f | %.2f |", v.name, m,
      math.min(unpack(v.times)), base / m))
  end
end
print()

-- Host loss: the chaos word count (held at a pace, so it is mid-run) on
-- hosts a (2 slots) and b (1 slot), one worker each; host b is killed
-- once a checkpoint completed.
local pids = { agent("a", 2), agent("b", 1) }
local ck, out = abs .. "/hosts-ck", abs .. "/hosts-out"
local hold, log = abs .. "/hosts-hold", abs .. "/hosts-loss.log"
sh("rm -rf " .. ck .. " " .. out .. "; : >" .. hold)
sh(weir_cmd(IP.a .. ":6123," .. IP.b .. ":6123", ck,
  "spec/fixtures/chaos_wordcount.lua", input .. " " .. out
  .. " fixed_delay " .. hold, 100)
  .. " 2>" .. log .. " & echo $! >" .. log .. ".pid")
local function newest()
  local n = 0
  for _, name in ipairs(core.scandir(ck .. "/chaos") or {}) do
    local id = tonumber(name:match("^chk%-(%d+)$"))
    if id and core.stat(ck .. "/chaos/" .. name .. "/_manifest") then
      n = math.max(n, id)
    end
  end
  return n
end
local function wait(fn)
  local deadline = core.monotonic_ms() + 60000
  while not fn() do
    if core.monotonic_ms() > deadline then
      io.stderr:write("bench-hosts: timed out; the job's log:\n",
        read(log))
      clean_up()
      os.exit(1)
    end
    os.execute("sleep 0.01")
  end
end
-- The time from t0 to the first appearance of text in the log file at
-- path, and to the first checkpoint after before; in s.
local function times_after(t0, path, text, before)
  local seen
  wait(function()
    seen = seen or (read(path):find(text, 1, true)
      and core.monotonic_ms())
    return seen
  end)
  wait(function() return newest() > before end)
  return (seen - t0) / 1000, (core.monotonic_ms() - t0) / 1000
end
local function wait_pid(pidfile)
  os.execute("while kill -0 $(cat " .. pidfile .. ") 2>/dev/null; do "
    .. "sleep 0.05; done")
end
wait(function() return newest() >= 1 end)
local t0 = core.monotonic_ms()
os.execute("pkill -KILL -P " .. pids[2] .. "; kill -KILL " .. pids[2])
local restored, next_checkpoint = times_after(t0, log, "restoring",
  newest())
os.remove(hold)
wait_pid(log .. ".pid")
stop(pids[1])
print(string.format("host loss (heartbeat_timeout 1000 ms, restart delay "
  .. "100 ms): %.2f s to the restore, %.2f s to the next completed "
  .. "checkpoint", restored, next_checkpoint))

-- Coordinator fail-over: etcd on host e, the leader on host c, a standby
-- on host d, both with the agents on a and b (one slot each); the
-- leader is killed (SIGKILL) once a checkpoint completed.
local etcd_log = abs .. "/hosts-etcd.log"
sh(string.format("rm -rf %s/hosts-etcd; ip netns exec %se etcd --name "
  .. "bench --data-dir %s/hosts-etcd --listen-client-urls http://%s:2379 "
  .. "--advertise-client-urls http://%s:2379 --listen-peer-urls "
  .. "http://%s:2380 --initial-advertise-peer-urls http://%s:2380 "
  .. "--initial-cluster bench=http://%s:2380 >%s 2>&1 & echo $! >%s.pid",
  abs, PREFIX, abs, IP.e, IP.e, IP.e, IP.e, IP.e, etcd_log, etcd_log))
running[tonumber(io.open(etcd_log .. ".pid"):read("*a"))] = true
wait(function()
  return read(etcd_log):find("ready to serve client requests", 1, true)
end)
pids = { agent("a", 1), agent("b", 1) }
local standby_log = abs .. "/hosts-standby.log"
sh("rm -rf " .. ck .. " " .. out .. "; : >" .. hold)
local function ha_cmd(on_host)
  return weir_cmd(IP.a .. ":6123," .. IP.b .. ":6123", ck,
    "spec/fixtures/chaos_wordcount.lua", input .. " " .. out
    .. " fixed_delay " .. hold, 100, on_host, "--ha etcd://" .. IP.e
    .. ":2379 ")
end
-- Starts `weir run --ha` on host; waits for text in its log.
local function coordinator(host, path, text)
  sh(": >" .. path .. "; " .. ha_cmd(host) .. " 2>" .. path
    .. " & echo $! >" .. path .. ".pid")
  running[tonumber(read(path .. ".pid"))] = true
  wait(function() return read(path):find(text, 1, true) end)
end
coordinator("c", log, "leading job")
coordinator("d", standby_log, "standby: job")
wait(function() return newest() >= 1 end)
t0 = core.monotonic_ms()
os.execute("kill -KILL $(cat " .. log .. ".pid)")
local took_over, failed_over = times_after(t0, standby_log, "taking over",
  newest())
os.remove(hold)
wait_pid(standby_log .. ".pid")
for _, pid in ipairs(pids) do stop(pid) end
for pid in pairs(running) do stop(pid) end
os.execute("scripts/netns down " .. PREFIX .. " c a b d e")
print(string.format("coordinator fail-over (lease 2 s, etcd and the two "
  .. "coordinators on hosts of their own): %.2f s to the standby's "
  .. "takeover, %.2f s to its first completed checkpoint", took_over,
  failed_over))
