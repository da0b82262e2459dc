-- Pipelines started in the background of this process (p:start(), as the
-- REPL does): they advance while the caller waits on the loop, and can be
-- watched, savepointed, cancelled and waited for.
local h = require "helpers"
local core = require "weir.core"
local weir = require "weir"

-- The running word count of running_count.lua, built in this process.
local function running_count(input, out, opts)
  opts.name = opts.name or "running_count"
  local p = weir.pipeline(opts)
  p:read_lines(input):uid("lines")
    :flat_map(function(line, emit)
      if line:match("^POISON") then error("poisoned line") end
      for w in line:gmatch("%a+") do emit({ w:lower(), 1 }) end
    end)
    :key_by(function(r) return r[1] end)
    :reduce(function(acc, r) return { acc[1], acc[2] + r[2] } end)
    :uid("counts")
    :write_lines(out, function(r) return r[1] .. "\t" .. r[2] end)
    :uid("output")
  return p
end

-- Runs the loop until fn() is true, for at most timeout_ms.
local function run_until(fn, timeout_ms, what)
  local deadline = core.monotonic_ms() + timeout_ms
  while not fn() do
    if core.monotonic_ms() > deadline then
      error("timed out waiting for " .. what, 2)
    end
    core.run_once()
  end
end

describe("a pipeline in the background", function()
  local dir, input, reference, total

  setup(function()
    dir, input, reference, total = h.running_count_input(3)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  it("advances while the caller runs the loop; wait() returns its "
    .. "statistics", function()
      local job = running_count(input, dir .. "/plain/out",
        { checkpoint_dir = dir .. "/plain/ck", checkpoint_interval = 50 })
        :start()
      local s = job:status()
      assert.are.equal("running", s.state)
      assert.are.equal(0, s.records)
      run_until(function() return job:status().records > 0 end, 10000,
        "records to flow")
      assert.is_true(#job:metrics() > 0)
      assert.matches("^<weir job 'running_count' running, %d+ records",
        tostring(job))
      local stats = job:wait()
      assert.are.equal("finished", job:status().state)
      assert.is_true(stats.checkpoints >= 1)
      h.assert_exactly_once(dir .. "/plain/out", reference, total)
      assert.are.same({}, job:metrics())
    end)

  it("takes a savepoint and is cancelled; restoring the savepoint "
    .. "finishes exactly once", function()
      local out, ck = dir .. "/sp/out", dir .. "/sp/ck"
      local job = running_count(input, out,
        { checkpoint_dir = ck, checkpoint_interval = 20 }):start()
      run_until(function() return job:status().checkpoints >= 1 end, 10000,
        "a checkpoint")
      local listed = weir.jobs(ck)
      assert.are.equal(1, #listed)
      assert.are.equal(core.getpid(), listed[1].pid)
      assert.are.equal("running", listed[1].state)
      local sp = job:savepoint(dir .. "/sp/savepoints")
      assert.matches("/sp/savepoints/savepoint%-running_count%-%d+$", sp)
      assert.is_table(core.stat(sp .. "/_manifest"))
      assert.is_nil(job:cancel())
      local s = job:status()
      assert.are.equal("cancelled", s.state)
      local lines = 0
      for _ in io.lines(input) do lines = lines + 1 end
      assert.is_true(s.records > 0 and s.records < lines, s.records .. " of "
        .. lines .. " lines read")
      assert.are.same({}, weir.jobs(ck))
      -- Its checkpoints went with it; the savepoint stays.
      assert.are.same({}, h.complete_checkpoints(ck .. "/running_count"))
      local stats = running_count(input, out, { checkpoint_dir = ck,
        restore = sp }):run()
      assert.are.equal(sp, stats.restored_from)
      h.assert_exactly_once(out, reference, total)
    end)

  it("fails when a user function throws; wait() raises why, and the next "
    .. "job can start", function()
      local poisoned = dir .. "/poisoned.txt"
      h.write_file(poisoned, "a b c\nPOISON here\nd e\n")
      local job = running_count(poisoned, dir .. "/fail/out",
        { checkpoint_dir = dir .. "/fail/ck" }):start()
      local warned
      local warn = require("weir.errors").warn
      require("weir.errors").warn = function(msg) warned = msg end
      local ok, err = pcall(job.wait, job)
      require("weir.errors").warn = warn
      assert.is_false(ok)
      assert.matches("flat_map .*POISON here.*poisoned line", err)
      assert.matches("^job 'running_count' failed: flat_map", warned)
      assert.are.equal("failed", job:status().state)
      assert.are.equal(err, job:status().error)
      local next_job = running_count(input, dir .. "/fail/out2",
        { checkpoint_dir = dir .. "/fail/ck" }):start()
      assert.are.equal("running", next_job:status().state)
      next_job:cancel()
    end)

  it("refuses a second background job while one runs", function()
    local job = running_count(input, dir .. "/two/out",
      { checkpoint_dir = dir .. "/two/ck" }):start()
    local ok, err = pcall(function()
      running_count(input, dir .. "/two/out2",
        { name = "other", checkpoint_dir = dir .. "/two/ck" }):start()
    end)
    assert.is_false(ok)
    assert.matches("job 'running_count' is running in the background", err)
    job:cancel()
    assert.are.equal("cancelled", job:status().state)
  end)

  it("or submitted as a job of its own: savepoint, cancel, and a restore "
    .. "that finishes exactly once", function()
      local out, ck = dir .. "/submit/out", dir .. "/submit/ck"
      local function submit(restore)
        return weir.submit("spec/fixtures/paced_count.lua", { args = { input,
          out, "50" }, parallelism = 2, checkpoint_dir = ck,
          restore = restore })
      end
      local s = submit()
      assert.matches("^<weir submission spec/fixtures/paced_count.lua, "
        .. "pid %d+>$", tostring(s))
      local sp = s:savepoint(dir .. "/submit/sp")
      assert.matches("/submit/sp/savepoint%-running_count%-%d+$", sp)
      local status = s:status()
      assert.are.equal("running", status.state)
      assert.are.equal(2, status.parallelism)
      local sp2 = weir.cancel(s, { savepoint = dir .. "/submit/sp" })
      assert.are_not.equal(sp, sp2)
      assert.are.same({ state = "exited", exit_status = 0 }, s:status())
      assert.are.equal(0, submit(sp2):wait())
      h.assert_exactly_once(out, reference, total)
    end)
end)
