-- See scripts/bench-timers.
local state_backend = require "weir.state_backend"
local Timers = require "weir.timers"

local N = tonumber(arg[1]) or 2000000
local KEYS = tonumber(arg[2]) or 100000

-- Adds N timers (key i % KEYS at the end of round i / KEYS + 5, in ms)
-- through add(i, k, t), firing up to each round's start with advance(w);
-- then fires the rest. Returns the CPU seconds it took.
local function drive(add, advance)
  local t0 = os.clock()
  local w = 0
  for i = 1, N do
    local k = i % KEYS
    add(k, (math.floor(i / KEYS) + 5) * 1000)
    if k == 0 then
      w = w + 1000
      advance(w)
    end
  end
  advance(math.huge)
  return os.clock() - t0
end

local fired = 0
local function fire() fired = fired + 1 end

-- The heap backend's queue over plain entries.
local function heap()
  local q, entries = Timers.new("timers"), {}
  return drive(function(k, t)
    local e = entries[k]
    if not e then
      e = { key = k }
      entries[k] = e
    end
    q:add(e, t)
  end, function(w) q:advance(w, fire) end)
end

-- The RocksDB backend's queue (a cache that holds every key), its front
-- at most front_max timers (nil: the default).
local function rocksdb(front_max)
  local backend = state_backend.open({ state_backend = "rocksdb",
    state_cache_mb = 64 })
  local env = { max_parallelism = 128, subtask = 0, parallelism = 1,
    task_id = 1 }
  local state = backend:new_state({ uid = "bench", kind = "process",
    defined_at = "scripts/bench/timers.lua" }, env,
    function() return {} end)
  local q = state:new_timer_queue("timers")
  if front_max then q.front_max, q.front_keep = front_max, front_max / 4 end
  local s = drive(function(k, t) q:add(state.get(k), t) end,
    function(w) q:advance(w, fire) end)
  backend:close()
  return s
end

local base = heap()
local front = rocksdb(nil)
local stored = rocksdb(65536)
assert(fired == 3 * N, "every timer fired once per run")
print(string.format("%d timers over %d keys, %d pending at most",
  N, KEYS, 5 * KEYS))
print(string.format("| queue | CPU s | vs heap |\n| --- | ---: | ---: |"))
print(string.format("| heap backend (weir.timers) | %.2f | 1.00x |", base))
print(string.format("| rocksdb, all in memory | %.2f | %.2fx |", front,
  front / base))
print(string.format("| rocksdb, front of 65,536: most stored | %.2f | "
  .. "%.2fx |", stored, stored / base))
