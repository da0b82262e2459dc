--- The timers of the RocksDB backend's state (weir.rocksdb_state), kept
-- in RocksDB as Flink's RocksDB timer service keeps them: a column family
-- of the operator's own ("timers:" .. uid) orders them by time, so that
-- neither the timers nor their keys need memory beyond the earliest few.
-- A timer still lives in its key's entry too (entry[field] is a set of
-- times, as on the heap): it is part of the key's value, of savepoints in
-- the canonical format and of the rescaling that reads entries; the column
-- family is the order they fire in.
--
-- A timer's RocksDB key is the subtask's first key group (2 bytes), the
-- queue's field ("e" event time, "p" processing time), the time as 8
-- bytes whose byte order is the numeric order, and its entry's RocksDB
-- key; the value is the string.buffer encoding of { time (ms), key }.
--
-- In memory, a front: a binary heap (weir.timers') of up to FRONT_MAX
-- timers, every timer up to its bound (a RocksDB key) among them; `all`
-- when it holds every timer. An add at or before the bound joins the
-- front only (it is stored if the front trims it); a later one is stored
-- only, and read (LOAD_TIMERS at a time, in key order) when the front
-- runs out. So a job whose timers fit in the front never writes them,
-- and one whose timers do not keeps only the earliest in memory. Stored
-- timers' changes are written in batches, and all of them in the
-- synchronous part of a checkpoint: the RocksDB checkpoint holds the
-- stored timers at the barrier, and the state file lists the others
-- (timer_keys); a restore that takes the checkpoint's files as they are
-- stores those, and rebuilds nothing.
local bit = require "bit"
local buffer = require "string.buffer"
local ffi = require "ffi"
local Timers = require "weir.timers"

local M = {}
local Queue = {}
Queue.__index = Queue
local methods = {}

-- Timers read per scan when the front runs out.
local LOAD_TIMERS = 4096
-- The front's most timers: adds at or before the bound join it, and, while
-- it holds every stored timer, any add; past this many it keeps the
-- earliest FRONT_KEEP and stores the others (trim). About 150 bytes
-- each.
local FRONT_MAX, FRONT_KEEP = 65536, 16384
-- Writes to the column family per batch.
local WRITE_TIMERS = 4096

local heap_push, heap_pop = Timers.heap_push, Timers.heap_pop

local bits = ffi.new("union { double d; uint64_t u; }")
local be = ffi.new("uint8_t[8]")
local SIGN = 0x8000000000000000ULL

--- 8 bytes whose byte order is the numeric order of time t (a number, not
-- NaN): the IEEE 754 bits big-endian, the sign bit flipped for t >= 0 and
-- every bit for t < 0 (-0 counts as 0).
function M.time_bytes(t)
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
  return ffi.string(be, 8)
end
local time_bytes = M.time_bytes

-- Decodes bytes under pcall; off trace (see weir.state's decode).
local function decode(bytes)
  return pcall(buffer.decode, bytes)
end
jit.off(decode)

local function is_key(k)
  local tk = type(k)
  return tk == "number" or tk == "string" or tk == "table"
    or tk == "boolean"
end

--- Creates the timer queue of state (a weir.rocksdb_state) over its
-- entries' field ("timers" or "ptimers"), registered in its timer_queues.
-- Its methods are weir.timers': add, delete, peek, advance, rebuild (a
-- no-op: the column family is the order), plus any() and clear().
function M.new(state, field)
  local kg = state.first
  local prefix = string.char(math.floor(kg / 256), kg % 256)
    .. (field == "timers" and "e" or "p")
  local q = setmetatable({ state = state, field = field, prefix = prefix,
    prefix_end = prefix:sub(1, 2) .. (field == "timers" and "f" or "q"),
    ts = {}, es = {}, n = 0, live = {}, unstored = {}, bound = nil,
    all = true,  -- a new state's column family holds none
    ops = {}, front_max = FRONT_MAX, front_keep = FRONT_KEEP,
    buf = buffer.new() }, Queue)
  table.insert(state.timer_queues, q)
  return q
end

-- The RocksDB key of entry e's timer at t.
function Queue:key_of(e, t)
  return self.prefix .. time_bytes(t) .. self.state:db_key_of(e)
end

-- The stored value of a timer at t for key k.
function Queue:value_of(t, k)
  local buf = self.buf
  buf:reset()
  buf:encode({ t, k })
  return buf:get()
end

-- Raises naming the operator: RocksDB failed (err) doing what.
function Queue:failed(what, err)
  error(string.format("%s: cannot %s its timers in RocksDB: %s",
    self.state.where, what, tostring(err)), 0)
end

--- Writes the queue's pending changes to its column family.
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

-- Joins timer tk (time t, key k) to the front; stored: it is in the
-- column family (else only in the front).
function Queue:push(t, tk, k, stored)
  heap_push(self, t, tk)
  self.live[tk] = k
  if not stored then self.unstored[tk] = true end
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
  local tk = self:key_of(e, t)
  local bound = self.bound
  if self.all or (bound and tk <= bound) then
    self:push(t, tk, e.key)
    if not bound or tk > bound then self.bound = tk end
    if self.n > self.front_max then self:trim() end
  else
    self:stage(tk, self:value_of(t, e.key))
  end
end

-- Keeps the earliest front_keep timers of the front (by RocksDB key), the
-- bound lowered to the last of them; the others are stored, and read
-- again when the front runs out.
function Queue:trim()
  local live, unstored, ts, es = self.live, self.unstored, self.ts, self.es
  local keep, t_of = {}, {}
  for i = 1, self.n do
    local tk = es[i]
    if live[tk] ~= nil and not t_of[tk] then
      keep[#keep + 1] = tk
      t_of[tk] = ts[i]
    end
  end
  table.sort(keep)
  self.ts, self.es, self.n, self.live, self.unstored = {}, {}, 0, {}, {}
  local n = math.min(#keep, self.front_keep)
  for i = 1, #keep do
    local tk = keep[i]
    if i <= n then
      self:push(t_of[tk], tk, live[tk], not unstored[tk])
    elseif unstored[tk] then
      self:stage(tk, self:value_of(t_of[tk], live[tk]))
    end
  end
  self.bound = keep[n]
  self.all = #keep <= n
end

-- Forgets timer tk: a delete is written when it is stored.
function Queue:forget(tk)
  self.live[tk] = nil
  if self.unstored[tk] then
    self.unstored[tk] = nil
  else
    self:stage(tk, false)
  end
end

--- Removes entry e's timer at time t, if any.
function Queue:delete(e, t)
  local set = e[self.field]
  if not (set and set[t]) then return end
  set[t] = nil
  self:forget(self:key_of(e, t))
end

-- Reads the next stored timers after the bound into the front.
function Queue:load()
  self:write()
  local state = self.state
  local from = self.bound and self.bound .. "\0" or self.prefix
  local kvs = state.db:scan(state.tcf, from, self.prefix_end, LOAD_TIMERS)
  if not kvs then self:failed("read", "scan failed") end
  for i = 1, #kvs, 2 do
    local ok, v = decode(kvs[i + 1])
    if not ok or type(v) ~= "table" or type(v[1]) ~= "number"
        or v[1] ~= v[1] or not is_key(v[2]) then
      error(string.format("%s: a timer in its RocksDB state cannot be "
        .. "decoded (%s)", state.where, ok and "not a timer"
        or tostring(v)), 0)
    end
    self:push(v[1], kvs[i], v[2], true)
  end
  if #kvs > 0 then self.bound = kvs[#kvs - 1] end
  if #kvs < 2 * LOAD_TIMERS then self.all = true end
end

--- Returns the earliest pending time (ms), or nil. Raises naming the
-- operator when a stored timer cannot be read.
function Queue:peek()
  local live, es = self.live, self.es
  while true do
    while self.n > 0 do
      if live[es[1]] ~= nil then return self.ts[1] end
      heap_pop(self)  -- deleted, or fired from another copy
    end
    if self.all then return nil end
    self:load()
  end
end

--- Whether a timer may be pending (a stored one not yet read counts).
function Queue:any()
  return self.n > 0 or not self.all
end

--- Fires, in time order, every timer at or before time w (ms):
-- fire(entry, t) for each, with the key's entry looked up (and marked
-- changed). Timers registered while firing are fired too when they are
-- due.
function Queue:advance(w, fire)
  local live, field, state = self.live, self.field, self.state
  while true do
    local t = self:peek()
    if t == nil or t > w then return end
    local _, tk = heap_pop(self)
    local k = live[tk]
    self:forget(tk)
    local e = state.get(k)
    local set = e[field]
    -- The key's entry is the truth: a stored timer it does not hold (a
    -- lost write) does not fire.
    if set and set[t] then
      set[t] = nil
      fire(e, t)
    end
  end
end

--- Nothing to rebuild: the column family orders the timers (the state
-- stores a restored entry's timers in it).
function Queue:rebuild() end

--- Forgets the front and the pending writes (the stored timers stay,
-- read again when due): for a state whose database or column family was
-- replaced or refilled.
function Queue:clear()
  self.ts, self.es, self.n, self.live, self.unstored = {}, {}, 0, {}, {}
  self.bound, self.all, self.ops = nil, false, {}
end

-- The front's timers that are not stored, live at the barrier, for a
-- checkpoint's state file: { ts = { time, ... }, tks = { RocksDB key,
-- ... }, keys = { key, ... } }; the pending writes are written first.
function Queue:unstored_timers()
  self:write()
  local live, unstored, ts, es = self.live, self.unstored, self.ts, self.es
  local out, seen = { ts = {}, tks = {}, keys = {} }, {}
  for i = 1, self.n do
    local tk = es[i]
    if unstored[tk] and live[tk] ~= nil and not seen[tk] then
      seen[tk] = true
      local n = #out.ts + 1
      out.ts[n], out.tks[n], out.keys[n] = ts[i], tk, live[tk]
    end
  end
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
          q:value_of(t, e.key)
      end
    end
  end
