-- Kill -9 at different moments, then `--restore latest`: the committed
-- output must equal that of an uninterrupted run, line for line.
local h = require "helpers"

local SCRIPT = "spec/fixtures/running_count.lua"
local JOB = "running_count"

describe("recovery after kill -9", function()
  local dir, input, reference, total

  setup(function()
    dir, input, reference, total = h.running_count_input(3)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function assert_exactly_once(out)
    h.assert_exactly_once(out, reference, total)
  end

  local function args(case, files, flags)
    local a = { "run", "--restore", "latest", "--checkpoint-interval", "50",
      "--checkpoint-dir", dir .. "/" .. case .. "/ck" }
    for _, f in ipairs(flags or {}) do a[#a + 1] = f end
    a[#a + 1], a[#a + 2], a[#a + 3] = SCRIPT, files or input,
      dir .. "/" .. case .. "/out"
    return a
  end

  local function newest(case)
    local ids = h.complete_checkpoints(dir .. "/" .. case .. "/ck/" .. JOB)
    return ids[#ids] or 0
  end

  -- Runs the job, waiting in each run for `moment` and then killing it,
  -- once per entry of moments; then restores until the job finishes.
  local function kill_at(case, moments, files, flags)
    for _, moment in ipairs(moments) do
      local before = newest(case)
      local proc = h.spawn_weir(args(case, files, flags))
      moment(proc, case, before)
      h.kill(proc, "KILL")
      local r = h.wait_exit(proc)
      assert.are.equal(137, r.status, "the job ended before the kill: "
        .. tostring(r.stderr))
    end
    local r = h.run_weir(args(case, files, flags))
    assert.are.equal(0, r.status, r.stderr)
    return r
  end

  local function after_checkpoints(k)
    return function(proc, case, before)
      h.wait_until(function() return newest(case) >= before + k end, 30000,
        "checkpoint " .. (before + k))
    end
  end

  local function at_once() end

  it("restores a job reading several files (a glob) after kills",
    function()
      -- The input in three files: the same lines, so the same reference.
      h.sh("mkdir -p " .. h.quote(dir .. "/parts"))
      for k = 1, 3 do
        h.sh(string.format("cp %s %s/parts/part%d.txt", h.quote(h.shakespeare),
          h.quote(dir), k))
      end
      kill_at("glob", { after_checkpoints(2), after_checkpoints(3) },
        dir .. "/parts/*.txt")
      assert_exactly_once(dir .. "/glob/out")
    end)

  it("has an uninterrupted run equal to the reference", function()
    local r = h.run_weir(args("plain"))
    assert.are.equal(0, r.status, r.stderr)
    assert_exactly_once(dir .. "/plain/out")
  end)

  it("restores from the beginning when killed before any checkpoint",
    function()
      local r = kill_at("early", { at_once })
      assert.matches("no complete checkpoint", r.stderr)
      assert_exactly_once(dir .. "/early/out")
    end)

  it("restores when killed after the second checkpoint", function()
    local r = kill_at("second", { after_checkpoints(2) })
    assert.matches("restored from .*/chk%-%d+", r.stderr)
    assert_exactly_once(dir .. "/second/out")
  end)

  for _, parallelism in ipairs({ "1", "2" }) do
    it("restores keyed state that forked processes wrote, after kills, at "
      .. "parallelism " .. parallelism, function()
      local case = "forked-" .. parallelism
      local flags = { "--fork-snapshot-keys", "0", "--parallelism",
        parallelism }
      kill_at(case, { after_checkpoints(2), after_checkpoints(3) }, nil,
        flags)
      assert_exactly_once(dir .. "/" .. case .. "/out")
    end)
  end

  it("restores after three kills, two of them in restored runs", function()
    kill_at("thrice", { after_checkpoints(1), after_checkpoints(3),
      after_checkpoints(2) })
    assert_exactly_once(dir .. "/thrice/out")
  end)

  it("restores after kills at random moments", function()
    math.randomseed(20261121)
    local moments = {}
    for i = 1, 4 do
      local ms = math.random(20, 400)
      moments[i] = function(proc)
        h.sleep(ms)
      end
    end
    -- A random moment may fall after the end of a run; then that run
    -- simply finished, which the final restore must also handle.
    for _, moment in ipairs(moments) do
      local proc = h.spawn_weir(args("random"))
      moment(proc)
      h.kill(proc, "KILL")
      h.wait_exit(proc)
    end
    local r = h.run_weir(args("random"))
    assert.are.equal(0, r.status, r.stderr)
    assert_exactly_once(dir .. "/random/out")
  end)

  it("commits what the final checkpoint pre-committed after a crash "
    .. "between its manifest and the commit", function()
    local r = h.run_weir(args("final"))
    assert.are.equal(0, r.status, r.stderr)
    -- Put the newest committed file back in its pre-committed state, as a
    -- crash right after the final manifest would have left it.
    local out = dir .. "/final/out"
    local _, files = h.committed_lines(out)
    local last = files[#files]
    for _, f in ipairs(files) do
      if tonumber(f:match("(%d+)$")) > tonumber(last:match("(%d+)$")) then
        last = f
      end
    end
    os.rename(out .. "/" .. last, out .. "/." .. last .. ".pending")
    r = h.run_weir(args("final"))
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(io.open(out .. "/" .. last))
    assert_exactly_once(out)
  end)
end)

describe("recovery of event-time windows after kill -9", function()
  local dir, input, reference, total

  setup(function()
    dir = h.tmpdir()
    input = dir .. "/input.txt"
    -- 300 copies of the real log slice, each shifted by a day more.
    local f = assert(io.open(input, "wb"))
    for shift = 0, 299 do
      for line in io.lines(h.root .. "/spec/fixtures/apache_logs_slice.log")
      do
        f:write(shift, "\t", line, "\n")
      end
    end
    f:close()
    -- Windows computed without weir: count per minute and status. The
    -- slice is all May 2015; 2015-05-01 is day 16556 of the Unix epoch
    -- (`date -u -d 2015-05-01 +%s` / 86400).
    local counts = {}
    for line in io.lines(input) do
      local shift, d, hh, mm, status = line:match(
        '^(%d+)\t%S+ %S+ %S+ %[(%d+)/May/2015:(%d+):(%d+):%d+ %+0000%] '
        .. '"[^"]*" (%d+) ')
      if shift then
        local minute = (((16556 + d - 1 + shift) * 24 + hh) * 60 + mm)
          * 60000
        local k = string.format("%.0f\t%s", minute, status)
        counts[k] = (counts[k] or 0) + 1
      end
    end
    reference, total = {}, 0
    for k, n in pairs(counts) do
      reference[k .. "\t" .. n] = true
      total = total + 1
    end
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function args(case)
    return { "run", "--restore", "latest", "--checkpoint-interval", "30",
      "--checkpoint-dir", dir .. "/" .. case .. "/ck",
      "spec/fixtures/status_windows.lua", input, dir .. "/" .. case .. "/out" }
  end

  it("emits the windows of an uninterrupted run", function()
    local r = h.run_weir(args("plain"))
    assert.are.equal(0, r.status, r.stderr)
    assert.is_nil(r.stderr:match("late records"))
    h.assert_exactly_once(dir .. "/plain/out", reference, total)
  end)

  it("emits exactly those windows after kills at several checkpoints",
    function()
      local r = h.kill_after_checkpoints(args("kills"),
        dir .. "/kills/ck/status_windows", { 1, 3, 2 })
      assert.are.equal(0, r.status, r.stderr)
      h.assert_exactly_once(dir .. "/kills/out", reference, total)
    end)
end)

describe("restoring at another parallelism", function()
  local dir, input, reference, total

  setup(function()
    dir, input, reference, total = h.running_count_input(3)
    -- A run at parallelism 2, killed after its third checkpoint.
    local proc = h.spawn_weir({ "run", "--parallelism", "2",
      "--checkpoint-interval", "50", "--checkpoint-dir", dir .. "/p2/ck",
      SCRIPT, input, dir .. "/p2/out" })
    h.wait_until(function()
      return #h.complete_checkpoints(dir .. "/p2/ck/" .. JOB) >= 3
    end, 30000, "three checkpoints")
    local workers = h.workers_of(proc.pid)
    h.kill(proc, "KILL")
    assert.are.equal(137, h.wait_exit(proc).status)
    -- The workers die with the coordinator; copies are taken after.
    h.wait_until(function()
      for _, pid in ipairs(workers) do
        local status = h.read_file("/proc/" .. pid .. "/status")
        if status and not status:match("State:%s*Z") then return false end
      end
      return true
    end, 10000, "the workers to exit")
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  for _, parallelism in ipairs({ 1, 3 }) do
    it("moves state from parallelism 2 to " .. parallelism
      .. ", output exactly once", function()
      local case = dir .. "/to" .. parallelism
      h.sh("cp -r " .. h.quote(dir .. "/p2") .. " " .. h.quote(case))
      local r = h.run_weir({ "run", "--parallelism", tostring(parallelism),
        "--restore", "latest", "--checkpoint-interval", "50",
        "--checkpoint-dir", case .. "/ck", SCRIPT, input, case .. "/out" })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("restored from", r.stderr)
      h.assert_exactly_once(case .. "/out", reference, total)
    end)
  end

  it("refuses a different max_parallelism", function()
    local r = h.run_weir({ "run", "--max-parallelism", "64", "--restore",
      "latest", "--checkpoint-dir", dir .. "/p2/ck", SCRIPT, input,
      dir .. "/maxp-out" })
    assert.are.equal(1, r.status)
    assert.matches("it has max_parallelism 128, the job has 64; "
      .. "max_parallelism is fixed for the life of the state", r.stderr)
  end)

  it("refuses state for an operator the job lacks, unless told to drop it",
    function()
      local script, case = dir .. "/renamed.lua", dir .. "/renamed"
      h.write_file(script, (h.read_file(SCRIPT):gsub('uid%("counts"%)',
        'uid("tallies")')))
      h.sh("cp -r " .. h.quote(dir .. "/p2") .. " " .. h.quote(case))
      local args = { "run", "--parallelism", "1", "--restore", "latest",
        "--checkpoint-dir", case .. "/ck", script, input, case .. "/out" }
      local r = h.run_weir(args)
      assert.are.equal(1, r.status)
      assert.matches("it holds state for operator 'counts', which this job "
        .. "does not have %(%-%-allow%-non%-restored%-state drops it%)",
        r.stderr)
      table.insert(args, 2, "--allow-non-restored-state")
      r = h.run_weir(args)
      assert.are.equal(0, r.status, r.stderr)
    end)
end)
