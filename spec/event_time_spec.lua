local weir = require "weir"

-- Runs a pipeline without checkpoints; build(p) returns the stream (or
-- streams) to collect.
local function run(build)
  local p = weir.pipeline { name = "event_time", checkpoint_interval = 0 }
  local streams = { build(p) }
  local outs = {}
  for i, s in ipairs(streams) do outs[i] = s:collect() end
  p:run()
  return unpack(outs)
end

local function sorted(t)
  table.sort(t)
  return t
end

local count = { init = function() return 0 end,
                add = function(n) return n + 1 end,
                merge = function(a, b) return a + b end }

local function counting(result)
  return { init = count.init, add = count.add, merge = count.merge,
           result = result }
end

local function describe_window(acc, ctx)
  return string.format("%s[%d,%d)=%s", tostring(ctx.key), ctx.window.start,
    ctx.window["end"], tostring(acc))
end

describe("event time", function()
  describe(":with_timestamps()", function()
    it("gives process the record's timestamp and a watermark of max - "
      .. "max_out_of_orderness - 1", function()
      local out = run(function(p)
        return p:sequence(1, 4)
          :with_timestamps(function(x) return ({ 10, 30, 20, 50 })[x] end,
            { max_out_of_orderness = 5 })
          :key_by(function() return "k" end)
          :process(function(ctx, x)
            ctx:emit(x .. ":" .. ctx.timestamp .. ":" .. ctx.watermark)
          end)
      end)
      -- The watermark a record meets is the one before its own.
      assert.same({ "1:10:-inf", "2:30:4", "3:20:24", "4:50:24" }, out)
    end)

    it("fails naming the operator and record for a non-number timestamp",
      function()
        local p = weir.pipeline { checkpoint_interval = 0 }
        p:sequence(1, 3)
          :with_timestamps(function(x) return x == 2 and "soon" or x end)
          :collect()
        local ok, err = pcall(p.run, p)
        assert.is_false(ok)
        assert.matches("^with_timestamps %(spec/event_time_spec%.lua:%d+%) "
          .. "failed on record 2: the timestamp is string; with_timestamps "
          .. "needs a number %(ms since the epoch%)$", err)
      end)

    it("fails for a NaN timestamp", function()
      local p = weir.pipeline { checkpoint_interval = 0 }
      p:sequence(1, 3):with_timestamps(function() return 0 / 0 end):collect()
      local ok, err = pcall(p.run, p)
      assert.is_false(ok)
      assert.matches("failed on record 1: the timestamp is NaN", err)
    end)
  end)

  describe(":window(weir.tumbling())", function()
    it("counts each key's records per window", function()
      local out = run(function(p)
        return p:sequence(0, 11)
          :with_timestamps(function(x) return x * 1000 end)
          :key_by(function(x) return x % 2 end)
          :window(weir.tumbling(4000))
          :aggregate(counting(describe_window))
      end)
      assert.same({ "0[0,4000)=2", "0[4000,8000)=2", "0[8000,12000)=2",
        "1[0,4000)=2", "1[4000,8000)=2", "1[8000,12000)=2" }, sorted(out))
    end)

    it("reduces each window's records", function()
      local out = run(function(p)
        return p:sequence(1, 6)
          :with_timestamps(function(x) return x end)
          :key_by(function() return "all" end)
          :window(weir.tumbling(3))
          :reduce(function(a, b) return a + b end)
      end)
      -- windows [0,3): 1+2, [3,6): 3+4+5, [6,9): 6
      assert.same({ 3, 12, 6 }, out)
    end)

    it("gives each firing its own ctx.window", function()
      local out = run(function(p)
        return p:sequence(1, 3)
          :with_timestamps(function(x) return x * 10 end)
          :key_by(function() return "k" end)
          :window(weir.tumbling(10))
          :aggregate { init = count.init, add = count.add,
                       result = function(n, ctx) return ctx.window end }
      end)
      assert.same({ { start = 10, ["end"] = 20 }, { start = 20, ["end"] = 30 },
        { start = 30, ["end"] = 40 } }, out)
    end)

    it("hands apply every record of the window", function()
      local out = run(function(p)
        return p:sequence(1, 5)
          :with_timestamps(function(x) return x * 10 end)
          :key_by(function() return "k" end)
          :window(weir.tumbling(30))
          :apply(function(ctx, records)
            ctx:emit(ctx.window.start .. ":" .. table.concat(records, ","))
          end)
      end)
      assert.same({ "0:1,2", "30:3,4,5" }, out)
    end)

    it("fires a window once the watermark passes its end, not before",
      function()
        local out = run(function(p)
          return p:sequence(1, 6)
            :with_timestamps(function(x) return ({ 1, 2, 11, 12, 21, 3 })[x]
            end, { max_out_of_orderness = 100 })
            :key_by(function() return "k" end)
            :window(weir.tumbling(10))
            :aggregate(counting(describe_window))
        end)
        -- Out-of-orderness 100 holds every window until the end of input,
        -- so the record at 3 still counts in [0,10).
        assert.same({ "k[0,10)=3", "k[10,20)=2", "k[20,30)=1" }, sorted(out))
      end)

    it("sends records behind a purged window to :late() and counts them",
      function()
        local p = weir.pipeline { checkpoint_interval = 0 }
        local windows = p:sequence(1, 5)
          :with_timestamps(function(x) return ({ 1, 15, 25, 3, 26 })[x] end)
          :key_by(function() return "k" end)
          :window(weir.tumbling(10))
          :aggregate(counting(describe_window))
        local out, late = windows:collect(), windows:late():collect()
        local stats = p:run()
        assert.same({ "k[0,10)=1", "k[10,20)=1", "k[20,30)=2" }, sorted(out))
        assert.same({ 4 }, late)
        assert.are.equal(1, stats.late_records)
      end)

    it("re-fires a window with late records within allowed_lateness",
      function()
        local p = weir.pipeline { checkpoint_interval = 0 }
        local windows = p:sequence(1, 6)
          :with_timestamps(function(x) return ({ 1, 15, 5, 25, 6, 38 })[x] end)
          :key_by(function() return "k" end)
          :window(weir.tumbling(10), { allowed_lateness = 10 })
          :aggregate(counting(describe_window))
        local out, late = windows:collect(), windows:late():collect()
        p:run()
        -- [0,10) fires at watermark 14 with 1 record, re-fires with the
        -- record at 5 (within lateness: purged at watermark 19), then is
        -- purged at 24, so the record at 6 is late.
        assert.same({ "k[0,10)=1", "k[0,10)=2", "k[10,20)=1", "k[20,30)=1",
          "k[30,40)=1" }, sorted(out))
        assert.same({ 5 }, late)
      end)
  end)

  describe(":window(weir.sliding())", function()
    it("puts each record in size/slide windows", function()
      local out = run(function(p)
        return p:sequence(0, 5)
          :with_timestamps(function(x) return x * 10 end)
          :key_by(function() return "k" end)
          :window(weir.sliding(30, 10))
          :aggregate(counting(describe_window))
      end)
      assert.same({ "k[-10,20)=2", "k[-20,10)=1", "k[0,30)=3", "k[10,40)=3",
        "k[20,50)=3", "k[30,60)=3", "k[40,70)=2", "k[50,80)=1" }, sorted(out))
    end)

    it("gives the same windows from panes (with merge) as without",
      function()
        local function windows(spec)
          local p = weir.pipeline { checkpoint_interval = 0 }
          local w = p:sequence(1, 3000)
            :with_timestamps(function(x) return (x * 7919) % 1000 + x end,
              { max_out_of_orderness = 300 })
            :key_by(function(x) return x % 3 end)
            :window(weir.sliding(40, 10), { allowed_lateness = 500 })
            :aggregate(spec)
          local out, late = w:collect(), w:late():collect()
          p:run()
          return sorted(out), sorted(late)
        end
        local with_out, with_late = windows(counting(describe_window))
        local without_out, without_late = windows({ init = count.init,
          add = count.add, result = describe_window })
        assert.is_true(#with_out > 1000 and #with_late > 0)
        assert.same(without_out, with_out)
        assert.same(without_late, with_late)
      end)

    it("rejects a slide larger than the size at build time", function()
      assert.has_error(function() weir.sliding(10, 20) end,
        "weir.sliding(size_ms, slide_ms): slide_ms (20) is larger than "
        .. "size_ms (10); windows would leave gaps")
    end)
  end)

  describe(":window(weir.session())", function()
    it("merges a key's records closer than the gap", function()
      local out = run(function(p)
        return p:sequence(1, 7)
          :with_timestamps(function(x)
            return ({ 0, 5, 30, 12, 100, 108, 9 })[x]
          end, { max_out_of_orderness = 200 })
          :key_by(function() return "ip" end)
          :window(weir.session(10))
          :aggregate(counting(describe_window))
      end)
      -- 0,5,9,12 (each within 10 of the next) -> [0,22); 30 -> [30,40);
      -- 100,108 -> [100,118).
      assert.same({ "ip[0,22)=4", "ip[100,118)=2", "ip[30,40)=1" },
        sorted(out))
    end)

    it("merges with reduce", function()
      local out = run(function(p)
        return p:sequence(1, 4)
          :with_timestamps(function(x) return ({ 0, 50, 4, 8 })[x] end,
            { max_out_of_orderness = 100 })
          :key_by(function() return 1 end)
          :window(weir.session(5))
          :reduce(function(a, b) return a + b end)
      end)
      -- 0, 4, 8 merge into [0,13): 1 + 3 + 4; 50 alone: 2.
      assert.same({ 2, 8 }, sorted(out))
    end)

    it("requires a merge function for aggregate", function()
      local p = weir.pipeline {}
      assert.has_error(function()
        p:sequence(1, 2):with_timestamps(function(x) return x end)
          :key_by(function() return 1 end):window(weir.session(5))
          :aggregate { init = count.init, add = count.add }
      end, "aggregate: session windows merge; give a merge function")
    end)
  end)

  describe("window sizes", function()
    it("must be positive", function()
      assert.has_error(function() weir.tumbling(0) end,
        "weir.tumbling(size_ms): size_ms must be a positive number of ms, "
        .. "got 0")
      assert.has_error(function() weir.session(-5) end,
        "weir.session(gap_ms): gap_ms must be a positive number of ms, "
        .. "got -5")
      assert.has_error(function() weir.sliding(10, 0) end,
        "weir.sliding(size_ms, slide_ms): slide_ms must be a positive "
        .. "number of ms, got 0")
    end)
  end)

  it("requires timestamps before a window", function()
    local p = weir.pipeline { checkpoint_interval = 0 }
    p:sequence(1, 2):key_by(function() return 1 end)
      :window(weir.tumbling(5)):reduce(function(a) return a end):collect()
    local ok, err = pcall(p.run, p)
    assert.is_false(ok)
    assert.matches("window %(spec/event_time_spec%.lua:%d+%) failed on "
      .. "record 1: the record has no timestamp; call with_timestamps "
      .. "before key_by%(%.%.%.%):window%(%.%.%.%)", err)
  end)

  describe("process timers", function()
    -- A task whose input ended is snapshotted at once when a checkpoint is
    -- triggered, also while its final watermark's timers fire (it waits
    -- for room downstream between them): its restore fires the rest.
    for _, backend in ipairs({ "heap", "rocksdb" }) do
      it("that were due but not fired when a snapshot was taken fire "
        .. "after the restore (" .. backend .. ")", function()
        local operators = require "weir.operators"
        local state_backend = require "weir.state_backend"
        if not state_backend.available(backend) then
          return pending("built without RocksDB")
        end
        local backends = {}
        local function make(out)
          local b = state_backend.open({ state_backend = backend })
          backends[#backends + 1] = b
          local inst
          -- The snapshot is taken between two timers, where a task that
          -- ends takes a triggered checkpoint's (weir.task_checkpoint).
          local env = { max_parallelism = 128, subtask = 0,
            parallelism = 1, task_id = 1, state_backend = b,
            emit_watermark = function() end,
            wall_ms = function() return 0 end,
            between_timers = function()
              if #out == 5 and not inst.snap then
                inst.snap = inst.snapshot()
              end
            end }
          inst = operators.process({ kind = "process", uid = "p",
            defined_at = "spec", fn = function(ctx)
              ctx:timer(ctx.timestamp)
            end, on_timer = function(ctx, t)
              out[#out + 1] = ctx.key .. "@" .. t
            end }, function() end, env)
          return inst
        end
        local first = {}
        local inst = make(first)
        for k = 1, 10 do inst.push(k, k * 10, "k" .. k) end
        inst.watermark(math.huge)
        assert.are.equal(10, #first)
        local again = {}
        local restored = make(again)
        restored.restore({ { subtask = 0, state = inst.snap } })
        restored.watermark(math.huge)  -- the end of input, again
        local all = {}
        for i = 1, 5 do all[#all + 1] = first[i] end
        for _, f in ipairs(again) do all[#all + 1] = f end
        assert.same({ "k1@10", "k2@20", "k3@30", "k4@40", "k5@50", "k6@60",
          "k7@70", "k8@80", "k9@90", "k10@100" }, all)
        for _, b in ipairs(backends) do b:close() end
      end)
    end

    it("fire in time order when the watermark passes, once per key and "
      .. "time", function()
      local out = run(function(p)
        return p:sequence(1, 6)
          :with_timestamps(function(x) return x * 10 end)
          :key_by(function(x) return x % 2 end)
          :process(function(ctx, x)
            if ctx.timestamp < 35 then ctx:timer(35) end
            ctx:timer(ctx.timestamp + 5)
          end, { on_timer = function(ctx, t)
            ctx:emit({ t, ctx.key .. "@" .. t .. "/" .. ctx.watermark })
          end })
      end)
      local fired = {}
      for i, f in ipairs(out) do
        if i > 1 then assert.is_true(f[1] >= out[i - 1][1]) end
        fired[i] = f[2]
      end
      -- Key 1 asked for 35 twice and key 0 once: one timer each.
      assert.same({ "0@25/29", "0@35/39", "0@45/49", "0@65/inf", "1@15/19",
        "1@35/39", "1@55/59" }, sorted(fired))
    end)

    it("fire at the end of input for times beyond the last watermark",
      function()
        local out = run(function(p)
          return p:sequence(1, 2)
            :with_timestamps(function(x) return x end)
            :key_by(function(x) return x end)
            :process(function(ctx) ctx:timer(1e12) end,
              { on_timer = function(ctx, t) ctx:emit(ctx.key) end })
        end)
        assert.same({ 1, 2 }, sorted(out))
      end)

    it("fire processing-time timers on the wall clock", function()
      local out = run(function(p)
        return p:sequence(1, 3000000)
          :key_by(function(x) return x % 2 end)
          :process(function(ctx, x)
            if x <= 2 then ctx:processing_timer(0) end
          end, { on_timer = function(ctx) ctx:emit(ctx.key) end })
      end)
      assert.same({ 0, 1 }, sorted(out))
    end)

    it("tell the wall clock through ctx:processing_time()", function()
      local before = os.time() * 1000
      local out = run(function(p)
        return p:sequence(1, 1):key_by(function(x) return x end)
          :process(function(ctx) ctx:emit(ctx:processing_time()) end)
      end)
      local after = (os.time() + 1) * 1000
      assert.are.equal(1, #out)
      assert.is_true(out[1] >= before and out[1] <= after, out[1])
    end)
  end)

  describe("idle_timeout", function()
    it("stops an idle input from holding back a union's watermark",
      function()
        local N, seen = 3000000, 0
        local out = run(function(p)
          local quiet = p:sequence(1, N)
            :filter(function(x) return x <= 5 end)
            :with_timestamps(function(x) return x end, { idle_timeout = 20 })
          local busy = p:sequence(1, N)
            :map(function(x) seen = x return x end)
            :with_timestamps(function(x) return x end)
          return quiet:union(busy)
            :key_by(function() return "k" end)
            :window(weir.tumbling(100000))
            :apply(function(ctx) ctx:emit(seen) end)
        end)
        -- The first window fired while the busy input was still running.
        assert.is_true(out[1] < N, "fired only at the end of input")
      end)
  end)
end)
