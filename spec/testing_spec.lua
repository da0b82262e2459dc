-- weir.testing: the operator harness and in-process runs over in-memory
-- inputs that users test their pipelines with.
local weir = require "weir"
local testing = require "weir.testing"

describe("weir.testing.harness", function()
  -- Counts per user; an event-time timer 10 ms after each record emits
  -- the count; a processing-time timer at 1000 emits "tick".
  local function counter()
    return testing.harness(function(s)
      return s:key_by(function(r) return r.user end)
        :process(function(ctx, r)
          ctx.state.n = (ctx.state.n or 0) + 1
          ctx:timer(r.ts + 10)
          if r.tick then ctx:processing_timer(1000) end
        end, { on_timer = function(ctx, t)
          ctx:emit(ctx.key .. "=" .. ctx.state.n .. "@" .. t)
        end, finish = function(ctx)
          ctx:emit(ctx.key .. " done")
        end })
    end)
  end

  it("fires event-time timers as the watermark passes them", function()
    local t = counter()
    t:push({ user = "u1", ts = 5 }, 5)
    t:push({ user = "u1", ts = 7 }, 7)
    t:push({ user = "u2", ts = 8 }, 8)
    t:watermark(15)
    assert.same({ "u1=2@15" }, t:output())
    assert.same({ { key = "u1", timestamp = 15 } }, t.fired)
    t:watermark(18)
    assert.same({ "u1=2@15", "u1=2@17", "u2=1@18" }, t:output())
    assert.same({ 15, 18 }, t.watermarks)
    t:finish()
    local done = { t:output()[4], t:output()[5] }
    table.sort(done)
    assert.same({ "u1 done", "u2 done" }, done)
  end)

  it("fires processing-time timers only when told the time", function()
    local t = counter()
    t:push({ user = "u1", ts = 1, tick = true }, 1)
    t:processing_time(999)
    assert.same({}, t:output())
    t:processing_time(1000)
    assert.same({ "u1=1@1000" }, t:output())
  end)

  it("restores a snapshot into a fresh harness", function()
    local t = counter()
    t:push({ user = "u1", ts = 5 }, 5)
    t:push({ user = "u2", ts = 6 }, 6)
    local restored = counter()
    restored:restore(t:snapshot())
    restored:push({ user = "u1", ts = 7 }, 7)
    restored:watermark(100)
    assert.same({ "u1=2@15", "u2=1@16", "u1=2@17" }, restored:output())
  end)

  it("drives windows and their late records", function()
    local t = testing.harness(function(s)
      return s:key_by(function(r) return r.k end)
        :window(weir.tumbling(10))
        :aggregate {
          init = function() return 0 end,
          add = function(n) return n + 1 end,
          result = function(n, ctx)
            return ctx.key .. "@" .. ctx.window.start .. "=" .. n
          end,
        }
    end)
    t:push({ k = "a" }, 1)
    t:push({ k = "a" }, 3)
    t:push({ k = "a" }, 12)
    t:watermark(9)
    assert.same({ "a@0=2" }, t:output(true))
    t:push({ k = "a" }, 2)   -- its window fired: late
    t:watermark(19)
    assert.same({ "a@10=1" }, t:output())
    assert.same({ { k = "a" } }, t:side_output("late"))
    assert.are.equal(1, t.stats.late_records)
  end)

  it("sends the records user code fails on to the failed side output "
    .. "with on_error(\"skip\")", function()
    local t = testing.harness(function(s)
      return s:key_by(function(r) return r.k end)
        :reduce(function(a, r)
          if r.bad then error("bad record") end
          return { k = a.k, n = a.n + r.n }
        end):on_error("skip")
    end)
    t:push({ k = "a", n = 1 })
    t:push({ k = "a", n = 2, bad = true })
    t:push({ k = "a", n = 3 })
    assert.same({ { k = "a", n = 1 }, { k = "a", n = 4 } }, t:output())
    local failed = t:side_output("failed")
    assert.are.equal(1, #failed)
    assert.same({ k = "a", n = 2, bad = true }, failed[1].record)
    assert.matches("bad record", failed[1].error)
    assert.are.equal(1, t.stats.failed_records)
  end)

  it("feeds both inputs of connect(...):process and of join", function()
    local t = testing.harness(function(a, b)
      return a:key_by(function(r) return r.id end)
        :connect(b:key_by(function(r) return r.id end))
        :process {
          left = function(ctx, r) ctx.state.name = r.name end,
          right = function(ctx, r)
            ctx:emit((ctx.state.name or "?") .. " paid " .. r.amount)
          end,
        }
    end)
    t:push({ id = 1, name = "ada" }, 1, 1)
    t:push({ id = 1, amount = 5 }, 2, 2)
    t:push({ id = 2, amount = 7 }, 3, 2)
    assert.same({ "ada paid 5", "? paid 7" }, t:output())

    local j = testing.harness(function(a, b)
      return a:join(b, { left_key = function(r) return r.id end,
        right_key = function(r) return r.id end, window = weir.tumbling(10),
        apply = function(l, r) return l.v .. r.v end })
    end)
    j:push({ id = 1, v = "l" }, 1, 1)
    j:push({ id = 1, v = "r" }, 2, 2)
    j:push({ id = 2, v = "x" }, 3, 2)
    j:watermark(9)
    assert.same({ "lr" }, j:output())
  end)

  it("names what it cannot drive", function()
    assert.has_error(function()
      testing.harness(function(s) return s:map(tostring) end)
    end, "weir.testing.harness: build must return the stream of a keyed "
      .. "operator (process, reduce, window aggregate or apply, "
      .. "connect(...):process, join), got map")
  end)
end)

describe("weir.testing.run", function()
  it("runs a pipeline over in-memory inputs and collects its outputs",
    function()
      local out = testing.run(function(_, inputs)
        local words = inputs.lines:flat_map(function(l, emit)
          for w in l:gmatch("%a+") do emit(w) end
        end)
        return {
          counts = words:key_by(function(w) return w end)
            :process(function(ctx) ctx.state.n = (ctx.state.n or 0) + 1 end,
              { finish = function(ctx)
                ctx:emit(ctx.key .. " " .. ctx.state.n)
              end }):uid("counts"),
          upper = inputs.names:map(string.upper),
        }
      end, { inputs = { lines = { "a b", "b", "" }, names = { "x", "y" } } })
      table.sort(out.counts)
      assert.same({ "a 1", "b 2" }, out.counts)
      assert.same({ "X", "Y" }, out.upper)
    end)

  it("raises what the job raises, naming the operator", function()
    local ok, err = pcall(testing.run, function(_, inputs)
      return { out = inputs.xs:map(function(x) return x.field end) }
    end, { inputs = { xs = { 1 } } })
    assert.is_false(ok)
    assert.matches("map %(.*testing_spec%.lua:%d+%) failed on record 1", err)
  end)
end)
