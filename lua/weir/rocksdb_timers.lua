--- The timers of the RocksDB backend's state (weir.rocksdb_state), in
-- memory up to a bound and in RocksDB past it, as Flink's RocksDB timer
-- service keeps them: a column family of the operator's own ("timers:"
-- .. uid) orders them by time, so that neither the timers nor their keys
-- need memory beyond the earliest ones. A timer also lives in its key's
-- entry (entry[field] is a set of times, as on the heap), and the entry is
-- the truth: it is part of the key's value, of savepoints in the
-- canonical format and of the rescaling that reads entries, and a queued
-- timer its entry no longer holds (deleted) does not fire.
--
-- The front, in memory, is a binary heap (weir.timers') of (time, key):
-- every timer before its bound (a time, and for that time a RocksDB key),
-- or every timer at all (`all`), up to FRONT_MAX of them; past that it
-- keeps about the earliest FRONT_KEEP and stores the others (trim).
-- Timers past the bound are stored only, and read (LOAD_TIMERS at a time,
-- in key order, moved: deleted from RocksDB as they join the front) when
-- the front runs out. So a job whose timers fit in the front never writes
-- them; one whose timers do not keeps the earliest in memory.
--
-- A stored timer's RocksDB key is the subtask's first key group (2
-- bytes), the queue's field ("e" event time, "p" processing time), the
-- time as 8 bytes whose byte order is the numeric order, and its entry's
-- RocksDB key; the value is the string.buffer encoding of the key.
-- Writes go in batches, all of them in the synchronous part of a
-- checkpoint, whose RocksDB checkpoint then holds the stored timers at the
-- barrier; the state file lists the front (timer_keys). A restore that
-- takes those files as they are takes the front back as listed.
local bit = require "bit"
local buffer = require "string.buffer"
local ffi = require "ffi"
local new_table = require "table.new"
local State = require "weir.state"
local Timers = require "weir.timers"

local M = {}
local Queue = {}
Queue.__index = Queue
local methods = {}

-- Timers read per scan when the front runs out.
local LOAD_TIMERS = 4096
-- The front's most timers, and about how many a trim keeps (16 bytes
-- each, with the keys the entries hold too).
local FRONT_MAX, FRONT_KEEP = 4194304, 1048576
-- Writes to the column family per batch.
local WRITE_TIMERS = 4096
-- Times a trim samples to choose the bound.
local TRIM_SAMPLES = 4096
-- The most timers a key may have for its due ones to fire together.
local GROUP_SCAN = 64

local heap_push, heap_pop = Timers.heap_push, Timers.heap_pop

local bits = ffi.new("union { double d; uint64_t u; }")
local be = ffi.new("uint8_t[8]")
local SIGN = 0x8000000000000000ULL

-- Fills `be` with the 8 bytes whose byte order is the numeric order of
-- time t (a number, not NaN): the IEEE 754 bits big-endian, the sign bit
-- flipped for t >= 0 and every bit for t < 0 (-0 counts as 0).
local function fill_time(t)
  bits.d = t + 0
  local x = bits.u
  if bit.band(x, SIGN) ~= 0ULL then
    x = bit.bnot(x)
  else
    x = bit.bxor(x, SIGN)
  end
  for i = 7, 0, -1 do
    be[i] = tonumber(bit.band(x, 0xff))
    x = bit.rshift(x, 8)
  end
end

--- The 8 bytes whose byte order is the numeric order of time t (ms, a
-- number, not NaN).
function M.time_bytes(t)
  fill_time(t)
  return ffi.string(be, 8)
end

--- The time (ms) that the 8 bytes of s from byte at + 1 on stand for (see
-- time_bytes); s holds them (the caller checks its length).
function M.time_at(s, at)
  local p = ffi.cast("const uint8_t*", s)
  local x = 0ULL
  for i = at, at + 7 do x = bit.bor(bit.lshift(x, 8), p[i]) end
  if bit.band(x, SIGN) ~= 0ULL then
    x = bit.bxor(x, SIGN)
  else
    x = bit.bnot(x)
  end
  bits.u = x
  return bits.d
