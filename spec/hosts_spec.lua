-- A job across hosts: network namespaces on a bridge stand for a
-- coordinator's host (c), two agents' hosts (a, b), a standby
-- coordinator's host (d) and etcd's (e); addresses only inside them, one
-- file system, as a shared one would be. A run across them gives the
-- output of a run on one host; the loss of a host (every process of it
-- killed) and a network partition (its link down) mid-run are survived on
-- the host that remains, exactly once; a standby on another host takes
-- over from a leader killed mid-run and continues on the agents; a
-- coordinator without the secret is refused. Needs root and `ip netns`;
-- skips with one line otherwise.
local core = require "weir.core"
local h = require "helpers"

local SCRIPT = "spec/fixtures/chaos_wordcount.lua"
local PREFIX = "wr" .. tostring(core.getpid() % 10000)
local NET = "10.199." .. (core.getpid() % 250)
-- The hosts (see scripts/netns): namespace, veth inside it, address.
local HOSTS = {}
local NAMES = { "c", "a", "b", "d", "e" }
for i, name in ipairs(NAMES) do
  HOSTS[name] = { ns = PREFIX .. name, veth = PREFIX .. name .. "v",
    ip = NET .. "." .. (i + 1) }
end

local function run(cmd)
  local out, status = h.sh(cmd .. " 2>&1")
  return status == 0, out
end

local function tear_down_network()
  run("scripts/netns down " .. PREFIX .. " " .. table.concat(NAMES, " "))
end

-- Makes the namespaces and the bridge; nil and why when it cannot.
local function set_up_network()
  if core.getuid() ~= 0 then return nil, "needs root" end
  local ok, out = run("scripts/netns up " .. PREFIX .. " " .. NET .. " "
    .. table.concat(NAMES, " "))
  if not ok then return nil, (out:gsub("%s+$", "")) end
  return true
end