end

--- The timer queue over field for an operator of this state (see M.new).
function methods.new_timer_queue(self, field)
  return M.new(self, field)
end

--- What a checkpoint's state file lists of the operator's timers, in the
-- synchronous part: { in_db = true (the others are in the RocksDB
-- checkpoint's column family), front = { [field] = the timers only the
-- front holds (Queue:unstored_timers) } }, O(the front) (pending writes
-- are written first).
function methods.timer_keys(self)
  local front = {}
  for _, q in ipairs(self.timer_queues) do
    front[q.field] = q:unstored_timers()
  end
  return { in_db = true, front = front }
end

-- Adds to ops (a db:write list) the writes of the timers of queue q a
-- checkpoint's state file lists (Queue:unstored_timers), or raises.
function methods.put_listed_timers(self, ops, q, saved)
  local ts, tks, keys = type(saved) == "table" and saved.ts,
    type(saved) == "table" and saved.tks, type(saved) == "table"
    and saved.keys
  if type(ts) ~= "table" or type(tks) ~= "table" or type(keys) ~= "table"
      or #ts ~= #tks or #ts ~= #keys then
    self:bad_timer_keys("a queue that is not one")
  end
  local prefix = q.prefix
  for i = 1, #ts do
    local t, tk, k = ts[i], tks[i], keys[i]
    if type(t) ~= "number" or t ~= t or type(tk) ~= "string"
        or #tk <= #prefix + 8 or tk:sub(1, #prefix) ~= prefix
        or not is_key(k) then
      self:bad_timer_keys("something that is not a timer")
    end
    local n = #ops
    ops[n + 1], ops[n + 2], ops[n + 3] = self.tcf, tk, q:value_of(t, k)
    ops = self:write_full(ops)
  end
  return ops
