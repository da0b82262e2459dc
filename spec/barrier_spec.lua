local core = require "weir.core"
local weir = require "weir"

describe("core.barrier_handler", function()
  it("holds a channel until barrier n arrived on all inputs", function()
    local h = core.barrier_handler(2, "exactly_once")
    assert.are.equal("wait", h:on_barrier(1, 7))
    assert.is_true(h:is_blocked(1))
    assert.is_false(h:is_blocked(2))
    assert.are.equal(7, h:pending())
    assert.are.equal("aligned", h:on_barrier(2, 7))
    assert.is_false(h:is_blocked(1))
    assert.is_nil(h:pending())
  end)

  it("never holds a channel in at_least_once mode", function()
    local h = core.barrier_handler(2, "at_least_once")
    assert.are.equal("wait", h:on_barrier(1, 1))
    assert.is_false(h:is_blocked(1))
  end)

  it("raises on a barrier delivered twice", function()
    local h = core.barrier_handler(2)
    h:on_barrier(1, 1)
    assert.has_error(function() h:on_barrier(1, 1) end,
      "barrier handler: barrier arrived twice on one channel")
  end)
end)

local h = require "helpers"

-- Checks the checkpoints of a run of spec/fixtures/aligned_sums.lua (sums
-- of two sequences of 1..n): each checkpoint's sum must be exactly that of
-- the records the sources had emitted before its barrier (their positions
-- in the same checkpoint), so no record after barrier n is in snapshot n.
-- Returns the number of checkpoints checked.
local function check_aligned_sums(job_dir, n)
  local checkpoint = require "weir.checkpoint_storage"
  local buffer = require "string.buffer"
  local checked = 0
  for _, c in ipairs(checkpoint.list(job_dir)) do
    local loaded = assert(checkpoint.load(c.path))
    local s = loaded.states
    -- A sequence's state is the ranges it has left to emit: the sum of
    -- what it emitted is that of 1..n less theirs. A checkpoint taken
    -- while the source's task waited for room inside a record (under
    -- backpressure) notes the records its chain already passed on from
    -- the first one (weir.replay): in these 1:1 chains, that record itself.
    local function emitted_sum(uid)
      local sum = n * (n + 1) / 2
      for _, sub in pairs(s[uid]) do
        for _, r in ipairs(sub.state.ranges) do
          sum = sum - (r[1] + r[2]) * (r[2] - r[1] + 1) / 2
          if r.skip then
            assert.are.equal(1, r.skip)
            sum = sum + r[1]
          end
        end
      end
      return sum
    end
    local sum = 0
    for _, sub in pairs(s.sum) do
      for _, bytes in pairs(sub.state.key_groups) do
        sum = sum + buffer.decode(bytes)[2]
      end
    end
    assert.are.equal(emitted_sum("a") + emitted_sum("b"), sum,
      "checkpoint " .. c.id)
    checked = checked + 1
  end
  return checked
end

describe("barrier alignment in a running job", function()
  it("snapshots a union's state with no record after the barrier, "
    .. "in one process and on two workers", function()
      for _, parallelism in ipairs({ 1, 2 }) do
        local dir = h.tmpdir()
        local r = h.run_weir({ "run", "--parallelism", tostring(parallelism),
          "spec/fixtures/aligned_sums.lua", "200000", dir })
        assert.are.equal(0, r.status, r.stderr)
        local checked = check_aligned_sums(dir .. "/aligned_sums", 200000)
        assert.is_true(checked >= 3, "only " .. checked .. " checkpoints")
        h.sh("rm -rf " .. h.quote(dir))
      end
    end)
end)
