-- The RocksDB state backend (state_backend = "rocksdb"): the same results
-- as the heap backend with a cache far smaller than the state, exactly
-- once after kill -9, and snapshots either backend restores.
local weir = require "weir"
local checkpoint = require "weir.checkpoint_storage"
local checkpoint_record = require "weir.checkpoint_record"
local core = require "weir.core"
local h = require "helpers"
local operators = require "weir.operators"
local state_backend = require "weir.state_backend"
local rocksdb_state = require "weir.rocksdb_state"

local available = core.rocksdb_open ~= nil

-- A RocksDB backend with a cache of cache_mb and the state of operator
-- uid on it (parallelism 1, 128 key groups): backend, state.
local function rocksdb_state_of(uid, cache_mb)
  local backend = state_backend.open({ state_backend = "rocksdb",
    state_cache_mb = cache_mb })
  local env = { max_parallelism = 128, subtask = 0, parallelism = 1,
    task_id = 1 }
  return backend, backend:new_state({ uid = uid, kind = "process",
    defined_at = "spec" }, env, function() return {} end)
end

-- Runs the stream build(p) returns on backend with a cache of cache_mb;
-- returns what it collected, sorted.
local function run_on(backend, build, cache_mb, parallelism)
  local p = weir.pipeline { name = "backend", checkpoint_interval = 0,
    state_backend = backend, state_cache_mb = cache_mb or 0.05,
    parallelism = parallelism }
  local out = build(p):collect()
  p:run()
  table.sort(out)
  return out
end

-- Keyed sums over 5000 keys, every key met four times.
local function sums(p)
  return p:sequence(1, 20000)
    :key_by(function(x) return x % 5000 end)
    :reduce(function(a, b) return a + b end)
    :map(function(x) return x end)
end

-- A count per key emitted by an event-time timer at the end (timers keep
-- their keys in the cache) and by finish (which meets evicted keys too).
local function timed_counts(p)
  return p:sequence(1, 12000)
    :with_timestamps(function(x) return x end)
    :key_by(function(x) return "k" .. x % 3000 end)
    :process(function(ctx, x)
      ctx.state.n = (ctx.state.n or 0) + 1
      if x % 2 == 0 then ctx:timer(1e12) end
    end, {
      on_timer = function(ctx) ctx:emit("timer " .. ctx.key .. " "
        .. ctx.state.n) end,
      finish = function(ctx) ctx:emit("finish " .. ctx.key .. " "
        .. ctx.state.n) end })
end

