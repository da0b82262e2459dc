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

describe("barrier alignment in a running job", function()
  it("snapshots a union's state with no record after the barrier",
    function()
      -- Two sources feed a union; the keyed reduce behind it must see, at
      -- each checkpoint, exactly the records before barrier n on both
      -- inputs. The sources' positions in the same checkpoint say how many
      -- records came before the barrier, so the reduced sum in the snapshot
      -- must equal the sum of those records.
      local dir = os.tmpname()
      os.remove(dir)
      local p = weir.pipeline { name = "align", checkpoint_dir = dir,
                                checkpoint_interval = 5, retain = 1000 }
      p:sequence(1, 300000):union(p:sequence(1, 300000))
        :key_by(function() return "all" end)
        :reduce(function(acc, x) return acc + x end)
      p:run()
      local checkpoint = require "weir.checkpoint"
      local buffer = require "string.buffer"
      local checked = 0
      for _, c in ipairs(checkpoint.list(dir .. "/align")) do
        local loaded = assert(checkpoint.load(c.path))
        local s = loaded.states
        -- A sequence's state is the ranges it has left to emit.
        local function emitted(uid)
          local r = s[uid][0].state.ranges[1]
          return r and r[1] - 1 or 300000
        end
        local n1, n2 = emitted("sequence-1"), emitted("sequence-2")
        local sum = 0
        for _, bytes in pairs(s["reduce-5"][0].state.key_groups) do
          local flat = buffer.decode(bytes)
          sum = flat[2]
        end
        assert.are.equal(n1 * (n1 + 1) / 2 + n2 * (n2 + 1) / 2, sum)
        checked = checked + 1
      end
      assert.is_true(checked >= 2, "only " .. checked .. " checkpoints")
      os.execute("rm -rf '" .. dir .. "'")
    end)
end)
