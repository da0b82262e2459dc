-- Coordinator high availability (weir run --ha etcd://...): a standby
-- waits without starting anything, takes over when the leader is killed
-- mid-run and continues its checkpoints to the exact output; a leader
-- stopped past its lease (SIGSTOP) and resumed stops at once without
-- publishing, and the output stays exact. etcd runs on loopback.
local etcd = require "weir.etcd"
local h = require "helpers"

local SCRIPT = "spec/fixtures/chaos_wordcount.lua"

describe("weir run --ha", function()
  local dir, input, expected, etcd_pid, url

  setup(function()
    dir = h.tmpdir()
    etcd_pid, url = h.start_etcd(dir)
    input = dir .. "/input.txt"
    h.repeat_file(h.shakespeare, input, 20)
    expected = h.wordcount_lines(input)
  end)

  teardown(function()
    if etcd_pid then os.execute("kill " .. etcd_pid) end
    h.sh("rm -rf " .. h.quote(dir))
  end)

  local function coordinator(case, hold, out, extra)
    local args = { "run", "--ha", url, "--parallelism", "2",
      "--checkpoint-interval", "100", "--checkpoint-dir",
      dir .. "/" .. case .. "/ck" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    for _, a in ipairs({ SCRIPT, input, dir .. "/" .. case .. "/"
        .. (out or "out"), "fixed_delay", hold }) do
      args[#args + 1] = a
    end
    return h.spawn_weir(args)
  end

  local function log_of(proc) return h.read_file(proc.dir .. "/err") or "" end

  -- The value of key in etcd now: "" when absent, "error: ..." when etcd
  -- did not answer it (bounded).
  local function etcd_value(key)
    local value
    assert(etcd.new(url)):get(key, function(e, v)
      value = e and "error: " .. e or v or ""
    end)
    h.wait_until(function() return value end, 10000, "etcd to answer")
    return value
  end

  -- Starts a leader and a standby of the case's job (held at a pace by
  -- hold); returns them once the standby waits.
  local function leader_and_standby(case, hold)
    h.write_file(hold, "")
    local leader = coordinator(case, hold)
    h.wait_until(function() return log_of(leader):find("leading job") end,
      20000, "the leader")
    local standby = coordinator(case, hold)
    h.wait_until(function()
      return log_of(standby):find("standby: job 'chaos' is led by")
    end, 20000, "the standby")
    return leader, standby
  end

  it("takes over when the leader is killed, continuing its checkpoints",
    function()
      if not etcd_pid then return pending("etcd is not installed") end
      local hold = dir .. "/kill-hold"
      local leader, standby = leader_and_standby("kill", hold)
      local job_dir = dir .. "/kill/ck/chaos"
      local r = h.disturb_held(standby, hold, function()
        local last = h.wait_checkpoint(job_dir, 0)
        -- The standby started nothing: no workers, no restore.
        assert.are.equal(0, #h.workers_of(standby.pid))
        assert.not_matches("restoring", log_of(standby))
        h.kill(leader, "KILL")
        h.wait_exit(leader)
        -- It restores the leader's newest checkpoint, then takes its own.
        h.wait_until(function()
          local log = log_of(standby)
          return log:find("taking over from") and log:find("restoring "
            .. job_dir .. "/chk-", 1, true)
        end, 20000, "the standby to take over")
        h.wait_checkpoint(job_dir, last)
      end)
      assert.are.equal(0, r.status, r.stderr)
      assert.same(expected, (h.committed_lines(dir .. "/kill/out")))
    end)

  it("stops a leader that lost its lease without publishing anything",
    function()
      if not etcd_pid then return pending("etcd is not installed") end
      local hold = dir .. "/stop-hold"
      local leader, standby = leader_and_standby("stop", hold)
      local job_dir = dir .. "/stop/ck/chaos"
      local r = h.disturb_held(standby, hold, function()
        local last = h.wait_checkpoint(job_dir, 0)
        h.kill(leader, "STOP")
        h.wait_until(function()
          return log_of(standby):find("taking over from")
        end, 20000, "the standby to take over")
        last = h.wait_checkpoint(job_dir, last)
        h.kill(leader, "CONT")
        local lr = h.wait_exit(leader, 20000)
        assert.are.equal(1, lr.status)
        assert.matches("lost the leadership of job 'chaos'", lr.stderr)
        h.wait_checkpoint(job_dir, last)
      end)
      assert.are.equal(0, r.status, r.stderr)
      assert.same(expected, (h.committed_lines(dir .. "/stop/out")))
    end)

  -- Runs the case's job alone under --ha and kills it (kill -9) once a
  -- checkpoint completed and etcd recorded it: a run left unfinished.
  local function crashed_run(case)
    local hold = dir .. "/" .. case .. "-hold"
    h.write_file(hold, "")
    local leader = coordinator(case, hold)
    local ok, err = pcall(function()
      local job_dir = dir .. "/" .. case .. "/ck/chaos"
      -- The second checkpoint: the first one's etcd record is written by
      -- the time the second completes.
      h.wait_checkpoint(job_dir, h.wait_checkpoint(job_dir, 0))
      h.kill(leader, "KILL")
      h.wait_exit(leader)
      -- Its lease ends a time-to-live later: a coordinator started before
      -- would wait for it as a standby does.
      h.wait_until(function()
        return etcd_value("/weir" .. job_dir .. "/leader") == ""
      end, 20000, "the killed leader's lease to end")
    end)
    os.remove(hold)
    if not ok then
      h.kill(leader, "KILL")
      error(tostring(err) .. "; the job's log:\n"
        .. (h.read_file(leader.dir .. "/err") or ""), 0)
    end
  end

  it("continues an unfinished run in the job's next weir run --ha",
    function()
      if not etcd_pid then return pending("etcd is not installed") end
      crashed_run("again")
      local r = h.wait_exit(coordinator("again"), 60000)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("continuing run %S+ of job 'chaos', which etcd "
        .. "records as unfinished", r.stderr)
      assert.matches("restoring .*/again/ck/chaos/chk%-%d+", r.stderr)
      assert.same(expected, (h.committed_lines(dir .. "/again/out")))
    end)

  it("refuses to start an unfinished run over when its checkpoints are "
    .. "gone; --ha-new-run starts a new run", function()
      if not etcd_pid then return pending("etcd is not installed") end
      crashed_run("gone")
      h.sh("rm -rf " .. h.quote(dir .. "/gone/ck/chaos") .. "/chk-*")
      local r = h.wait_exit(coordinator("gone"), 60000)
      assert.are.equal(1, r.status, r.stderr)
      assert.matches("cannot continue run %S+: no intact checkpoint of it "
        .. "is left in .*/gone/ck/chaos %(its last was .*/chk%-%d+%)",
        r.stderr)
      assert.matches("add %-%-ha%-new%-run", r.stderr)
      assert.not_matches("restoring", r.stderr)
      r = h.wait_exit(coordinator("gone", nil, "new-out",
        { "--ha-new-run" }), 60000)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("starting a new run of job 'chaos'", r.stderr)
      assert.same(expected, (h.committed_lines(dir .. "/gone/new-out")))
      -- The new run is what etcd records now: a next run starts anew.
      r = h.wait_exit(coordinator("gone", nil, "third-out"), 60000)
      assert.are.equal(0, r.status, r.stderr)
      assert.not_matches("continuing run", r.stderr)
    end)

  it("continues a new run of a finished job when its leader is killed "
    .. "before its first checkpoint", function()
      if not etcd_pid then return pending("etcd is not installed") end
      local r = h.wait_exit(coordinator("rerun"), 60000)
      assert.are.equal(0, r.status, r.stderr)
      local hold = dir .. "/rerun-hold"
      h.write_file(hold, "")
      local args = { "--checkpoint-interval", "600000" }
      local leader = coordinator("rerun", hold, "out2", args)
      h.wait_until(function() return log_of(leader):find("leading job") end,
        20000, "the leader")
      local standby = coordinator("rerun", hold, "out2", args)
      r = h.disturb_held(standby, hold, function()
        h.wait_until(function()
          return log_of(standby):find("standby: job 'chaos' is led by")
        end, 20000, "the standby")
        -- The new run is in etcd once its workers start.
        local key = "/weir" .. dir .. "/rerun/ck/chaos/lineage"
        h.wait_until(function()
          local value = etcd_value(key)
          return not value:find("^error") and not value:find("final")
        end, 20000, "the new run in etcd")
        assert.are.equal(2, #h.workers_of(leader.pid))
        h.kill(leader, "KILL")
        h.wait_exit(leader)
      end)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("no checkpoint of this run completed yet", r.stderr)
      assert.same(expected, (h.committed_lines(dir .. "/rerun/out2")))
    end)

  it("ends a standby at once when the job it waited for finished",
    function()
      if not etcd_pid then return pending("etcd is not installed") end
      local hold = dir .. "/done-hold"
      local leader, standby = leader_and_standby("done", hold)
      local lr = h.disturb_held(leader, hold, function() end)
      assert.are.equal(0, lr.status, lr.stderr)
      local r = h.wait_exit(standby, 30000)
      assert.are.equal(0, r.status, r.stderr)
      -- It found the leader's final checkpoint and ran nothing again.
      assert.matches("restoring .*/done/ck/chaos/chk%-%d+", r.stderr)
      assert.matches("0 checkpoints", r.stderr)
      assert.same(expected, (h.committed_lines(dir .. "/done/out")))
    end)
end)