end
local time_at = M.time_at

local decode = State.decode

local function is_key(k)
  local tk = type(k)
  return tk == "number" or tk == "string" or tk == "table"
    or tk == "boolean"
end

--- Creates the timer queue of state (a weir.rocksdb_state) over its
-- entries' field ("timers" or "ptimers"), registered in its timer_queues.
-- Its methods are weir.timers': add, delete, peek, advance, rebuild (a
-- no-op), plus any(), write() and clear().
function M.new(state, field)
  local kg = state.first
  local prefix = string.char(math.floor(kg / 256), kg % 256)
    .. (field == "timers" and "e" or "p")
  local q = setmetatable({ state = state, field = field, prefix = prefix,
    prefix_end = prefix:sub(1, 2) .. (field == "timers" and "f" or "q"),
    ts = {}, es = {}, n = 0, bt = nil, bk = nil,
    all = true,  -- a new state's column family holds none
    ops = {}, front_max = FRONT_MAX, front_keep = FRONT_KEEP,
    early = {}, n_early = 0 }, Queue)
  table.insert(state.timer_queues, q)
  return q
end

local key_buf = buffer.new()

-- The RocksDB key of a timer at t of the entry whose RocksDB key is dbk.
function Queue:key_at(t, dbk)
  fill_time(t)
  return key_buf:reset():put(self.prefix):putcdata(be, 8):put(dbk)
    :tostring()
end

-- The RocksDB key of entry e's timer at t.
function Queue:key_of(e, t)
  return self:key_at(t, self.state:db_key_of(e))
end

-- The stored value of a timer for key k: k's string.buffer encoding (its
-- time is in its RocksDB key).
local function value_of(k)
  return buffer.encode(k)
end

-- Raises naming the operator: RocksDB failed (err) doing what.
function Queue:failed(what, err)
  error(string.format("%s: cannot %s its timers in RocksDB: %s",
    self.state.where, what, tostring(err)), 0)
end

--- Writes the queue's pending changes to its column family. Raises
-- naming the operator when RocksDB cannot.
function Queue:write()
  local ops = self.ops
  if #ops == 0 then return end
  local ok, err = self.state.db:write(ops)
  if not ok then self:failed("store", err) end
  self.ops = {}
end

-- Adds a write of timer tk (value v, or false: a delete) to the pending
-- ones, written once they are a batch.
function Queue:stage(tk, v)
  local ops = self.ops
  local n = #ops
  ops[n + 1], ops[n + 2], ops[n + 3] = self.state.tcf, tk, v
  if n + 3 >= 3 * WRITE_TIMERS then self:write() end
end

-- Whether entry e's timer at t is the front's (before the bound).
function Queue:in_front(e, t)
  if self.all then return true end
  local bt = self.bt
  if bt == nil or t > bt then return false end
  if t < bt then return true end
  return self.bk ~= nil and self.state:db_key_of(e) <= self.bk
end

--- Registers a timer at time t (ms) for entry e; a second timer for the
-- same key and time is ignored. Raises naming the operator when RocksDB
-- cannot store it.
function Queue:add(e, t)
  local field = self.field
  local set = e[field]
  if not set then
    set = {}
    e[field] = set
  end
  if set[t] then return end
  set[t] = true
  if self.n_early > 0 then self:refire(e.key, t) end
  if self:in_front(e, t) then
    heap_push(self, t, e.key)
    if self.n > self.front_max then self:trim() end
  else
    self:stage(self:key_of(e, t), value_of(e.key))
  end
end