describe("the rocksdb state backend", function()
  if not available then
    pending("weir was built without RocksDB (librocksdb-dev): skipped")
    return
  end

  it("gives a keyed reduce's results with a cache smaller than its state",
    function()
      local heap = run_on("heap", sums)
      assert.are.equal(20000, #heap)
      assert.same(heap, run_on("rocksdb", sums))
    end)

  it("fires timers and runs finish for every key, evicted or not", function()
    local heap = run_on("heap", timed_counts)
    assert.are.equal(4500, #heap)
    assert.same(heap, run_on("rocksdb", timed_counts))
  end)

  it("counts words as the heap backend does at parallelism 1 and 2, and "
    .. "leaves no working files", function()
    local dir = h.tmpdir()
    for _, parallelism in ipairs({ "1", "2" }) do
      local out = dir .. "/out-" .. parallelism
      local r = h.run_weir({ "run", "--parallelism", parallelism,
        "--state-backend", "rocksdb", "--state-cache-mb", "1",
        "--state-dir", dir .. "/state", "--checkpoint-interval", "20",
        "--checkpoint-dir", dir .. "/ck", "examples/wordcount.lua",
        h.shakespeare, out })
      assert.are.equal(0, r.status, r.stderr)
      local lines = h.sh("cat " .. h.quote(out) .. "/* | sort")
      assert.are.equal(table.concat(h.wordcount_lines(h.shakespeare), "\n")
        .. "\n", lines)
      assert.same({}, core.scandir(dir .. "/state"))
    end
    h.sh("rm -rf " .. h.quote(dir))
  end)

  it("keeps no more keys cached or held than its budget, and loses none",
    function()
      -- The smallest cache: 64 keys.
      local backend, state = rocksdb_state_of("counts", 0.0001)
      for i = 1, 3000 do
        local e = state.get("k" .. i % 1000)
        e.state.n = (e.state.n or 0) + 1
        assert.is_true(state.count <= 64, state.count .. " keys cached")
        -- Entries evicted and written back leave the list of changed
        -- ones soon (it holds them alive, beyond the cache's budget).
        assert.is_true(#state.dirty <= 1.5 * 64, #state.dirty .. " held")
      end
      local n, total = 0, 0
      state:each(function(e)
        n, total = n + 1, total + e.state.n
      end)
      assert.are.equal(1000, n)
      assert.are.equal(3000, total)
      backend:close()
    end)

  it("lets entries with timers leave a full cache and fires their timers "
    .. "from what was written back", function()
      -- The smallest cache: 64 keys.
      local backend, state = rocksdb_state_of("windows", 0.0001)
      local timers = state:new_timer_queue("timers")
      for i = 1, 3000 do
        local e = state.get("k" .. i)
        e.state.n = i
        timers:add(e, 1e6 + i)  -- a window's end
      end
      -- Entries with timers were kept cached, all of them: a job whose
      -- keys all hold windows (Nexmark q5) outgrew its memory.
      assert.is_true(state.count <= 64, state.count .. " keys cached")
      local fired = 0
      timers:advance(1e6 + 2000, function(e, t)
        fired = fired + 1
        assert.are.equal(1e6 + fired, t)
        assert.are.equal(fired, e.state.n)
        assert.is_nil(e.timers[t])
      end)
      assert.are.equal(2000, fired)
      assert.are.equal(1e6 + 2001, timers:peek())
      assert.is_true(state.count <= 64, state.count .. " keys cached")
      backend:close()
    end)

  it("fires a key's due timers together, its entry read from RocksDB "
    .. "once, when a watermark passes several of them", function()
      -- The smallest cache (64 keys), 3000 keys with five windows each.
      local backend, state = rocksdb_state_of("windows", 0.0001)
      local timers = state:new_timer_queue("timers")
      for i = 1, 3000 do
        local e = state.get("k" .. i)
        for w = 1, 5 do timers:add(e, w * 1000 + i % 7) end
      end
      local decode_entry, reads = state.decode_entry, 0
      function state.decode_entry(...)  -- an entry read from RocksDB
        reads = reads + 1
        return decode_entry(...)
      end
      local order, last = {}, {}
      timers:advance(math.huge, function(e, t)
        if order[#order] ~= e.key then order[#order + 1] = e.key end
        assert.is_true(t > (last[e.key] or 0), "in time order per key")
        last[e.key] = t
      end)
      -- One run of fires per key (each key comes up once).
      assert.are.equal(3000, #order)
      assert.is_true(reads <= 3000, reads .. " reads")
      assert.is_nil(timers:peek())
      backend:close()
    end)

  it("fires a timer registered again at a time its key fired early",
    function()
      local backend, state = rocksdb_state_of("again", 1)
      local timers = state:new_timer_queue("timers")
      local a, b = state.get("a"), state.get("b")
      for t = 1, 3 do timers:add(a, t) end
      timers:add(b, 1.5)
      local fired = {}
      timers:advance(10, function(e, t)
        fired[#fired + 1] = e.key .. t
        -- Registered from elsewhere while the queue holds a's fired
        -- copies: not skipped with them.
        if e.key == "b" then timers:add(state.get("a"), 2) end
      end)
      assert.same({ "a1", "a2", "a3", "b1.5", "a2" }, fired)
      assert.is_nil(timers:peek())
      backend:close()
    end)

  it("estimates what a value holds in memory, counting shared tables once",
    function()
      local memory_bytes = require("weir.state").memory_bytes
      assert.are.equal(0, memory_bytes(42))
      local small = memory_bytes({ n = 1, last = 2 })
      assert.is_true(small >= 64 and small <= 256, small .. " bytes")
      local shared = { 1, 2, 3 }
      local two = memory_bytes({ a = shared, b = shared })
      assert.is_true(two < memory_bytes({ a = { 1, 2, 3 }, b = { 1, 2, 3 } }))
      local cycle = {}
      cycle.self = cycle
      assert.is_true(memory_bytes(cycle) > 0)
      local many = {}
      for i = 1, 1000 do many[i] = { i } end
      assert.is_true(memory_bytes(many) > 1000 * 64)
      assert.is_true(memory_bytes(many, 10) < memory_bytes(many) / 5,
        "at most 10 tables")
      assert.is_true(memory_bytes({ ("x"):rep(1000) }) > 1000)
    end)

  it("sizes its cache by what entries hold in memory, not by their "
    .. "encoding", function()
      local backend, state = rocksdb_state_of("index", 1)
      for i = 1, 5000 do
        local e = state.get(i)
        e.state.n = i
        -- What an operator keeps beside the state, as a window index:
        -- some 3 KB in memory, nothing in the stored value.
        local index = {}
        for j = 1, 40 do index[j] = { j } end
        e.windows_index = index
      end
      -- 1 MiB holds about 330 such keys (2,100 by their encoding).
      assert.is_true(state.count <= 600, state.count .. " keys cached")
      backend:close()
    end)

  it("orders timers in RocksDB by time: the bytes of times sort as the "
    .. "times do", function()
    local time_bytes = require("weir.rocksdb_timers").time_bytes
    local times = { -math.huge, -1e15, -1.5, -1, -0.25, 0, 0.25, 1, 1.5,
      1e3, 1700000000000, 1700000000001, 2^53, math.huge }
    for i = 1, #times - 1 do
      local a, b = time_bytes(times[i]), time_bytes(times[i + 1])
      assert.are.equal(8, #a)
      assert.is_true(a < b, times[i] .. " before " .. times[i + 1])
    end
    assert.are.equal(time_bytes(0), time_bytes(-0.0))
    local time_at = require("weir.rocksdb_timers").time_at
    for _, t in ipairs(times) do
      assert.are.equal(t, time_at("ab" .. time_bytes(t) .. "cd", 2))
    end
  end)

  it("fires what the heap's timer queue fires, under random adds, "
    .. "deletes and watermarks, with few timers in memory", function()
    if not available then return pending("built without RocksDB") end
    local backend, state = rocksdb_state_of("random", 0.0001)
    local queue = state:new_timer_queue("timers")
    queue.front_max, queue.front_keep = 4096, 1024
    local heap = require("weir.timers").new("timers")
    local entries = {}  -- the heap's: plain tables
    local function plain(k)
      entries[k] = entries[k] or { key = k }
      return entries[k]
    end
    math.randomseed(14)
    local w, fired, most = 0, 0, 0
    -- Fires both up to w: the same timers, the queue's in time order
    -- per key (a key's due timers fire together).
    local function advance(to)
      local got, want, last = {}, {}, {}
      queue:advance(to, function(e, at)
        local before = last[e.key] or -math.huge
        assert.is_true(at >= before, at .. " fired after " .. before)
        last[e.key] = at
        got[#got + 1] = at .. " " .. e.key
      end)
      heap:advance(to, function(e, at)
        want[#want + 1] = at .. " " .. e.key
      end)
      table.sort(got)
      table.sort(want)
      assert.same(want, got)
      fired = fired + #got
    end
    for step = 1, 20000 do
      local k = "k" .. math.random(1, 500)
      -- Thousands pending: more than the front holds.
      local t = w + math.random(-10, 2e6)
      local r = math.random()
      if r < 0.6 then
        queue:add(state.get(k), t)
        heap:add(plain(k), t)
      elseif r < 0.8 then
        t = next(plain(k).timers or {}) or t  -- a pending one, mostly
        queue:delete(state.get(k), t)
        heap:delete(plain(k), t)
      else
        w = w + math.random(0, 400)
        advance(w)
      end
      assert.is_true(queue.n <= 4096, queue.n .. " in memory")
      local pending = 0
      if step % 1000 == 0 then
        for _, e in pairs(entries) do
          for _ in pairs(e.timers or {}) do pending = pending + 1 end
        end
        most = math.max(most, pending)
      end
    end
    assert.is_true(most > 6000, most .. " timers pending at most")
    advance(math.huge)
    assert.is_true(fired > 5000, fired .. " fired")
    assert.is_nil(queue:peek())
    queue:write()
    assert.are.equal(0, #backend:task_db(1).db:scan(state.tcf, "", nil))
    backend:close()
  end)

  -- A window operator of kind on the RocksDB backend (a cache of 1 MiB:
  -- every key stays cached), and the number of entries each flush (a
  -- checkpoint's synchronous part) writes back.
  local function window_flushes(assigner, functions, join)
    local windows = require "weir.windows"
    local backend = state_backend.open({ state_backend = "rocksdb",
      state_cache_mb = 1 })
    local node = { kind = join and "window_join" or "window", uid = "w",
      defined_at = "spec", assigner = assigner, allowed_lateness = 0,
      functions = functions }
    local env = { max_parallelism = 128, parallelism = 1, subtask = 0,
      task_id = 1, side = {}, stats = { late_records = 0 },
      emit_watermark = function() end, state_backend = backend }
    local make = join and windows.window_join or windows.window
    local inst = make(node, function() end, env)
    local state = inst.state
    local written, put_entry = 0, state.put_entry
    state.put_entry = function(self, ops, e)
      written = written + 1
      return put_entry(self, ops, e)
    end
    local push = join and function(r, ts, k)
      inst.inputs[1](r, ts, k)
      inst.inputs[2](r, ts, k)
    end or inst.push
    local function flush()
      written = 0
      state:flush()
      return written
    end
    return push, flush, backend
  end

  for _, case in ipairs({
    { "tumbling windows", "tumbling", { 1e9 } },
    { "sliding windows with panes", "sliding", { 1e9, 1e8 } },
    { "session windows", "session", { 1e9 } },
    { "a window join", "tumbling", { 1e9 }, true } }) do
    it("writes back in a checkpoint only the keys whose " .. case[1]
      .. " changed since the last one", function()
        local windows = require "weir.windows"
        local count = { kind = "aggregate", init = function() return 0 end,
          add = function(n) return n + 1 end,
          merge = function(a, b) return a + b end }
        local push, flush, backend = window_flushes(
          windows[case[2]](unpack(case[3])), not case[4] and count or nil,
          case[4])
        for i = 1, 1000 do push(i, i, "k" .. i) end
        assert.are.equal(1000, flush())
        for i = 1, 30 do push(i, 1000 + i, "k" .. i % 10) end
        assert.are.equal(10, flush())
        backend:close()
      end)
  end

  it("sizes its cache by what the values hold before anything was written "
    .. "back", function()
      local backend, state = rocksdb_state_of("big", 1)
      local blob = string.rep("x", 4096)
      for i = 1, 2000 do state.get("k" .. i).state.blob = blob .. i end
      -- 1 MiB holds some 230 of these entries (4 KB each), not the 2,000
      -- (all of them: none written back yet) that small values would let
      -- in.
      assert.is_true(state.count <= 400, state.count .. " keys cached")
      local n = 0
      state:each(function() n = n + 1 end)
      assert.are.equal(2000, n)
      backend:close()
    end)

  it("expires keys by time-to-live, cached or evicted, when met and in "
    .. "the background", function()
    local backend = state_backend.open({ state_backend = "rocksdb",
      state_cache_mb = 0.0001 })  -- the smallest cache: 64 keys
    local clock, out = { now = 0 }, {}
    local env = { max_parallelism = 128, subtask = 0, parallelism = 1,
      emit_watermark = function() end, clock = clock,
      wall_ms = function() return clock.now end,
      now_ms = function() return clock.now end, state_backend = backend,
      task_id = 1 }
    local node = { kind = "reduce", uid = "sums", defined_at = "spec",
      fn = function(a, b) return a + b end, ttl_ms = 100 }
    local inst = operators.reduce(node, function(v) out[#out + 1] = v end,
      env)
    for k = 1, 1000 do inst.push(1, nil, k) end  -- written at 0
    clock.now = 60
    inst.push(1, nil, 1)   -- written at 0: alive, 2
    clock.now = 120
    inst.push(5, nil, 2)   -- written at 0, long evicted: expired, 5
    assert.same({ 2, 5 }, { out[1001], out[1002] })
    clock.now = 130
    inst.state:expire_some(clock.now, 100, 128)
    local left = {}
    inst.state:each(function(e) left[#left + 1] = e.key .. "=" .. e.state end)
    table.sort(left)
    assert.same({ "1=2", "2=5" }, left)
    backend:close()
  end)

  describe("restoring at the same parallelism", function()
    local rocksdb_checkpoint = require "weir.rocksdb_checkpoint"
    local root, backends
    local node = { uid = "counts", kind = "process", name = "process",
      defined_at = "spec/state_backend_spec.lua" }
    local env = { max_parallelism = 8, parallelism = 1, subtask = 0,
      task_id = 1 }

    before_each(function()
      root, backends = h.tmpdir(), {}
    end)

    after_each(function()
      for _, b in ipairs(backends) do b:close() end
      h.sh("rm -rf " .. h.quote(root))
    end)

    local function backend(name)
      local b = state_backend.open({ state_backend = "rocksdb",
        state_dir = root .. "/" .. name })
      backends[#backends + 1] = b
      local state = b:new_state(node, env, function() return {} end)
      state.tracked = true  -- as a keyed process's: changes marked
      local timers = state:new_timer_queue("timers")
      return b, state, timers
    end

    -- Checkpoint id of task 1 of backend b into root/shared: the state
    -- file's rocksdb reference, as weir.checkpoint_storage.load gives it.
    local function checkpoint_of(b, id)
      local t = b:task_db(1)
      local dir = assert(rocksdb_checkpoint.take(t, id))
      local ref, err
      rocksdb_checkpoint.upload(t, id, dir, root .. "/shared",
        function() end, function() end, function(e, r) err, ref = e, r end)
      h.wait_until(function() return ref or err end, 10000, "the upload")
      assert.is_nil(err)
      rocksdb_checkpoint.confirm(t, id)
      return { dbid = ref.dbid, files = ref.files, private = ref.private,
        first = 0, last = 7, timer_keys = ref.timer_keys[node.uid],
        shared_dir = root .. "/shared" }
    end

    it("takes the checkpoint's files as the database, with its timers, "
      .. "and references them instead of copying them again", function()
      if not available then return pending("built without RocksDB") end
      local b, state, timers = backend("a")
      -- A front of at most 40 timers: it keeps the earliest 10 of them
      -- and stores the others.
      timers.front_max, timers.front_keep = 40, 10
      for i = 1000, 1, -1 do
        local e = state:entry("k" .. i)
        e.state.n = i
        if i % 10 == 0 then timers:add(e, 5000 + i) end
      end
      local ref = checkpoint_of(b, 1)
      -- The stored timers are in the checkpoint's files, and the state
      -- file lists those only the front held.
      assert.is_true(ref.timer_keys.in_db)
      local listed = #ref.timer_keys.front.timers.ts
      assert.is_true(listed > 0 and listed <= 40, listed .. " listed")
      b:close()
      local b2, state2, timers2 = backend("b")
      assert.is_true(b2:adopt(ref, 1, 0, 7))
      state2:queue_timer_keys(ref.timer_keys)
      timers2:rebuild(state2)
      assert.are.equal(0, state2.count)
      assert.are.equal(listed, timers2.n)  -- the others read when due
      local fired = {}
      timers2:advance(5500, function(e, t)
        assert.are.equal(e.state.n + 5000, t)
        fired[#fired + 1] = t
      end)
      assert.are.equal(50, #fired)
      assert.are.equal(5010, fired[1])
      assert.are.equal(5500, fired[50])
      assert.are.equal(5510, timers2:peek())
      for i = 1, 50 do  -- fired, so no longer in the key's state
        local e = state2:entry("k" .. i * 10)
        assert.is_nil(next(e.timers))
      end
      b2:close()
      -- Restored again: the next checkpoint references the same files
      -- (none copied again) and one new one at most, of the listed
      -- timers, stored now.
      b2, state2 = backend("c")
      assert.is_true(b2:adopt(ref, 1, 0, 7))
      state2:queue_timer_keys(ref.timer_keys)
      local again = checkpoint_of(b2, 2)
      local old = {}
      for _, f in ipairs(ref.files) do old[f.name] = true end
      local new = 0
      for _, f in ipairs(again.files) do
        if old[f.name] then
          assert.is_nil(f.new)
          old[f.name] = nil
        else
          new = new + 1
        end
      end
      assert.is_nil(next(old))
      assert.is_true(new <= 1, new .. " new files")
      for i = 1, 1000 do
        assert.are.equal(i, state2:entry("k" .. i).state.n)
      end
    end)

    for _, format in ipairs({ "RocksDB keys", "timers and keys" }) do
      it("stores the timers of a checkpoint taken before they were in "
        .. "RocksDB, which lists them as " .. format, function()
        if not available then return pending("built without RocksDB") end
        local b, state, timers = backend("a")
        local old_list = format == "RocksDB keys" and {}
          or { queues = { timers = { ts = {}, keys = {} } } }
        for i = 1, 100 do
          local e = state:entry("k" .. i)
          e.state.n = i
          if i % 10 == 0 then
            timers:add(e, 5000 + i)
            if format == "RocksDB keys" then
              old_list[#old_list + 1] = rocksdb_state.db_key(e.kg, e.key)
            else
              local q = old_list.queues.timers
              q.ts[#q.ts + 1], q.keys[#q.keys + 1] = 5000 + i, e.key
            end
          end
        end
        if format == "RocksDB keys" then
          old_list[#old_list + 1] = rocksdb_state.db_key(0, "gone")
        end
        -- Such a checkpoint holds no timers' column family.
        timers.front_max, timers.front_keep = 4, 2
        timers:trim()
        local db = b:task_db(1).db
        timers:write()
        local kvs = db:scan(state.tcf, "", nil)
        assert.is_true(#kvs >= 16, #kvs / 2 .. " stored")
        for i = 1, #kvs, 2 do db:delete(state.tcf, kvs[i]) end
        local ref = checkpoint_of(b, 1)
        ref.timer_keys = old_list
        b:close()
        local b2, state2, timers2 = backend("b")
        assert.is_true(b2:adopt(ref, 1, 0, 7))
        assert.are.equal(0, #b2:task_db(1).db:scan(state2.tcf, "", nil))
        state2:queue_timer_keys(ref.timer_keys)
        local fired = {}
        timers2:advance(6000, function(e, t)
          fired[#fired + 1] = e.key .. "@" .. t
        end)
        assert.are.equal(10, #fired)
        assert.are.equal("k10@5010", fired[1])
        assert.are.equal("k100@5100", fired[10])
        local ok, err = pcall(state2.queue_timer_keys, state2, { 7 })
        assert.is_false(ok)
        assert.matches("holds something that is not a key", err)
      end)
    end

    it("refuses a checkpoint's RocksDB file name that would leave its "
      .. "directory", function()
      if not available then return pending("built without RocksDB") end
      local b, state = backend("a")
      state:entry("k").state.n = 1
      local ref = checkpoint_of(b, 1)
      ref.files[1].sst = "../escaped.sst"
      local b2 = backend("b")
      local ok, err = pcall(b2.adopt, b2, ref, 1, 0, 7)
      assert.is_false(ok)
      assert.matches("not a plain name", err)
      assert.is_nil(core.stat(root .. "/b/escaped.sst"))
    end)

    it("reads key by key instead at another range, into a database that "
      .. "holds keys, or from a checkpoint without its keys with timers",
      function()
      if not available then return pending("built without RocksDB") end
      local b, state = backend("a")
      state:entry("k").state.n = 1
      local ref = checkpoint_of(b, 1)
      local b2, state2 = backend("b")
      assert.is_false(b2:adopt(ref, 1, 0, 3))
      local old = {}
      for k, v in pairs(ref) do old[k] = v end
      old.timer_keys = nil
      assert.is_false(b2:adopt(old, 1, 0, 7))
      state2:entry("other").state.n = 2
      state2:flush()
      assert.is_false(b2:adopt(ref, 1, 0, 7))
    end)
  end)

  describe("after kill -9", function()
    local SCRIPT = "spec/fixtures/running_count.lua"
    local dir, input, reference, total

    setup(function()
      dir, input, reference, total = h.running_count_input(3)
    end)

    teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

    local function args(case, backend, parallelism)
      return { "run", "--restore", "latest", "--checkpoint-interval", "50",
        "--state-backend", backend, "--state-cache-mb", "1",
        "--parallelism", parallelism,
        "--checkpoint-dir", dir .. "/" .. case .. "/ck", SCRIPT, input,
        dir .. "/" .. case .. "/out" }
    end

    for _, parallelism in ipairs({ "1", "2" }) do
      it("writes exactly the reference's lines at parallelism "
        .. parallelism, function()
        local case = "rocksdb-" .. parallelism
        local a = args(case, "rocksdb", parallelism)
        table.insert(a, 2, "--log-level")
        table.insert(a, 3, "debug")
        local r = h.kill_after_checkpoints(a,
          dir .. "/" .. case .. "/ck/running_count", { 2, 3 })
        assert.are.equal(0, r.status, r.stderr)
        h.assert_exactly_once(dir .. "/" .. case .. "/out", reference, total)
        -- Restored at the same parallelism: the checkpoint's files taken
        -- as the tasks' databases.
        assert.matches("its RocksDB database is the checkpoint's files",
          r.stderr)
      end)
    end

    -- Runs case's job on backend at parallelism and kills it once k
    -- checkpoints completed (it must still be running); returns its job
    -- directory.
    local function kill_after(case, backend, parallelism, k)
      local job_dir = dir .. "/" .. case .. "/ck/running_count"
      local proc = h.spawn_weir(args(case, backend, parallelism))
      h.wait_until(function()
        return #h.complete_checkpoints(job_dir) >= k
      end, 30000, "checkpoint " .. k)
      h.kill(proc, "KILL")
      assert.are.equal(137, h.wait_exit(proc).status,
        "the job ended before the kill")
      return job_dir
    end

    -- Runs the job on backend first[1] at parallelism first[2], kills it
    -- once two checkpoints completed, and runs it to its end on then[1]
    -- at then[2], restoring the newest: the output must be exact.
    local function switch(case, first, then_)
      kill_after(case, first[1], first[2], 2)
      local r = h.run_weir(args(case, then_[1], then_[2]))
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("restored from .*/chk%-%d+", r.stderr)
      h.assert_exactly_once(dir .. "/" .. case .. "/out", reference, total)
    end

    it("restores its checkpoint on the heap backend, at another "
      .. "parallelism", function()
      switch("to-heap", { "rocksdb", "2" }, { "heap", "1" })
    end)

    it("restores a heap backend's checkpoint, at another parallelism",
      function()
      switch("from-heap", { "heap", "1" }, { "rocksdb", "3" })
    end)

    it("rescales 2 -> 3 from an incremental checkpoint", function()
      switch("rescale", { "rocksdb", "2" }, { "rocksdb", "3" })
    end)

    -- Takes a savepoint of a paced run on backend `from` (parallelism 2)
    -- while it runs, kills it, and finishes it on backend `to` from the
    -- savepoint: the savepoint is full (no shared files) and the output
    -- exact.
    local function through_savepoint(case, from, to)
      local ck = dir .. "/" .. case .. "/ck"
      local out = dir .. "/" .. case .. "/out"
      local proc = h.spawn_weir({ "run", "--state-backend", from,
        "--parallelism", "2", "--checkpoint-interval", "100",
        "--checkpoint-dir", ck, "spec/fixtures/paced_count.lua", input, out,
        "50" })
      h.wait_until(function()
        return #h.complete_checkpoints(ck .. "/running_count") >= 1
      end, 30000, "a first checkpoint")
      local r = h.run_weir({ "savepoint", "running_count",
        "--checkpoint-dir", ck })
      assert.are.equal(0, r.status, r.stderr)
      local sp = r.stdout:match("^(%S+)\n$")
      h.kill(proc, "KILL")
      assert.are.equal(137, h.wait_exit(proc).status,
        "the job ended before the kill")
      local m = assert(checkpoint.read_manifest(sp))
      for _, f in ipairs(m.files) do assert.is_nil(f.shared, f.name) end
      r = h.run_weir({ "run", "--state-backend", to, "--parallelism", "1",
        "--checkpoint-dir", dir .. "/" .. case .. "/ck2", "--restore", sp,
        "spec/fixtures/paced_count.lua", input, out, "0" })
      assert.are.equal(0, r.status, r.stderr)
      h.assert_exactly_once(out, reference, total)
    end

    it("takes a full savepoint that the heap backend restores", function()
      through_savepoint("sp-to-heap", "rocksdb", "heap")
    end)

    it("restores a heap backend's savepoint", function()
      through_savepoint("sp-from-heap", "heap", "rocksdb")
    end)

    -- The manifests of the complete checkpoints of job_dir.
    local function manifests(job_dir)
      local out = {}
      for _, c in ipairs(checkpoint.list(job_dir)) do
        if c.complete then
          out[#out + 1] = assert(checkpoint.read_manifest(c.path))
        end
      end
      return out
    end

    it("takes incremental checkpoints and keeps exactly the shared files "
      .. "retained checkpoints reference", function()
      local case = "retention"
      local job_dir = dir .. "/" .. case .. "/ck/running_count"
      local r = h.run_weir({ "run", "--state-backend", "rocksdb",
        "--parallelism", "2", "--checkpoint-interval", "10", "--retain", "2",
        "--checkpoint-dir", dir .. "/" .. case .. "/ck",
        "spec/fixtures/paced_count.lua", input, dir .. "/" .. case .. "/out",
        "20" })
      assert.are.equal(0, r.status, r.stderr)
      local taken = tonumber(r.stderr:match("; (%d+) checkpoints"))
      assert.is_true(taken >= 10, taken .. " checkpoints")
      h.assert_exactly_once(dir .. "/" .. case .. "/out", reference, total)
      local referenced, reused = {}, nil
      for _, m in ipairs(manifests(job_dir)) do
        for _, f in ipairs(m.files) do
          for _, sf in ipairs(f.shared or {}) do
            referenced[sf.name] = true
            if not sf.new then reused = "chk-" .. m.id end
          end
        end
      end
      assert.is_truthy(reused, "no checkpoint reused a shared file")
      local present = {}
      for _, name in ipairs(core.scandir(job_dir .. "/shared")) do
        present[name] = true
      end
      assert.same(referenced, present)
      -- The one that reused a file added less than it references (one
      -- right after a compaction of RocksDB's may copy all of it again).
      local records = checkpoint_record.describe(job_dir, error)
      local incremental
      for _, rec in ipairs(records) do
        if rec.id == reused then incremental = rec end
      end
      assert.is_true(incremental.size_bytes < incremental.full_bytes)
      -- weir inspect reads a key out of the newest one's shared files.
      local ins = h.run_weir({ "inspect", records[1].path, "--uid",
        "counts", "--key", "the" })
      assert.are.equal(0, ins.status, ins.stderr)
      local the = h.reference_wordcount(input).the
      assert.are.equal(string.format('["the"] = { "the", %d }\n', the),
        ins.stdout:match('%["the"%][^\n]*\n'))
    end)

    -- A crash at each step of publishing and deleting: the newest intact
    -- checkpoint restores to the exact output, and once the job finished
    -- no shared file is left that no checkpoint references.
    -- { step, the time it is reached that crashes, parallelism: 1 where
    -- the step is a task's, so the crash is the job's process's }
    for _, c in ipairs({ { "shared.after_upload", 3, "1" },
      { "checkpoint.before_manifest", 3, "2" },
      { "checkpoint.after_manifest", 3, "2" },
      { "retention.before", 3, "2" }, { "removal.mid_files", 3, "2" },
      { "shared.mid_collect", 2, "2" } }) do
      local step, n, parallelism = c[1], c[2], c[3]
      it("leaves an intact checkpoint and no orphan after a crash: " .. step,
        function()
          local ck = dir .. "/" .. step .. "/ck"
          local out = dir .. "/" .. step .. "/out"
          local a = { "run", "--state-backend", "rocksdb", "--parallelism",
            parallelism, "--retain", "1", "--checkpoint-interval", "20",
            "--checkpoint-dir", ck, "spec/fixtures/paced_count.lua", input,
            out, "20" }
          local r = h.run_weir(a, "WEIR_FAILPOINT=" .. step .. ":" .. n)
          assert.are.equal(137, r.status, r.stderr)
          assert.matches("failpoint " .. step:gsub("%.", "%%.") .. " reached",
            r.stderr)
          local job_dir = ck .. "/running_count"
          local warnings = {}
          assert.is_table(checkpoint.find_latest(job_dir, function(msg)
            warnings[#warnings + 1] = msg
          end, checkpoint.open_verified))
          assert.are.same({}, warnings)
          a[#a] = "0"
          table.insert(a, 2, "--restore")
          table.insert(a, 3, "latest")
          r = h.run_weir(a)
          assert.are.equal(0, r.status, r.stderr)
          assert.matches("restored from ", r.stderr)
          h.assert_exactly_once(out, reference, total)
          local referenced = {}
          for _, m in ipairs(manifests(job_dir)) do
            for _, f in ipairs(m.files) do
              for _, sf in ipairs(f.shared or {}) do
                referenced[sf.name] = true
              end
            end
          end
          local present = {}
          for _, name in ipairs(core.scandir(job_dir .. "/shared") or {}) do
            present[name] = true
          end
          assert.same(referenced, present)
        end)
    end

    -- Kills a rocksdb run of case once three checkpoints completed; then
    -- damage(path) spoils a shared file only the newest one wrote, and a
    -- run restoring the newest must refuse it, naming the file, take the
    -- one before and still write exactly the reference's lines.
    local function spoil_newest(case, damage, why)
      local job_dir = kill_after(case, "rocksdb", "2", 3)
      local ids = h.complete_checkpoints(job_dir)
      local newest = checkpoint.path(job_dir, ids[#ids])
      local m = assert(checkpoint.read_manifest(newest))
      local victim
      for _, f in ipairs(m.files) do
        for _, sf in ipairs(f.shared or {}) do
          if sf.new then victim = sf.name end
        end
      end
      assert.is_string(victim, "the newest checkpoint wrote no shared file")
      damage(job_dir .. "/shared/" .. victim)
      local r = h.run_weir(args(case, "rocksdb", "2"))
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("checkpoint " .. newest:gsub("%p", "%%%0")
        .. " is damaged %(.*shared/" .. victim:gsub("%p", "%%%0") .. ".*"
        .. why, r.stderr)
      assert.matches("restored from .*/chk%-" .. ids[#ids - 1], r.stderr)
      h.assert_exactly_once(dir .. "/" .. case .. "/out", reference, total)
    end

    it("refuses a checkpoint whose shared file is damaged, naming it, and "
      .. "restores the one before", function()
      spoil_newest("damaged", function(path)
        local f = assert(io.open(path, "r+b"))
        f:seek("set", 40)
        f:write("damage")
        f:close()
      end, "")
    end)

    it("refuses a checkpoint whose shared file is missing, naming it, and "
      .. "restores the one before", function()
      spoil_newest("missing", function(path) assert(os.remove(path)) end,
        "o such file")
    end)
  end)
end)
