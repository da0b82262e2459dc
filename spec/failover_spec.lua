-- Failover of parallel jobs: workers killed (SIGKILL) or hung (SIGSTOP)
-- at random moments; the coordinator restarts them from the newest
-- complete checkpoint and the output equals that of an undisturbed run.
local h = require "helpers"
local weir = require "weir"

local SCRIPT = "spec/fixtures/chaos_wordcount.lua"


describe("failover", function()
  local dir, input, expected

  setup(function()
    dir = h.tmpdir()
    input = dir .. "/input.txt"
    h.repeat_file(h.shakespeare, input, 20)
    expected = h.wordcount_lines(input)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function args(case, strategy, hold)
    return { "run", "--parallelism", "2", "--checkpoint-interval", "100",
      "--checkpoint-dir", dir .. "/" .. case .. "/ck", SCRIPT, input,
      dir .. "/" .. case .. "/out", strategy or "fixed_delay", hold }
  end

  -- The newest complete checkpoint of a case's job, or 0.
  local function newest_checkpoint(case)
    local ids = h.complete_checkpoints(dir .. "/" .. case .. "/ck/chaos")
    return ids[#ids] or 0
  end

  -- Waits until a checkpoint newer than `after` of a case's job completed:
  -- its workers are up and reading. Returns its id.
  local function wait_checkpoint(case, after)
    return h.wait_until(function()
      local id = newest_checkpoint(case)
      return id > after and id
    end, 30000, "a checkpoint after " .. after)
  end

  -- Runs the job and, `times` times, waits a random moment after a new
  -- checkpoint completed and sends `signal` to one of the workers at
  -- random; then waits for the coordinator to restart the job before the
  -- next fault. The job holds its pace (see the fixture) until the last
  -- fault has been handled, so it is still reading its input at each one.
  local function disturb(case, signal, times)
    math.randomseed(7 + times)
    local hold = dir .. "/" .. case .. "-hold"
    h.write_file(hold, "")
    local proc = h.spawn_weir(args(case, nil, hold))
    local ok, err = pcall(function()
      local last = 0
      for i = 1, times do
        last = wait_checkpoint(case, last)
        local victims = h.workers_of(proc.pid)
        assert.are.equal(2, #victims)
        h.sleep(math.random(50, 400))
        local victim = victims[math.random(1, 2)]
        os.execute(string.format("kill -%s %d 2>/dev/null", signal, victim))
        h.wait_until(function()
          local stderr = h.read_file(proc.dir .. "/err") or ""
          return h.count(stderr, "restarting from") >= i
        end, 30000, "restart " .. i)
        last = newest_checkpoint(case)
      end
    end)
    os.remove(hold)
    if not ok then
      h.kill(proc, "KILL")
      error(err, 0)
    end
    local r = h.wait_exit(proc, 120000)
    assert.are.equal(0, r.status, r.stderr)
    -- A loaded machine may add a restart of its own (a late heartbeat).
    assert.is_true(h.count(r.stderr, "restarting from") >= times)
    assert.same(expected, (h.committed_lines(dir .. "/" .. case .. "/out")))
    return r
  end

  it("survives five SIGKILLs of random workers at random moments",
    function()
      local r = disturb("kill", "KILL", 5)
      assert.matches("worker %d was killed by signal 9", r.stderr)
    end)

  it("survives five workers hung with SIGSTOP at random moments",
    function()
      local r = disturb("stop", "STOP", 5)
      assert.matches("worker %d sent no heartbeat for %d+ ms", r.stderr)
    end)

  it("gives up with restart strategy none, keeping the last checkpoint",
    function()
      local hold = dir .. "/none-hold"
      h.write_file(hold, "")
      local proc = h.spawn_weir(args("none", "none", hold))
      local ck = dir .. "/none/ck/chaos"
      wait_checkpoint("none", 0)
      local victim = h.workers_of(proc.pid)[1]
      os.execute("kill -KILL " .. victim)
      local r = h.wait_exit(proc)
      os.remove(hold)
      assert.are.equal(1, r.status)
      assert.matches("^weir: worker %d was killed by signal 9 %(no restart "
        .. "left after 0 restarts; the last complete checkpoint stays for "
        .. "%-%-restore latest%)\n$", r.stderr)
      assert.is_true(#h.complete_checkpoints(ck) >= 1)
      r = h.run_weir({ "run", "--parallelism", "2", "--restore", "latest",
        "--checkpoint-dir", dir .. "/none/ck", SCRIPT, input,
        dir .. "/none/out" })
      assert.are.equal(0, r.status, r.stderr)
      assert.same(expected, (h.committed_lines(dir .. "/none/out")))
    end)
end)

describe("checkpoint_timeout", function()
  it("aborts a checkpoint that does not complete in time, removes it, and "
    .. "the job goes on", function()
    local dir = h.tmpdir()
    local p = weir.pipeline { name = "slow", checkpoint_dir = dir,
      checkpoint_interval = 50, checkpoint_timeout = 100,
      tolerable_failed_checkpoints = 1000 }
    -- The slow branch makes alignment at the union take longer than the
    -- timeout.
    local slow = p:sequence(1, 20000):map(function(x)
      local t = os.clock() + 0.0001
      while os.clock() < t do end
      return x
    end)
    local out = p:sequence(1, 20000):union(slow)
      :key_by(function(x) return x % 10 end)
      :reduce(function(a, b) return a + b end)
      :collect()
    local errors = require "weir.errors"
    local warnings, warn = {}, errors.warn
    errors.warn = function(msg) warnings[#warnings + 1] = msg end
    local ok, err = pcall(p.run, p)
    errors.warn = warn
    assert(ok, err)
    local log = table.concat(warnings, "\n")
    assert.matches("checkpoint %d+ expired after 100 ms and was aborted "
      .. "%(not acknowledged by [^)]*%[0%]", log)
    assert.are.equal(40000, #out)
    -- Only complete checkpoints are left.
    local checkpoint = require "weir.checkpoint_storage"
    for _, c in ipairs(checkpoint.list(dir .. "/slow")) do
      assert.is_true(c.complete, c.path)
    end
    h.sh("rm -rf " .. h.quote(dir))
  end)
end)

describe("heartbeats", function()
  it("go on while a worker's thread is busy in one long step, so the "
    .. "worker is not taken for hung", function()
      local dir = h.tmpdir()
      local r = h.run_weir({ "run", "--parallelism", "2",
        "--heartbeat-timeout", "1000", "--checkpoint-dir", dir .. "/ck",
        "spec/fixtures/busy_worker.lua", dir .. "/out" })
      assert.are.equal(0, r.status, r.stderr)
      assert.is_nil(r.stderr:match("heartbeat"), r.stderr)
      assert.is_nil(r.stderr:match("restart"), r.stderr)
      local lines = h.committed_lines(dir .. "/out")
      assert.are.same({ "1", "10", "2", "3", "4", "5", "6", "7", "8", "9" },
        lines)
      h.sh("rm -rf " .. h.quote(dir))
    end)
end)