end

-- Raises naming the operator: the checkpoint's timers are not what
-- timer_keys makes.
function methods.bad_timer_keys(self, what)
  error(string.format("%s: the checkpoint's list of timers holds %s",
    self.where, what), 0)
end

-- The RocksDB keys of the entries a list of timers of an older checkpoint
-- names: a list of RocksDB keys, or { queues = { [field] = { ts, keys } } }
-- (keys as the operator sees them).
function methods.old_timer_keys(self, list)
  if list.queues == nil then return list end
  if type(list.queues) ~= "table" then self:bad_timer_keys("no queues") end
  local keys, seen = {}, {}
  for _, saved in pairs(list.queues) do
    if type(saved) ~= "table" or type(saved.keys) ~= "table" then
      self:bad_timer_keys("a queue that is not one")
    end
    for _, k in ipairs(saved.keys) do
      if not is_key(k) then
        self:bad_timer_keys("something that is not a timer")
      end
      local dbk = self:db_key_of({ key = k })
      if not seen[dbk] then
        seen[dbk] = true
        keys[#keys + 1] = dbk
      end
    end
  end
  return keys
end

--- Readies the timer queues after a restore took a checkpoint's database
-- as it is: list is what the checkpoint's state file lists (timer_keys).
-- A checkpoint of this format holds its timers in the column family, but
-- for those only the front held, which are stored now; one of an older
-- format lists the RocksDB keys of its keys with timers
-- (or the timers themselves, with their keys), whose entries' timers are
-- stored here (a listed key that is not stored holds none). Raises
-- naming the operator when list is none of these, or a value is
-- undecodable or unreadable.
function methods.queue_timer_keys(self, list)
  if type(list) ~= "table" then self:bad_timer_keys("no list") end
  for _, q in ipairs(self.timer_queues) do q:clear() end
  local ops = {}
  if list.in_db then
    if type(list.front) ~= "table" then self:bad_timer_keys("no front") end
    for _, q in ipairs(self.timer_queues) do
      if list.front[q.field] ~= nil then
        ops = self:put_listed_timers(ops, q, list.front[q.field])
      end
    end
    return self:write(ops)
  end
  for _, k in ipairs(self:old_timer_keys(list)) do
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
