-- The window operator driven directly (no job): windows fire in one pass
-- however far the watermark lags the pending windows, and a key's windows
-- restore from the stored form of a checkpoint.
local buffer = require "string.buffer"
local windows = require "weir.windows"

local count = { kind = "aggregate",
                init = function() return 0 end,
                add = function(n) return n + 1 end,
                merge = function(a, b) return a + b end }

-- Builds a window operator over assigner (or a window join when join is
-- true); returns it and the list of "start:end=value" it emits.
local function operator(assigner, functions, join)
  local out = {}
  local node = { kind = join and "window_join" or "window",
                 defined_at = "spec/windows_spec.lua", assigner = assigner,
                 allowed_lateness = 0, functions = functions }
  local env = { max_parallelism = 128, parallelism = 1, subtask = 0,
                side = {}, stats = { late_records = 0 },
                emit_watermark = function() end }
  local make = join and windows.window_join or windows.window
  local inst = make(node, function(v, ts)
    out[#out + 1] = type(v) == "table" and v[1] .. "+" .. v[2] .. "@" .. ts
      or ts .. "=" .. tostring(v)
  end, env)
  return inst, out
end

-- N windows of key "k" far ahead in event time (as the records of a file
-- reader that started years later), then N windows in time order, the
-- watermark passing each right after its record: the firing of each of
-- these must not look at the N windows still pending.
local N = 1000
local FAR = 1e9

local function lagging(inst, push, step)
  for i = 1, N do push(inst, "ahead", FAR + step * i, "k") end
  for i = 1, N do
    push(inst, "now", step * i, "k")
    inst.watermark(step * i + step / 2)
  end
end

local function push(inst, record, ts, key) inst.push(record, ts, key) end

describe("weir.windows", function()
  describe("firing with the watermark far behind pending windows", function()
    for _, case in ipairs {
      { "tumbling", windows.tumbling(10), count },
      { "sliding without panes", windows.sliding(20, 10),
        { kind = "reduce", fn = function(a) return a end } },
      { "session", windows.session(10), count },
    } do
      it("visits O(windows), not O(windows x pending), for " .. case[1],
        function()
          local inst, out = operator(case[2], case[3])
          lagging(inst, push, 100)
          assert.equal(case[1] == "sliding without panes" and 2 * N or N,
            #out)
          assert.is_true(inst.windows_visited <= 4 * N,
            "visited " .. inst.windows_visited .. " windows for " .. N
            .. " firings")
        end)
    end

    it("visits O(windows) in a window join", function()
      local inst, out = operator(windows.tumbling(10), nil, true)
      lagging(inst, function(j, record, ts, key)
        j.inputs[1](record .. "-l", ts, key)
        j.inputs[2](record .. "-r", ts, key)
      end, 100)
      assert.equal(N, #out)
      assert.equal("now-l+now-r@109", out[1])
      assert.is_true(inst.windows_visited <= 4 * N,
        "visited " .. inst.windows_visited .. " windows for " .. N
        .. " firings")
    end)

    it("still merges sessions that the lagging records join", function()
      local inst, out = operator(windows.session(10), count)
      push(inst, "a", 1000, "k")
      push(inst, "b", 1025, "k")
      push(inst, "c", 5, "k")
      -- Bridges [1000, 1010) and [1025, 1035): one session of three.
      push(inst, "d", 1008, "k")
      push(inst, "e", 1017, "k")
      inst.watermark(100)
      assert.same({ "14=1" }, out)
      inst.watermark(2000)
      assert.same({ "14=1", "1034=4" }, out)
    end)
  end)

  describe("restore", function()
    it("restores windows in the stored form of a checkpoint and fires "
      .. "and merges them", function()
      -- A key's entry as checkpoints store it: key, windows by start,
      -- event-time timers, processing-time timers.
      local flat = { "k",
        { [0] = { start = 0, e = 15, acc = 2 },
          [40] = { start = 40, e = 50, acc = 1 } },
        { [14] = true, [49] = true }, nil, n = 4 }
      local inst, out = operator(windows.session(10), count)
      inst.restore { { subtask = 0, state = {
        key_groups = { [require("weir.key").key_group("k", 128)]
          = buffer.encode(flat) },
        finished = false, watermark = 3 } } }
      push(inst, "x", 35, "k")  -- merges with [40, 50): [35, 50)
      inst.watermark(20)
      assert.same({ "14=2" }, out)
      inst.watermark(60)
      assert.same({ "14=2", "49=2" }, out)
    end)
  end)
end)
