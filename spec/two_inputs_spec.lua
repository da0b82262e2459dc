-- Two-input operators: connect + process on two keyed streams, and the
-- window join; in-process semantics, errors, and kill -9 recovery.
local h = require "helpers"
local weir = require "weir"

local function pipeline(dir)
  return weir.pipeline { name = "two", checkpoint_interval = 0,
    checkpoint_dir = dir }
end

describe("connect", function()
  local dir
  setup(function() dir = h.tmpdir() end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  it("gives both inputs the key's shared state", function()
    local p = pipeline(dir)
    local a = p:sequence(1, 20)
    local b = p:sequence(1, 20):map(function(x) return x * 10 end)
    local out = a:key_by(function(x) return x % 2 end)
      :connect(b:key_by(function(y) return y / 10 % 2 end))
      :process {
        left = function(ctx, x)
          ctx.state.l = (ctx.state.l or 0) + x
          ctx.state.n = (ctx.state.n or 0) + 1
        end,
        right = function(ctx, y)
          ctx.state.r = (ctx.state.r or 0) + y
          ctx.state.n = (ctx.state.n or 0) + 1
        end,
        finish = function(ctx)
          ctx:emit({ ctx.key, ctx.state.l, ctx.state.r, ctx.state.n })
        end,
      }:collect()
    p:run()
    table.sort(out, function(x, y) return x[1] < y[1] end)
    assert.are.same({ { 0, 110, 1100, 20 }, { 1, 100, 1000, 20 } }, out)
  end)

  it("fires event-time timers at the minimum of both inputs' watermarks",
    function()
      local p = pipeline(dir)
      -- The left input runs far ahead in event time; a timer at 50 must
      -- wait for the right input (5000 records up to 100 ms, read 1024 a
      -- step) to pass 50 too.
      local fast = p:sequence(1, 10):with_timestamps(function(x)
        return x * 1000 end)
      local slow = p:sequence(1, 5000):with_timestamps(function(x)
        return x / 50 end)
      local fired = {}
      local out = fast:key_by(function() return "k" end)
        :connect(slow:key_by(function() return "k" end))
        :process {
          left = function(ctx) ctx:timer(50) end,
          right = function(ctx, y) ctx.state.last = y end,
          on_timer = function(ctx, t)
            fired[#fired + 1] = { t, ctx.state.last, ctx.watermark }
            ctx:emit(t)
          end,
        }:collect()
      p:run()
      assert.are.same({ 50 }, out)
      assert.are.equal(1, #fired)
      local _, last, watermark = unpack(fired[1])
      -- Fired after the right input passed 50 ms (record 2500), before it
      -- ended, at a watermark the right input set.
      assert.is_true(last and last > 2500 and last < 5000, tostring(last))
      assert.is_true(watermark >= 50 and watermark < 100, watermark)
    end)

  it("takes only keyed streams of the same pipeline", function()
    local p = pipeline(dir)
    local a = p:sequence(1, 3):key_by(function(x) return x end)
    assert.has_error(function() a:connect(p:sequence(1, 3)) end,
      "connect: argument 1 must be a keyed stream of this pipeline "
      .. "(s:key_by(fn))")
    assert.has_error(function()
      a:connect(a):process { left = function() end }
    end, "process: right must be a function(ctx, record)")
  end)
end)

describe("join", function()
  local dir
  setup(function() dir = h.tmpdir() end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- Pairs computed without weir: l, r with equal keys and a window in
  -- common (windows [s, s + size) starting every slide).
  local function reference(ls, rs, key, size, slide)
    local out = {}
    for _, l in ipairs(ls) do
      for _, r in ipairs(rs) do
        if key(l) == key(r) then
          -- Count the windows holding both timestamps (= values here).
          local hi, lo = math.max(l, r), math.min(l, r)
          local s = hi - hi % slide
          while s > hi - size do
            if s <= lo then out[#out + 1] = l .. "-" .. r end
            s = s - slide
          end
        end
      end
    end
    table.sort(out)
    return out
  end

  local function run_join(window, size, slide)
    local p = pipeline(dir)
    local function ts(x) return x end
    local a = p:sequence(1, 300):with_timestamps(ts)
    local b = p:sequence(1, 300):filter(function(x) return x % 3 == 0 end)
      :with_timestamps(ts)
    local key = function(x) return x % 7 end
    local out = a:join(b, { left_key = key, right_key = key, window = window,
      apply = function(l, r) return l .. "-" .. r end }):collect()
    p:run()
    table.sort(out)
    local ls, rs = {}, {}
    for x = 1, 300 do
      ls[#ls + 1] = x
      if x % 3 == 0 then rs[#rs + 1] = x end
    end
    return out, reference(ls, rs, key, size, slide)
  end

  it("pairs the records with equal keys in each tumbling window", function()
    local out, expected = run_join(weir.tumbling(50), 50, 50)
    assert.is_true(#expected > 100)
    assert.are.same(expected, out)
  end)

  it("pairs them once per sliding window they share", function()
    local out, expected = run_join(weir.sliding(60, 20), 60, 20)
    assert.are.same(expected, out)
  end)

  it("emits { l, r } without apply, at the window's last ms, and counts "
    .. "late records", function()
      local p = pipeline(dir)
      -- Timestamps 1..2999, then 5: late, as the records before it (read
      -- 1024 a step) and the end of the right input moved the watermark
      -- past the window [0, 100).
      local a = p:sequence(1, 3000):with_timestamps(function(x)
        return x < 3000 and x or 5 end)
      local b = p:sequence(1, 1):with_timestamps(function() return 15 end)
      local times = {}
      local out = a:join(b, { left_key = function() return 1 end,
        right_key = function() return 1 end, window = weir.tumbling(100) })
        :key_by(function() return 1 end)
        :process(function(ctx, pair)
          times[ctx.timestamp] = true
          ctx:emit(pair)
        end):collect()
      local stats = p:run()
      table.sort(out, function(x, y) return x[1] < y[1] end)
      assert.are.equal(99, #out)
      assert.are.same({ 1, 1 }, out[1])
      assert.are.same({ 99, 1 }, out[99])
      assert.are.same({ [99] = true }, times)
      assert.are.equal(1, stats.late_records)
    end)

  it("names a record without a timestamp and refuses session windows",
    function()
      local p = pipeline(dir)
      local a = p:sequence(1, 3)
      local ok, err = pcall(function()
        a:join(p:sequence(1, 3), { left_key = tostring,
          right_key = tostring, window = weir.tumbling(10) }):collect()
        p:run()
      end)
      assert.is_false(ok)
      assert.matches("window_join .*the record has no timestamp", err)
      assert.has_error(function()
        a:join(a, { left_key = tostring, right_key = tostring,
          window = weir.session(10) })
      end, "join: window must be weir.tumbling(ms) or weir.sliding(ms, ms)")
    end)
end)

describe("two-input operators after kill -9", function()
  local dir, join_ref, connect_ref
  local N = 400000

  setup(function()
    dir = h.tmpdir()
    -- spec/fixtures/two_inputs.lua's output computed without weir.
    join_ref, connect_ref = {}, {}
    local n = 0
    for l = 1, N do
      local w = l - l % 5000
      for r = l % 2500 + w, w + 4999, 2500 do
        if r >= 1 and r <= N then
          join_ref[l .. "\t" .. r] = true
          n = n + 1
        end
      end
    end
    join_ref.n = n
    local sums = {}
    for x = 1, N do sums[x % 100] = (sums[x % 100] or 0) + x end
    for k, s in pairs(sums) do
      connect_ref[string.format("%d\t%.0f\t%.0f", k, s, s)] = true
    end
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function args(case)
    return { "run", "--parallelism", "2", "--restore", "latest",
      "--checkpoint-interval", "30", "--checkpoint-dir",
      dir .. "/" .. case .. "/ck", "spec/fixtures/two_inputs.lua",
      tostring(N), dir .. "/" .. case .. "/out" }
  end

  local function assert_output(case)
    local n = join_ref.n
    join_ref.n = nil
    h.assert_exactly_once(dir .. "/" .. case .. "/out/join", join_ref, n)
    join_ref.n = n
    h.assert_exactly_once(dir .. "/" .. case .. "/out/connect", connect_ref,
      100)
  end

  it("gives the output of plain Lua when undisturbed", function()
    local r = h.run_weir(args("plain"))
    assert.are.equal(0, r.status, r.stderr)
    assert.is_nil(r.stderr:match("late records"))
    assert_output("plain")
  end)

  it("gives exactly that output after kills at several checkpoints",
    function()
      local job_dir = dir .. "/kills/ck/two_inputs"
      local r = h.kill_after_checkpoints(args("kills"), job_dir, { 1, 2, 1 })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("restored from", r.stderr)
      assert_output("kills")
    end)
end)
