-- weir agent and weir run --agents: a job's worker processes on agents
-- (here two agents on loopback, as two hosts would run them), the shared
-- secret both ways, a worker killed on an agent, an agent lost with the
-- job running, and the workers of a lost coordinator.
local core = require "weir.core"
local h = require "helpers"

local SCRIPT = "spec/fixtures/chaos_wordcount.lua"

describe("weir agent", function()
  local dir, input, expected, secret
  local agents = {}

  -- Starts agent `name` with `slots` slots and waits for its line.
  local function start_agent(name, slots, secret_file)
    local port = h.free_port()
    local proc = h.spawn_weir({ "agent", "--listen", "127.0.0.1:" .. port,
      "--slots", tostring(slots), "--secret-file", secret_file or secret,
      "--work-dir", dir .. "/work-" .. name })
    h.wait_until(function()
      return (h.read_file(proc.dir .. "/err") or ""):find("agent listening")
    end, 10000, "agent " .. name .. " to listen")
    proc.address = "127.0.0.1:" .. port
    agents[name] = proc
    return proc
  end

  local function stop_agent(name)
    local proc = agents[name]
    agents[name] = nil
    h.kill(proc, "TERM")
    return h.wait_exit(proc, 10000)
  end

  local function agent_log(name)
    return h.read_file(agents[name].dir .. "/err") or ""
  end

  setup(function()
    dir = h.tmpdir()
    input = dir .. "/input.txt"
    h.repeat_file(h.shakespeare, input, 20)
    expected = h.wordcount_lines(input)
    secret = dir .. "/secret"
    h.write_file(secret, "a shared secret of some length\n")
    start_agent("a", 2)
    start_agent("b", 2)
  end)

  teardown(function()
    for name in pairs(agents) do stop_agent(name) end
    h.sh("rm -rf " .. h.quote(dir))
  end)

  local function run_args(case, list, extra, hold)
    local args = { "run", "--agents", list, "--secret-file", secret,
      "--checkpoint-interval", "100", "--checkpoint-dir",
      dir .. "/" .. case .. "/ck" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    for _, a in ipairs({ SCRIPT, input, dir .. "/" .. case .. "/out",
        "fixed_delay", hold }) do
      args[#args + 1] = a
    end
    return args
  end

  local function newest_checkpoint(case, after)
    return h.wait_checkpoint(dir .. "/" .. case .. "/ck/chaos", after)
  end

  it("runs a job's workers on the agents' slots, the output that of a "
    .. "run on one host", function()
    local list = agents.a.address .. "," .. agents.b.address
    local r = h.run_weir(run_args("spread", list))
    assert.are.equal(0, r.status, r.stderr)
    assert.same(expected, (h.committed_lines(dir .. "/spread/out")))
    -- The default parallelism is the four slots, two on each agent.
    assert.are.equal(2, h.count(agent_log("a"), "started worker %d"))
    assert.are.equal(2, h.count(agent_log("b"), "started worker %d"))
    -- The script was shipped by content: one copy per agent's cache.
    local cached = core.scandir(dir .. "/work-a/scripts")
    assert.are.equal(1, #cached)
    assert.matches("^%x+%.lua$", cached[1])
  end)

  it("runs a script that loads files from beside itself in place, where "
    .. "the agent's host sees it", function()
    -- examples/nexmark/q1.lua loads common.lua from its own directory.
    local list = agents.a.address .. "," .. agents.b.address
    local r = h.run_weir({ "run", "--agents", list, "--secret-file", secret,
      "--parallelism", "2", "--checkpoint-dir", dir .. "/q1/ck",
      "examples/nexmark/q1.lua",
      "20000", dir .. "/q1/out" })
    assert.are.equal(0, r.status, r.stderr)
    local here = h.run_weir({ "run", "--parallelism", "2",
      "--checkpoint-dir", dir .. "/q1-here/ck", "examples/nexmark/q1.lua",
      "20000", dir .. "/q1-here/out" })
    assert.are.equal(0, here.status, here.stderr)
    local lines = h.committed_lines(dir .. "/q1/out")
    assert.is_true(#lines > 0)
    assert.same((h.committed_lines(dir .. "/q1-here/out")), lines)
  end)

  it("says how many slots are short, and refuses a coordinator without "
    .. "the secret", function()
    local r = h.run_weir(run_args("short", agents.a.address,
      { "--parallelism", "3" }))
    assert.are.equal(1, r.status)
    assert.matches("the job needs 3 slots, one per worker process; the "
      .. "agents offer 2 %(127.0.0.1:%d+: 2%)", r.stderr)
    local other = dir .. "/other-secret"
    h.write_file(other, "not the secret the agents share\n")
    r = h.run_weir({ "run", "--agents", agents.a.address, "--secret-file",
      other, "--checkpoint-dir", dir .. "/refused/ck", SCRIPT, input,
      dir .. "/refused/out" })
    assert.are.equal(1, r.status)
    assert.matches("agent 127.0.0.1:%d+ closed the connection before it "
      .. "offered its slots", r.stderr)
    h.wait_until(function()
      return agent_log("a"):find("refused a connection: it did not prove "
        .. "it knows the shared secret", 1, true)
    end, 10000, "the agent's refusal")
    assert.is_nil(core.stat(dir .. "/refused/out"))
  end)

  it("refuses an agent that does not know the secret", function()
    -- A listener that challenges like an agent but cannot answer the
    -- coordinator's challenge: the coordinator ships it nothing.
    local port_file, got_file = dir .. "/fake-port", dir .. "/fake-got"
    os.execute(string.format("LUA_PATH=%s LUA_CPATH=%s luajit "
      .. "spec/fixtures/fake_agent.lua %s %s >/dev/null 2>&1 &",
      h.quote(package.path), h.quote(package.cpath), h.quote(port_file),
      h.quote(got_file)))
    local port = h.wait_until(function() return h.read_file(port_file) end,
      10000, "the fake agent to listen")
    local r = h.run_weir({ "run", "--agents", "127.0.0.1:" .. port,
      "--secret-file", secret, "--checkpoint-dir", dir .. "/fake/ck",
      SCRIPT, input, dir .. "/fake/out" })
    assert.are.equal(1, r.status)
    assert.matches("agent 127.0.0.1:%d+ did not prove it knows the shared "
      .. "secret", r.stderr)
    -- It received the answer to its challenge and the coordinator's own
    -- challenge, and nothing after them.
    assert.are.equal("44 32", h.wait_until(function()
      return h.read_file(got_file)
    end, 10000, "the fake agent's connection to end"))
    assert.is_nil(core.stat(dir .. "/fake/out"))
  end)

  it("kills the workers of a coordinator it lost", function()
    local hold = dir .. "/orphans-hold"
    h.write_file(hold, "")
    local proc = h.spawn_weir(run_args("orphans", agents.a.address, nil,
      hold))
    newest_checkpoint("orphans", 0)
    local workers = h.workers_of(agents.a.pid)
    assert.are.equal(2, #workers)
    h.kill(proc, "KILL")
    h.wait_until(function() return #h.workers_of(agents.a.pid) == 0 end,
      10000, "the agent to kill the workers")
    os.remove(hold)
    assert.are.equal(137, h.wait_exit(proc).status)
  end)

  it("recovers exactly once from a worker killed on an agent and from an "
    .. "agent lost, on the slots that remain", function()
    local hold = dir .. "/loss-hold"
    h.write_file(hold, "")
    local list = agents.a.address .. "," .. agents.b.address
    local proc = h.spawn_weir(run_args("loss", list, { "--parallelism", "2" },
      hold))
    local r = h.disturb_held(proc, hold, function()
      local last = newest_checkpoint("loss", 0)
      -- One worker on each agent.
      assert.are.equal(1, #h.workers_of(agents.a.pid))
      assert.are.equal(1, #h.workers_of(agents.b.pid))
      os.execute("kill -KILL " .. h.workers_of(agents.a.pid)[1])
      h.wait_until(function()
        return h.count(h.read_file(proc.dir .. "/err") or "",
          "restarting from") >= 1
      end, 30000, "the first restart")
      last = newest_checkpoint("loss", last)
      -- Agent b and its worker die, as a host that is switched off.
      h.kill(agents.b, "KILL")
      h.wait_exit(agents.b)
      agents.b = nil
      h.wait_until(function()
        return h.count(h.read_file(proc.dir .. "/err") or "",
          "restarting from") >= 2
      end, 30000, "the second restart")
      newest_checkpoint("loss", last)
      -- Both workers now run on agent a.
      assert.are.equal(2, #h.workers_of(agents.a.pid))
    end)
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("worker %d was killed by signal 9", r.stderr)
    assert.same(expected, (h.committed_lines(dir .. "/loss/out")))
  end)

  it("restarts at a lower parallelism when the slots that remain are too "
    .. "few", function()
    start_agent("c", 1)
    start_agent("d", 1)
    local hold = dir .. "/fewer-hold"
    h.write_file(hold, "")
    local list = agents.c.address .. "," .. agents.d.address
    local proc = h.spawn_weir(run_args("fewer", list, nil, hold))
    local err_of = function() return h.read_file(proc.dir .. "/err") or "" end
    local r = h.disturb_held(proc, hold, function()
      local last = newest_checkpoint("fewer", 0)
      stop_agent("d")
      h.wait_until(function()
        return err_of():find("the job restarts at parallelism 1 (was 2) on "
          .. "the slots that remain", 1, true)
      end, 30000, "the job to restart at parallelism 1")
      newest_checkpoint("fewer", last)
      assert.are.equal(1, #h.workers_of(agents.c.pid))
    end)
    assert.are.equal(0, r.status, r.stderr)
    assert.same(expected, (h.committed_lines(dir .. "/fewer/out")))
    stop_agent("c")
  end)

  it("waits for a lost agent when no slot remains, and goes on once it is "
    .. "back", function()
    start_agent("e", 1)
    local hold = dir .. "/back-hold"
    h.write_file(hold, "")
    local proc = h.spawn_weir(run_args("back", agents.e.address, nil, hold))
    local err_of = function() return h.read_file(proc.dir .. "/err") or "" end
    local r = h.disturb_held(proc, hold, function()
      local last = newest_checkpoint("back", 0)
      local port = agents.e.address:match(":(%d+)$")
      h.kill(agents.e, "KILL")
      h.wait_exit(agents.e)
      agents.e = nil
      -- No slot left: the job says so and tries again as its restart
      -- strategy allows.
      h.wait_until(function()
        return err_of():find("the job needs 1 slots, one per worker "
          .. "process; the agents offer 0 (every agent is lost)", 1, true)
      end, 30000, "the job to find no slot")
      local e = h.spawn_weir({ "agent", "--listen", "127.0.0.1:" .. port,
        "--slots", "1", "--secret-file", secret, "--work-dir",
        dir .. "/work-e" })
      agents.e = e
      h.wait_until(function()
        return err_of():find("agent 127.0.0.1:" .. port .. " is back", 1,
          true)
      end, 30000, "the job to see the agent back")
      newest_checkpoint("back", last)
      assert.are.equal(1, #h.workers_of(e.pid))
    end)
    assert.are.equal(0, r.status, r.stderr)
    assert.same(expected, (h.committed_lines(dir .. "/back/out")))
  end)

  it("creates the default secret file private, once", function()
    local home = dir .. "/home"
    h.sh("mkdir -p " .. h.quote(home))
    local cmd = string.format("HOME=%s LUA_PATH=%s LUA_CPATH=%s luajit -e "
      .. "'io.write(assert(require(\"weir.handshake\").shared_secret()))'",
      h.quote(home), h.quote(package.path), h.quote(package.cpath))
    local first, status = h.sh(cmd)
    assert.are.equal(0, status, first)
    assert.matches("^%x+$", first)
    assert.are.equal(64, #first)
    local path = home .. "/.config/weir/secret"
    assert.are.equal("-rw-------", (h.sh("stat -c %A " .. h.quote(path))
      :gsub("%s+$", "")))
    assert.are.equal(first, (h.sh(cmd)))
    -- A secret file too short to be one is refused, naming it.
    h.write_file(path, "short\n")
    local out = h.sh(cmd .. " 2>&1")
    assert.matches("the secret file .*/%.config/weir/secret must hold at "
      .. "least 16 characters", out)
  end)

  it("fails the job, naming the directory, when an agent's host does not "
    .. "see the checkpoint directory", function()
    if core.getuid() ~= 0 then
      pending("needs root: a mount namespace hides the directory")
      return
    end
    -- The agent runs in a mount namespace where a tmpfs covers the
    -- directory the checkpoints go to, as a host without the shared
    -- file system would.
    local hidden = dir .. "/hidden"
    h.sh("mkdir -p " .. h.quote(hidden .. "/ck"))
    local port = h.free_port()
    local proc = h.spawn_weir({ "agent", "--listen", "127.0.0.1:" .. port,
      "--slots", "1", "--secret-file", secret, "--work-dir",
      dir .. "/work-f" }, "exec unshare -m sh -c 'mount -t tmpfs none "
      .. hidden .. " && exec \"$0\" \"$@\"' ")
    agents.f = proc
    h.wait_until(function()
      return (h.read_file(proc.dir .. "/err") or ""):find("agent listening")
    end, 10000, "the agent in its mount namespace")
    local r = h.run_weir({ "run", "--agents", "127.0.0.1:" .. port,
      "--secret-file", secret, "--checkpoint-dir", hidden .. "/ck", SCRIPT,
      input, dir .. "/hidden-out" })
    assert.are.equal(1, r.status)
    assert.matches("worker 0 could not start on agent 127%.0%.0%.1:%d+: the "
      .. "job's checkpoint directory " .. hidden:gsub("%p", "%%%0")
      .. "/ck/chaos is not on host 127%.0%.0%.1: checkpoints must be on a "
      .. "file system every host sees", r.stderr)
    assert.not_matches("restarting", r.stderr)
    stop_agent("f")
  end)
end)