-- A timer at t of key k is registered again: its queued copies are no
-- longer skipped when its key fired one at or after t early (see
-- fired_early), they are checked against the entry again.
function Queue:refire(k, t)
  local c = self.state.canon_of(k)
  local last = self.early[c]
  if last ~= nil and t <= last then
    self.early[c] = nil
    self.n_early = self.n_early - 1
  end
end

--- Removes entry e's timer at time t, if any (one in the front stays
-- queued, and is skipped when due).
function Queue:delete(e, t)
  local set = e[self.field]
  if not (set and set[t]) then return end
  set[t] = nil
  if not self:in_front(e, t) then self:stage(self:key_of(e, t), false) end
end

-- Stores the front's later timers, keeping about the earliest front_keep
-- (the bound moves back to a time sampled from the front): the stored
-- ones are read again when the front runs out. Deleted timers may be
-- stored too (their entries are not looked up here); they are skipped
-- when due.
function Queue:trim()
  local ts, es, n = self.ts, self.es, self.n
  local sample, step = {}, math.max(1, n / TRIM_SAMPLES)
  for i = 1, n, step do sample[#sample + 1] = ts[math.floor(i)] end
  table.sort(sample)
  local cut = sample[math.max(1, math.floor(#sample * self.front_keep / n))]
  self.ts, self.es, self.n = {}, {}, 0
  local state = self.state
  for i = 1, n do
    local t, k = ts[i], es[i]
    if t < cut then
      heap_push(self, t, k)
    else
      self:stage(self:key_at(t, state:db_key_for(k)), value_of(k))
    end
  end
  self.bt, self.bk, self.all = cut, nil, false
end

-- Moves the next stored timers after the bound into the front.
function Queue:load()
  self:write()
  local state = self.state
  local from = self.prefix
  if self.bt then
    from = self:key_at(self.bt, self.bk and self.bk .. "\0" or "")
  end
  local kvs = state.db:scan(state.tcf, from, self.prefix_end, LOAD_TIMERS)
  if not kvs then self:failed("read", "scan failed") end
  local at = #self.prefix
  for i = 1, #kvs, 2 do
    local tk = kvs[i]
    local t = #tk > at + 8 and time_at(tk, at)
    local ok, k = decode(kvs[i + 1])
    if not t or t ~= t or not ok or not is_key(k) then
      error(string.format("%s: a timer in its RocksDB state cannot be "
        .. "decoded (%s)", state.where, ok and "not a timer"
        or tostring(k)), 0)
    end
    heap_push(self, t, k)
    if i == #kvs - 1 then self.bt, self.bk = t, tk:sub(at + 9) end
  end
  if #kvs > 0 then
    -- Moved: one range tombstone deletes what was read.
    local ok, err = state.db:delete_range(state.tcf, from,
      kvs[#kvs - 1] .. "\0")
    if not ok then self:failed("delete", err) end
  end
  if #kvs < 2 * LOAD_TIMERS then self.all = true end
end

-- The earliest pending timer, left queued: its time (ms) and its key's
-- entry (looked up, cached), or nil. Raises naming the operator when a
-- stored timer cannot be read.
function Queue:first()
  local state, field, ts, es = self.state, self.field, self.ts, self.es
  while true do
    while self.n > 0 do
      local t, k = ts[1], es[1]
      if self.n_early > 0 and self:fired_early(t, k) then
        heap_pop(self)
      else
        local e = state:entry(k, true)
        local set = e[field]
        if set and set[t] then return t, e end
        heap_pop(self)  -- deleted
      end
    end
    if self.all then return nil end
    self:load()
  end
end

-- Whether the queued timer at t of key k is one its key fired already,
-- with the others due with it (see advance); forgets the key once its
-- last one comes up.
function Queue:fired_early(t, k)
  local early = self.early
  local c = self.state.canon_of(k)
  local last = early[c]
  if last == nil or t > last then return false end
  if t == last then
    early[c] = nil
    self.n_early = self.n_early - 1
  end
  return true
end

--- Returns the earliest pending time (ms), or nil. Raises naming the
-- operator when a stored timer cannot be read.
function Queue:peek()
  local t = self:first()
  return t
end

--- Whether a timer may be pending (a stored one not yet read counts).
function Queue:any()
  return self.n > 0 or not self.all
end

-- The times (ms) at or before w in timer set `set`, in order, or nil
-- when there are none or the set has more than GROUP_SCAN timers (a key
-- with that many fires them one at a time, as they come up).
local function due_times(set, w)
  local due, n = nil, 0
  for t in pairs(set) do
    n = n + 1
    if n > GROUP_SCAN then return nil end
    if t <= w then
      due = due or {}
      due[#due + 1] = t
    end
  end
  if due then table.sort(due) end
  return due
end

--- Fires every timer at or before time w (ms): fire(entry, t) for each,
-- with the key's entry looked up (and marked changed). A key's timers
-- fire in time order, all that are due at once: when its earliest comes
-- up, the others due follow it, so a key is read from RocksDB once
-- however many of its timers a watermark passes (the end of input passes
-- them all); across keys the order is that of their earliest due timer.
-- Timers registered while firing are fired too when they are due.
function Queue:advance(w, fire)
  local field, state = self.field, self.state
  while true do
    local t, e = self:first()
    if t == nil or t > w then return end
    heap_pop(self)
    e.used = true  -- as get() marks it
    state:mark(e)
    e[field][t] = nil
    fire(e, t)
    local set = e[field]
    local due = set and next(set) ~= nil and due_times(set, w)
    if due then self:fire_due(e, due, w, fire) end
  end
end

-- Fires entry e's timers at the times of list `due` (ms, in order, all at
-- or before w), then any due that these registered, and remembers the
-- last time fired: the queued copies up to it are skipped (fired_early).
function Queue:fire_due(e, due, w, fire)
  local field, last = self.field, nil
  while due do
    for i = 1, #due do
      local t = due[i]
      local set = e[field]
      if set and set[t] then
        set[t] = nil
        if last == nil or t > last then last = t end
        fire(e, t)
      end
    end
    local set = e[field]
    due = set and next(set) ~= nil and due_times(set, w)
  end
  if last == nil then return end
  local c = self.state.canon_of(e.key)
  local early = self.early
  if early[c] == nil then self.n_early = self.n_early + 1 end
  if early[c] == nil or last > early[c] then early[c] = last end
end

--- Nothing to rebuild: a restore refills the queue (the state stores a
-- restored entry's timers, or queue_timer_keys takes the listed front).
function Queue:rebuild() end

--- Forgets the front and the pending writes (the stored timers stay,
-- read again when due): for a state whose database or column family was
-- replaced or refilled.
function Queue:clear()
  self.ts, self.es, self.n = {}, {}, 0
  self.bt, self.bk, self.all, self.ops = nil, nil, false, {}
  self.early, self.n_early = {}, 0
end

-- The front for a checkpoint's state file, in the synchronous part (the
-- pending writes are written first): { ts = { time, ... }, keys = { key,
-- ... }, bt, bk, all } (a copy of the heap: deleted timers may be
-- listed).
function Queue:front()
  self:write()
  local n, ts, es = self.n, self.ts, self.es
  local out = { ts = new_table(n, 0), keys = new_table(n, 0),
    bt = self.bt, bk = self.bk, all = self.all }
  local ots, okeys = out.ts, out.keys
  for i = 1, n do ots[i], okeys[i] = ts[i], es[i] end
  return out
end

-- Adds the writes of entry e's timers (restored, not stored yet) to ops
-- (a db:write list), in every timer queue of the state.
function methods.put_timers(self, ops, e)
  for _, q in ipairs(self.timer_queues) do
    local set = e[q.field]
    if set then
      for t in pairs(set) do
        local n = #ops
        ops[n + 1], ops[n + 2], ops[n + 3] = self.tcf, q:key_of(e, t),
          value_of(e.key)
      end
    end
  end
end

--- The timer queue over field for an operator of this state (see M.new).
function methods.new_timer_queue(self, field)
  return M.new(self, field)
end

--- What a checkpoint's state file lists of the operator's timers, in the
-- synchronous part: { in_db = true (the stored ones are in the RocksDB
-- checkpoint's column family), front = { [field] = its queue's front
-- (Queue:front) } }, O(the fronts); the pending writes are written.
function methods.timer_keys(self)
  local front = {}
  for _, q in ipairs(self.timer_queues) do front[q.field] = q:front() end
  return { in_db = true, front = front }
end

-- Takes back the front of queue q a checkpoint's state file lists (see
-- Queue:front; all: whether it held every timer, when it does not say),
-- or raises.
function methods.take_front(self, q, saved, all)
  local ts, keys = type(saved) == "table" and saved.ts,
    type(saved) == "table" and saved.keys
  if type(ts) ~= "table" or type(keys) ~= "table" or #ts ~= #keys
      or (saved.bt ~= nil and type(saved.bt) ~= "number")
      or (saved.bk ~= nil and type(saved.bk) ~= "string") then
    self:bad_timer_keys("a queue that is not one")
  end
  for i = 1, #ts do
    local t, k = ts[i], keys[i]
    if type(t) ~= "number" or t ~= t or not is_key(k) then
      self:bad_timer_keys("something that is not a timer")
    end
    heap_push(q, t, k)
  end
  q.bt, q.bk = saved.bt, saved.bk
  if saved.all ~= nil then all = saved.all == true end
  q.all = all
end

-- Raises naming the operator: the checkpoint's timers are not what
-- timer_keys makes.
function methods.bad_timer_keys(self, what)
  error(string.format("%s: the checkpoint's list of timers holds %s",
    self.where, what), 0)
end

--- Readies the timer queues after a restore took a checkpoint's database
-- as it is: list is what the checkpoint's state file lists (timer_keys):
-- the fronts, taken back as they were (the stored timers are in the
-- database). From checkpoints of older formats: { queues = { [field] =
-- { ts, keys } } } (every timer), or a list of the RocksDB keys of the
-- keys with timers, whose entries' timers are stored here (a listed key
-- that is not stored holds none). Raises naming the operator when list
-- is none of these, or a value is undecodable or unreadable.
function methods.queue_timer_keys(self, list)
  if type(list) ~= "table" then self:bad_timer_keys("no list") end
  for _, q in ipairs(self.timer_queues) do q:clear() end
  local fronts, all = list.front, false
  if list.queues ~= nil then fronts, all = list.queues, true end
  if fronts ~= nil or list.in_db then
    if type(fronts) ~= "table" then self:bad_timer_keys("no queues") end
    for _, q in ipairs(self.timer_queues) do
      if fronts[q.field] ~= nil then
        self:take_front(q, fronts[q.field], all)
      end
    end
    return
  end
  local ops = {}
  for _, k in ipairs(list) do
    if type(k) ~= "string" or #k < 3 then
      self:bad_timer_keys("something that is not a key")
    end
    local v, err = self.db:get(self.cf, k)
    if err then
      error(string.format("%s: cannot read a key with timers from the "
        .. "restored RocksDB state: %s", self.where, tostring(err)), 0)
    end
    if v then
      local e = self:decode_entry(k:byte(1) * 256 + k:byte(2), v)
      e.db_key = k
      self:put_timers(ops, e)
      ops = self:write_full(ops)
    end
  end
  self:write(ops)
end

--- Adds these methods to the RocksDB state's metatable RState:
-- new_timer_queue(field), put_timers(ops, e), timer_keys(),
-- queue_timer_keys(list) (see each).
function M.install(RState)
  for name, fn in pairs(methods) do RState[name] = fn end
end

return M
