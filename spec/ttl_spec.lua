-- State time-to-live on keyed operators (Stream:ttl), driven by hand: the
-- operators get a clock the spec sets, so no time passes for real.
local weir = require "weir"
local operators = require "weir.operators"

local function env_of(clock)
  return { max_parallelism = 128, subtask = 0, parallelism = 1,
    emit_watermark = function() end, clock = clock,
    wall_ms = function() return clock.now end,
    now_ms = function() return clock.now end }
end

-- A reduce summing per key, with ttl_ms (or none); returns the instance,
-- the clock and the list of what it emitted.
local function reduce(ttl_ms, backend)
  local clock, out = { now = 0 }, {}
  local node = { kind = "reduce", uid = "sums", defined_at = "spec",
    fn = function(acc, x) return acc + x end, ttl_ms = ttl_ms }
  local env = env_of(clock)
  env.state_backend, env.task_id = backend, 1
  local inst = operators.reduce(node, function(v) out[#out + 1] = v end,
    env)
  return inst, clock, out
end

describe("state time-to-live", function()
  it("meets a key not written for ttl_ms with fresh state", function()
    local inst, clock, out = reduce(100)
    inst.push(1, nil, "a")
    clock.now = 99
    inst.push(2, nil, "a")        -- written at 0: 99 ms old, alive
    clock.now = 198
    inst.push(4, nil, "a")        -- written at 99: alive
    clock.now = 298
    inst.push(8, nil, "a")        -- written at 198: 100 ms old, expired
    assert.same({ 1, 3, 7, 8 }, out)
  end)

  it("keeps state without a ttl", function()
    local inst, clock, out = reduce(nil)
    inst.push(1, nil, "a")
    clock.now = 1e9
    inst.push(2, nil, "a")
    assert.same({ 1, 3 }, out)
  end)

  it("forgets expired keys in the background, and keeps the others",
    function()
    local inst, clock = reduce(100)
    for k = 1, 1000 do inst.push(1, nil, "old" .. k) end
    clock.now = 150
    inst.push(1, nil, "new")
    assert.are.equal(1001, inst.state.count)
    -- A sweep of every key group (records sweep one group per 1024).
    inst.state:expire_some(clock.now, 100, 128)
    assert.are.equal(1, inst.state.count)
    assert.are.equal(1, inst.state.entries["new"].state)
  end)

  it("keeps each key's write time in snapshots: a restored key expires "
    .. "ttl_ms after its last write", function()
    local inst, clock = reduce(100)
    inst.push(1, nil, "a")
    clock.now = 60
    inst.push(1, nil, "b")
    local snap = inst.snapshot()
    local restored, clock2, out = reduce(100)
    restored.restore({ { subtask = 0, state = snap } })
    clock2.now = 120
    restored.push(10, nil, "a")   -- written at 0: expired
    restored.push(10, nil, "b")   -- written at 60: alive
    assert.same({ 10, 11 }, out)
  end)

  it("keeps the write times in snapshots of the rocksdb backend, which "
    .. "either backend restores", function()
    local core = require "weir.core"
    if not core.rocksdb_open then return pending("built without RocksDB") end
    local state_backend = require "weir.state_backend"
    local backends = {}
    local function rocksdb()
      backends[#backends + 1] = state_backend.open({ state_backend =
        "rocksdb" })
      return backends[#backends]
    end
    local inst, clock = reduce(100, rocksdb())
    inst.push(1, nil, "a")
    clock.now = 60
    inst.push(1, nil, "b")
    local snap = inst.snapshot()
    for _, backend in ipairs({ false, rocksdb() }) do
      local restored, clock2, out = reduce(100, backend or nil)
      restored.restore({ { subtask = 0, state = snap } })
      clock2.now = 120
      restored.push(10, nil, "a")   -- written at 0: expired
      restored.push(10, nil, "b")   -- written at 60: alive
      assert.same({ 10, 11 }, out)
    end
    for _, b in ipairs(backends) do b:close() end
  end)

  it("refuses write times in a snapshot that are not a list of ms",
    function()
    local buffer = require "string.buffer"
    local State = require "weir.state"
    local key = require "weir.key"
    local kg = key.key_group("a", 128)
    for _, bad in ipairs({ "x", { "x" }, { [2] = 1 }, { [0.5] = 1 } }) do
      local bytes = buffer.encode({ "a", 1, nil, nil, n = 4, written = bad })
      local flat, err = State.decode_group(bytes, kg, 128)
      assert.is_nil(flat)
      assert.matches("write times that are not a list of ms", err)
    end
    local ok = buffer.encode({ "a", 1, nil, nil, n = 4, written = { 7 } })
    assert.are.equal(7, State.written_at(State.decode_group(ok, kg, 128), 1))
  end)

  it("counts a key restored without a write time (a snapshot of weir "
    .. "before they were kept) as written at the first sweep after",
    function()
    local inst, clock = reduce(100)
    inst.push(1, nil, "a")
    inst.state.entries["a"].written = nil   -- as such a restore leaves it
    clock.now = 500
    inst.state:expire_some(clock.now, 100, 128)
    assert.are.equal(1, inst.state.count)
    clock.now = 650
    inst.state:expire_some(clock.now, 100, 128)
    assert.are.equal(0, inst.state.count)
  end)

  it("is refused on an operator without keyed state, or a bad time",
    function()
    local p = weir.pipeline { name = "ttl", checkpoint_interval = 0 }
    local s = p:sequence(1, 3)
    assert.has_error(function() s:map(function(x) return x end):ttl(10) end,
      "ttl: map keeps no state with a time-to-live (only reduce, process "
      .. "and connect(...):process do)")
    local keyed = s:key_by(function(x) return x end)
    assert.has_error(function()
      keyed:reduce(function(a, b) return a + b end):ttl(0)
    end, "ttl: expected a time in ms > 0")
  end)

  it("runs in a job: a process whose state expires between records",
    function()
    local p = weir.pipeline { name = "ttl_job", checkpoint_interval = 0 }
    local out = p:sequence(1, 4):key_by(function() return "k" end)
      :process(function(ctx, x)
        ctx.state.n = (ctx.state.n or 0) + 1
        ctx:emit(ctx.state.n)
      end):ttl(1e9)
      :collect()
    p:run()
    assert.same({ 1, 2, 3, 4 }, out)
  end)
end)