describe("a job across hosts (network namespaces)", function()
  local ready, why = set_up_network()
  if not ready then
    it("runs across hosts", function()
      pending("network namespaces cannot be made here (" .. why .. ")")
    end)
    return
  end

  local dir, input, expected, secret
  local agents = {}

  setup(function()
    dir = h.tmpdir()
    input = dir .. "/input.txt"
    h.repeat_file(h.shakespeare, input, 20)
    expected = h.wordcount_lines(input)
    secret = dir .. "/secret"
    h.write_file(secret, "the secret these hosts share\n")
  end)

  teardown(function()
    for name in pairs(agents) do h.kill(agents[name], "KILL") end
    tear_down_network()
    h.sh("rm -rf " .. h.quote(dir))
  end)

  -- Starts an agent on host `name` with `slots` slots.
  local function start_agent(name, slots)
    local host = HOSTS[name]
    local proc = h.spawn_weir({ "agent", "--listen", host.ip .. ":6123",
      "--slots", tostring(slots), "--secret-file", secret, "--work-dir",
      dir .. "/work-" .. name }, "exec ip netns exec " .. host.ns .. " ")
    h.wait_until(function()
      return (h.read_file(proc.dir .. "/err") or ""):find("agent listening")
    end, 10000, "the agent on host " .. name)
    agents[name] = proc
    return proc
  end

  local function stop_agents()
    for name, proc in pairs(agents) do
      h.kill(proc, "TERM")
      h.wait_exit(proc, 10000)
      agents[name] = nil
    end
  end

  -- `weir run` on host c (or on_host) with the agents on a and b.
  local function coordinator(case, extra, hold, secret_file, on_host)
    local args = { "run", "--agents", HOSTS.a.ip .. ":6123,"
      .. HOSTS.b.ip .. ":6123", "--secret-file", secret_file or secret,
      "--checkpoint-interval", "100", "--checkpoint-dir",
      dir .. "/" .. case .. "/ck" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    for _, a in ipairs({ SCRIPT, input, dir .. "/" .. case .. "/out",
        "fixed_delay", hold }) do
      args[#args + 1] = a
    end
    return h.spawn_weir(args, "exec ip netns exec "
      .. HOSTS[on_host or "c"].ns .. " ")
  end

  local function newest_checkpoint(case, after)
    return h.wait_checkpoint(dir .. "/" .. case .. "/ck/chaos", after)
  end

  it("gives the output of a run on one host, with a worker on each host",
    function()
      start_agent("a", 1)
      start_agent("b", 1)
      local r = h.wait_exit(coordinator("across"), 60000)
      assert.are.equal(0, r.status, r.stderr)
      assert.same(expected, (h.committed_lines(dir .. "/across/out")))
      for _, name in ipairs({ "a", "b" }) do
        assert.matches("started worker %d of coordinator tcp:"
          .. HOSTS.c.ip:gsub("%.", "%%.") .. ":%d+",
          h.read_file(agents[name].dir .. "/err"))
      end
      stop_agents()
    end)

  -- Runs the job on a (2 slots) and b (1 slot) at parallelism 2, one
  -- worker on each; once a checkpoint completed, disturb() takes host b
  -- away; the job must restart on a alone and write the exact output.
  local function survive(case, disturb)
    start_agent("a", 2)
    start_agent("b", 1)
    local hold = dir .. "/" .. case .. "-hold"
    h.write_file(hold, "")
    local proc = coordinator(case, { "--parallelism", "2" }, hold)
    local ok, err = pcall(function()
      local last = newest_checkpoint(case, 0)
      assert.are.equal(1, #h.workers_of(agents.b.pid))
      disturb()
      h.wait_until(function()
        return h.count(h.read_file(proc.dir .. "/err") or "",
          "restarting from") >= 1
      end, 30000, "the restart")
      newest_checkpoint(case, last)
      assert.are.equal(2, #h.workers_of(agents.a.pid))
    end)
    os.remove(hold)
    if not ok then
      h.kill(proc, "KILL")
      stop_agents()
      error(tostring(err) .. "; the coordinator's log:\n"
        .. (h.read_file(proc.dir .. "/err") or ""), 0)
    end
    local r = h.wait_exit(proc, 120000)
    assert.are.equal(0, r.status, r.stderr)
    assert.same(expected, (h.committed_lines(dir .. "/" .. case .. "/out")))
    stop_agents()
    return r
  end

  it("survives the loss of a host (all its processes killed) mid-run",
    function()
      local r = survive("loss", function()
        local b = agents.b
        for _, w in ipairs(h.workers_of(b.pid)) do
          os.execute("kill -KILL " .. w)
        end
        h.kill(b, "KILL")
        h.wait_exit(b)
        agents.b = nil
      end)
      -- Seen through the worker's exit or the agent's, whichever first.
      assert.is_truthy(r.stderr:find("agent " .. HOSTS.b.ip .. ":6123 was "
        .. "lost", 1, true) or r.stderr:find("worker 1 was killed by "
        .. "signal 9", 1, true), r.stderr)
    end)

  it("survives a network partition of a host mid-run", function()
    local link = "ip netns exec " .. HOSTS.b.ns .. " ip link set "
      .. HOSTS.b.veth
    local r = survive("partition", function()
      assert(run(link .. " down"))
    end)
    assert(run(link .. " up"))
    -- Seen by the agent's heartbeats or its worker's, whichever first.
    assert.is_truthy(r.stderr:find("agent " .. HOSTS.b.ip .. ":6123 sent "
      .. "nothing for", 1, true) or r.stderr:find("sent no heartbeat for",
      1, true), r.stderr)
  end)

  it("continues on a standby coordinator of another host when the "
    .. "leader is killed mid-run, on the same agents", function()
      local etcd_dir = dir .. "/etcd"
      h.sh("mkdir -p " .. h.quote(etcd_dir))
      local etcd_pid, url = h.start_etcd(etcd_dir, { ip = HOSTS.e.ip,
        prefix = "ip netns exec " .. HOSTS.e.ns .. " " })
      if not etcd_pid then return pending("etcd is not installed") end
      start_agent("a", 1)
      start_agent("b", 1)
      local hold = dir .. "/ha-hold"
      h.write_file(hold, "")
      local extra = { "--ha", url, "--parallelism", "2" }
      local leader = coordinator("ha", extra, hold)
      local standby
      local function log_of(proc)
        return h.read_file(proc.dir .. "/err") or ""
      end
      local ok, err = pcall(function()
        h.wait_until(function() return log_of(leader):find("leading job") end,
          20000, "the leader")
        standby = coordinator("ha", extra, hold, nil, "d")
        h.wait_until(function()
          return log_of(standby):find("standby: job 'chaos' is led by")
        end, 20000, "the standby")
        local last = newest_checkpoint("ha", 0)
        h.kill(leader, "KILL")
        h.wait_exit(leader)
        h.wait_until(function()
          local log = log_of(standby)
          return log:find("taking over from") and log:find("restoring "
            .. dir .. "/ha/ck/chaos/chk-", 1, true)
        end, 30000, "the standby to take over")
        newest_checkpoint("ha", last)
        -- Both agents run the standby's workers now.
        for _, name in ipairs({ "a", "b" }) do
          assert.matches("started worker %d of coordinator tcp:"
            .. HOSTS.d.ip:gsub("%.", "%%.") .. ":%d+",
            h.read_file(agents[name].dir .. "/err"))
        end
      end)
      os.remove(hold)
      local r = standby and h.wait_exit(standby, 120000)
      os.execute("kill " .. etcd_pid)
      if not ok then
        h.kill(leader, "KILL")
        stop_agents()
        error(tostring(err) .. "; the standby's log:\n"
          .. (standby and log_of(standby) or ""), 0)
      end
      assert.are.equal(0, r.status, r.stderr)
      assert.same(expected, (h.committed_lines(dir .. "/ha/out")))
      stop_agents()
    end)

  it("refuses a coordinator without the secret", function()
    start_agent("a", 1)
    start_agent("b", 1)
    local other = dir .. "/other"
    h.write_file(other, "a secret the hosts do not share\n")
    local r = h.wait_exit(coordinator("refused", nil, nil, other), 30000)
    assert.are.equal(1, r.status)
    assert.matches("closed the connection before it offered its slots",
      r.stderr)
    assert.is_nil(core.stat(dir .. "/refused/out"))
    stop_agents()
  end)
end)
