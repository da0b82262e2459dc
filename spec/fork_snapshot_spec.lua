-- Checkpoints of keyed state taken by a forked copy-on-write process
-- (core.fork_call, weir.task_checkpoint): the process it forks from goes
-- on changing its state, and the checkpoint holds the state at the fork.
local h = require "helpers"
local weir = require "weir"
local core = require "weir.core"

describe("core.fork_call", function()
  it("runs the function in a copy of the process as it was at the call",
    function()
    local t = { n = 1 }
    local got
    local ms = core.fork_call(function()
      local seen = t.n
      t.n = 99            -- changes the child's copy only
      return "seen " .. seen
    end, function(err, result) got = { err, result } end)
    t.n = 2               -- after the fork: the child does not see it
    assert.is_number(ms)
    core.run()
    assert.same({ nil, "seen 1" }, got)
    assert.are.equal(2, t.n)
  end)

  it("hands back the child's error, or how it died", function()
    local errs = {}
    core.fork_call(function() error("boom", 0) end,
      function(err) errs[1] = err end)
    core.fork_call(function() return 7 end, function(err) errs[2] = err end)
    core.fork_call(function() core.crash() end,
      function(err) errs[3] = err end)
    core.run()
    assert.are.equal("boom", errs[1])
    assert.are.equal("the forked function returned no string", errs[2])
    assert.matches("^the forked process was killed by signal %d+", errs[3])
  end)
end)

describe("a keyed operator's checkpoint in a forked process", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- Counts per key of 1..n into `keys` keys, checkpointing every 5 ms,
  -- with fork_snapshot_keys = fork_keys; returns the job's statistics and
  -- how many times the process forked.
  local function run(n, keys, fork_keys, fail_forks)
    local p = weir.pipeline { name = "forked", checkpoint_dir = dir,
      checkpoint_interval = 5, retain = 1000, fork_snapshot_keys = fork_keys }
    p:sequence(1, n):uid("numbers")
      :map(function(x)
        local slow = 0
        for i = 1, 50 do slow = slow + i end
        return { x % keys, 1 + slow * 0 }
      end)
      :key_by(function(r) return r[1] end)
      :reduce(function(acc, r) return { acc[1], acc[2] + r[2] } end)
      :uid("counts")
      :discard()
    local forks, fork_call = 0, core.fork_call
    core.fork_call = function(...)
      forks = forks + 1
      if fail_forks then return nil, "resource temporarily unavailable" end
      return fork_call(...)
    end
    local ok, stats = pcall(p.run, p)
    core.fork_call = fork_call
    assert(ok, stats)
    return stats, forks
  end

  -- The sum of the counts in checkpoint path's keyed state, and the number
  -- of records the source had emitted by then.
  local function counted(path, n)
    local snap = assert(weir.snapshot.open(path))
    local sum = 0
    snap:each_key("counts", function(_, acc) sum = sum + acc[2] end)
    local left = 0
    snap:each_subtask("numbers", function(_, st)
      for _, r in ipairs(st.ranges) do
        -- A checkpoint inside a record notes that the chain passed it on.
        left = left + r[2] - r[1] + 1 - (r.skip or 0)
      end
    end)
    return sum, n - left
  end

  -- Every complete checkpoint holds the records before its barrier.
  local function assert_consistent(n)
    local checkpoint = require "weir.checkpoint_storage"
    for _, c in ipairs(checkpoint.list(dir .. "/forked")) do
      if c.complete then
        local sum, emitted = counted(c.path, n)
        assert.are.equal(emitted, sum, c.path)
      end
    end
  end

  it("holds exactly the records before its barrier, in every checkpoint",
    function()
    local n = 200000
    local stats, forks = run(n, 500, 0)
    assert.is_true(stats.checkpoints >= 3, stats.checkpoints .. " checkpoints")
    assert.is_true(forks >= stats.checkpoints)
    assert_consistent(n)
  end)

  it("is taken in the process itself when the fork fails", function()
    local n = 100000
    local stats, forks = run(n, 500, 0, true)
    assert.is_true(stats.checkpoints >= 2, stats.checkpoints .. " checkpoints")
    assert.is_true(forks >= stats.checkpoints)
    assert_consistent(n)
  end)

  it("is taken in the process itself below fork_snapshot_keys keys",
    function()
    local stats, forks = run(20000, 10, 1000)
    assert.is_true(stats.checkpoints >= 1)
    assert.are.equal(0, forks)
  end)
end)
