-- Running-job control through the coordinator's socket: weir jobs,
-- weir savepoint, weir cancel [--savepoint], --retain-on-cancel; and
-- restoring savepoints at other parallelisms with exactly-once output.
local h = require "helpers"
local core = require "weir.core"
local buffer = require "string.buffer"

local SCRIPT = "spec/fixtures/paced_count.lua"
local PACE_US = "50"  -- per line: about 2 s per subtask on two copies

describe("running jobs", function()
  local dir, input, reference, total

  setup(function()
    dir, input, reference, total = h.running_count_input(2)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function ck(case) return dir .. "/" .. case .. "/ck" end

  -- Starts the paced job at parallelism p in case's directory.
  local function start(case, p, extra)
    local args = { "run", "--parallelism", tostring(p), "--checkpoint-dir",
      ck(case), "--checkpoint-interval", "200" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    for _, a in ipairs({ SCRIPT, input, dir .. "/" .. case .. "/out",
      PACE_US }) do
      args[#args + 1] = a
    end
    return h.spawn_weir(args)
  end

  -- Waits until `weir jobs` lists the job as running with at least
  -- `checkpoints` checkpoints completed; returns the listing.
  local function wait_running(case, checkpoints)
    return h.wait_until(function()
      local r = h.run_weir({ "jobs", "--checkpoint-dir", ck(case) })
      local n = r.stdout:match("running_count +%d+ running +%d+ +%S+ +(%d+)")
      return n and tonumber(n) >= (checkpoints or 0) and r.stdout
    end, 20000, "weir jobs to list the job as running")
  end

  local function copy_dir(from, to)
    h.sh(string.format("cp -r %s %s", h.quote(from), h.quote(to)))
  end

  it("weir jobs lists a running job with its pid, and not once it ended",
    function()
      local proc = start("jobs", 2)
      local listing = wait_running("jobs")
      assert.matches("^JOB +PID +STATE +PARALLELISM", listing)
      local pid = tonumber(listing:match("running_count +(%d+)"))
      assert.are.equal(proc.pid, pid)
      assert.matches(" 2 ", listing:match("running_count[^\n]*"))
      local r = h.run_weir({ "jobs", "--json", "--checkpoint-dir",
        ck("jobs") })
      assert.are.equal(0, r.status, r.stderr)
      local list = require("weir.json").decode(r.stdout)
      assert.are.equal(1, #list)
      local j = list[1]
      assert.are.equal("running_count", j.name)
      assert.are.equal(proc.pid, j.pid)
      assert.are.equal(2, j.parallelism)
      assert.are.equal(0, j.restarts)
      assert.is_true(j.uptime_ms >= 0 and j.checkpoints >= 0)
      assert.are.equal(ck("jobs") .. "/running_count", j.job_dir)
      r = h.wait_exit(proc)
      assert.are.equal(0, r.status, r.stderr)
      r = h.run_weir({ "jobs", "--checkpoint-dir", ck("jobs") })
      assert.are.equal(0, r.status)
      assert.matches("^no running jobs in ", r.stdout)
      r = h.run_weir({ "jobs", "--json", "--checkpoint-dir", ck("jobs") })
      assert.are.equal("[]\n", r.stdout)
      assert.is_nil(core.stat(ck("jobs") .. "/running_count/coordinator.sock.path"))
    end)

  it("restores a savepoint taken midway at parallelism 1 and 3 to the "
    .. "output of the undisturbed run", function()
      local proc = start("midway", 2, { "--retain", "1" })
      wait_running("midway", 1)
      local r = h.run_weir({ "savepoint", "running_count", "--checkpoint-dir",
        ck("midway") })
      assert.are.equal(0, r.status, r.stderr)
      local sp = r.stdout:match("^(%S+)\n$")
      assert.matches("^/.*/ck/running_count/savepoints/savepoint%-"
        .. "running_count%-%d+$", sp)
      -- The job goes on to the end, undisturbed.
      r = h.wait_exit(proc)
      assert.are.equal(0, r.status, r.stderr)
      local out = dir .. "/midway/out"
      h.assert_exactly_once(out, reference, total)
      local undisturbed = h.committed_lines(out)
      -- Retention (one checkpoint) left the savepoint alone.
      assert.is_table(core.stat(sp .. "/_manifest"))
      for _, p in ipairs({ 1, 3 }) do
        local out_p = dir .. "/midway/out" .. p
        copy_dir(out, out_p)
        -- Files from before the savepoint stay as they are, later ones
        -- are written again: dating them all in 2000 tells which.
        h.sh("touch -d 2000-01-01 " .. h.quote(out_p) .. "/part-*")
        r = h.run_weir({ "run", "--parallelism", tostring(p),
          "--checkpoint-dir", dir .. "/midway/ck" .. p, "--restore", sp,
          SCRIPT, input, out_p, "0" })
        assert.are.equal(0, r.status, r.stderr)
        assert.matches("restored from " .. sp:gsub("%p", "%%%0"), r.stderr)
        assert.are.same(undisturbed, (h.committed_lines(out_p)))
        local kept, rewritten = 0, 0
        for _, name in ipairs(select(2, h.committed_lines(out_p))) do
          if core.stat(out_p .. "/" .. name).mtime_ms < 1e12 then
            kept = kept + 1
          else
            rewritten = rewritten + 1
          end
        end
        assert.is_true(kept > 0 and rewritten > 0, kept .. " files kept, "
          .. rewritten .. " rewritten")
      end
    end)

  it("weir cancel --savepoint stops the job after a savepoint; restoring "
    .. "it finishes exactly once", function()
      local proc = start("cancel", 2)
      wait_running("cancel", 1)
      local spdir = dir .. "/cancel/savepoints"
      local r = h.run_weir({ "cancel", ck("cancel") .. "/running_count",
        "--savepoint", spdir })
      assert.are.equal(0, r.status, r.stderr)
      local sp = r.stdout:match("^(%S+)\n$")
      assert.matches("^" .. spdir:gsub("%p", "%%%0") .. "/savepoint%-"
        .. "running_count%-%d+$", sp)
      r = h.wait_exit(proc, 20000)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("job 'running_count' was cancelled after [%d.]+ s; "
        .. "%d+ records from sources; savepoint " .. sp:gsub("%p", "%%%0"),
        r.stderr)
      -- The job's checkpoints went with it.
      assert.are.same({}, h.complete_checkpoints(ck("cancel")
        .. "/running_count"))
      -- Output up to the savepoint is committed, not all of it.
      local committed = #h.committed_lines(dir .. "/cancel/out")
      assert.is_true(committed > 0 and committed < total,
        committed .. " of " .. total)
      r = h.run_weir({ "run", "--parallelism", "2", "--checkpoint-dir",
        ck("cancel"), "--restore", sp, SCRIPT, input,
        dir .. "/cancel/out", "0" })
      assert.are.equal(0, r.status, r.stderr)
      h.assert_exactly_once(dir .. "/cancel/out", reference, total)
    end)

  it("cancels a job that is still starting", function()
    local proc = h.spawn_weir({ "run", "--parallelism", "2",
      "--checkpoint-dir", ck("starting"), "spec/fixtures/slow_start.lua",
      dir .. "/starting/out" })
    local job_dir = ck("starting") .. "/slow_start"
    h.wait_until(function()
      return core.stat(job_dir .. "/coordinator.sock.path")
    end, 10000, "the job's control socket")
    local r = h.run_weir({ "jobs", "--checkpoint-dir", ck("starting") })
    assert.matches("slow_start +%d+ starting ", r.stdout)
    r = h.run_weir({ "cancel", job_dir })
    assert.are.equal(0, r.status, r.stderr)
    r = h.wait_exit(proc, 20000)
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("job 'slow_start' was cancelled", r.stderr)
    assert.are.same({}, (h.committed_lines(dir .. "/starting/out")))
  end)

  it("cancels a job waiting to restart after a failure", function()
    local proc = h.spawn_weir({ "run", "--parallelism", "2",
      "--checkpoint-dir", ck("restarting"), "spec/fixtures/slow_restart.lua",
      input, dir .. "/restarting/out" })
    local job_dir = ck("restarting") .. "/slow_restart"
    h.wait_until(function()
      return #h.complete_checkpoints(job_dir) >= 1
    end, 20000, "a checkpoint")
    h.kill({ pid = h.workers_of(proc.pid)[1] }, "KILL")
    h.wait_until(function()
      return (h.read_file(proc.dir .. "/err") or ""):match("restarting")
    end, 10000, "the restart to be planned")
    local start = core.monotonic_ms()
    local r = h.run_weir({ "cancel", job_dir })
    assert.are.equal(0, r.status, r.stderr)
    r = h.wait_exit(proc, 20000)
    -- Well before the restart's 5 s delay.
    assert.is_true(core.monotonic_ms() - start < 4000)
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("job 'slow_restart' was cancelled", r.stderr)
    assert.are.equal(1, select(2, r.stderr:gsub("restarting", "")))
  end)

  it("keeps the newest checkpoints on cancel with --retain-on-cancel",
    function()
      local proc = start("retain", 1, { "--retain-on-cancel" })
      wait_running("retain", 2)
      local r = h.run_weir({ "cancel", "running_count", "--checkpoint-dir",
        ck("retain") })
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("", r.stdout)
      r = h.wait_exit(proc, 20000)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("was cancelled", r.stderr)
      assert.is_true(#h.complete_checkpoints(ck("retain")
        .. "/running_count") >= 1)
      r = h.run_weir({ "run", "--parallelism", "1", "--checkpoint-dir",
        ck("retain"), "--restore", "latest", SCRIPT, input,
        dir .. "/retain/out", "0" })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("restored from [^\n]*/chk%-%d+", r.stderr)
      h.assert_exactly_once(dir .. "/retain/out", reference, total)
    end)

  it("refuses a second run of a running job and control of a job that is "
    .. "not running", function()
      local proc = start("twice", 1)
      wait_running("twice")
      local r = h.run_weir({ "run", "--checkpoint-dir", ck("twice"),
        SCRIPT, input, dir .. "/twice/out2", "0" })
      assert.are.equal(1, r.status)
      assert.matches("^weir: cannot run job 'running_count': another "
        .. "process runs this job from [^\n]*ck/running_count", r.stderr)
      r = h.run_weir({ "cancel", "running_count", "--checkpoint-dir",
        ck("twice") })
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal(0, h.wait_exit(proc, 20000).status)
      r = h.run_weir({ "savepoint", "running_count", "--checkpoint-dir",
        ck("twice") })
      assert.are.equal(1, r.status)
      assert.matches("^weir: savepoint of running_count failed: no running "
        .. "job in [^\n]*ck/running_count", r.stderr)
      r = h.run_weir({ "cancel", "nosuchjob" })
      assert.are.equal(1, r.status)
      assert.matches("^weir: cannot cancel nosuchjob: no running job in "
        .. "checkpoints/nosuchjob", r.stderr)
    end)

  it("refuses to restore a savepoint that does not exist or has another "
    .. "format version, restoring nothing", function()
      local out = dir .. "/bad/out"
      local r = h.run_weir({ "run", "--restore", dir .. "/bad/missing",
        "--checkpoint-dir", ck("bad"), SCRIPT, input, out, "0" })
      assert.are.equal(1, r.status)
      assert.matches("^weir: cannot restore from [^\n]*/bad/missing: ",
        r.stderr)
      assert.is_nil(core.stat(out))
      local sp = dir .. "/bad/savepoint-x-1"
      h.sh("mkdir -p " .. h.quote(sp))
      assert(core.snapshot_write(sp .. "/_manifest", buffer.encode({
        magic = "weir-checkpoint", format = 99, id = 1, files = {} })))
      r = h.run_weir({ "run", "--restore", sp, "--checkpoint-dir", ck("bad"),
        SCRIPT, input, out, "0" })
      assert.are.equal(1, r.status)
      assert.matches("_manifest: manifest format 99 is not supported "
        .. "%(this weir reads format 1%)", r.stderr)
      assert.is_nil(core.stat(out))
    end)
end)
