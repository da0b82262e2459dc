--- Keyed state of one operator's subtask on the RocksDB state backend
-- (weir.state_backend): every key's entry lives in the operator's column
-- family of the process's RocksDB database, keyed by the key group (2
-- bytes, big-endian) and the key's canonical encoding (weir.key), so that
-- a key-group range is one contiguous range of keys (Flink's layout). The
-- value is the string.buffer encoding of { key, state, event timers,
-- processing timers, last write time (wall-clock ms, with a ttl) }.
--
-- `entries` is a bounded cache of decoded entries, the same shape as
-- weir.state's, so operators read and change `e.state` as plain Lua
-- tables. A cached entry is written back when it is evicted and at every
-- snapshot. Entries with timers leave the cache as others do: the timer
-- queues hold (time, key), the earliest in memory and the others in a
-- column family of their own (weir.rocksdb_timers), and a due timer looks
-- its key's entry up again. Eviction is Corbató's CLOCK: an entry looked
-- up through get() since the last sweep gets a second chance.
--
-- Snapshots are full and in weir.state's format ({ [key_group] = bytes }),
-- so a checkpoint or savepoint of either backend restores on the other, at
-- any parallelism.
local buffer = require "string.buffer"
local clear = require "table.clear"
local errors = require "weir.errors"
local key = require "weir.key"
local State = require "weir.state"
local rocksdb_timers = require "weir.rocksdb_timers"

local M = {}
local RState = {}
RState.__index = RState
rocksdb_timers.install(RState)

-- Keys scanned per call into RocksDB, and per write batch.
local SCAN_KEYS = 4096
-- Bytes a cached entry costs beyond what weir.state's memory_bytes counts
-- of it (the cache's slots: entries, groups, the changed list), and the
-- estimate before any entry was sampled (together 480: measured with
-- LuaJIT's collectgarbage("count") for a count-and-last-value state), for
-- turning state_cache_mb into keys.
local SLOT_BYTES, ENTRY_BYTES = 80, 400
-- Keys a cache holds at least, whatever its budget.
local MIN_CACHE_KEYS = 64
-- Entries cached between two samples of an entry's size, and entries
-- written back between two.
local SAMPLE_KEYS, SAMPLE_WRITES = 1024, 64

--- The first RocksDB key of key group kg: its 2 bytes, big-endian.
function M.group_prefix(kg)
  return string.char(math.floor(kg / 256), kg % 256)
end
local group_prefix = M.group_prefix

--- The RocksDB key of key k in key group kg: 2 bytes big-endian, then the
-- canonical encoding. Returns nil and why when k is not a valid key.
function M.db_key(kg, k)
  local enc, why = key.encode(k)
  if not enc then return nil, why end
  return group_prefix(kg) .. enc
end

local decode = State.decode

--- Decodes a stored value (bytes) into its table { key, state, timers,
-- ptimers, written }.
-- @return the table | nil, why it is not one
function M.decode_value(bytes)
  local ok, t = decode(bytes)
  if not ok then return nil, tostring(t) end
  if type(t) ~= "table" or t[1] == nil then return nil, "not an entry" end
  return t
end

-- The entry of key group kg that a decoded value t holds.
local function entry_of_value(kg, t)
  return { key = t[1], kg = kg, state = t[2], timers = t[3],
    ptimers = t[4], written = t[5] }
end

--- Creates the state of an operator's subtask.
-- @param db the process's database (core.rocksdb_open)
-- @param cf its column family for this operator (db:column_family)
-- @param tcf the column family of the operator's timers
-- @param max_parallelism number of key groups
-- @param init function() -> initial state of a new key (may be nil)
-- @param first, last the key groups of the subtask (others may share
--   the column family: other subtasks of the operator in this process)
-- @param cache_bytes function() -> the cache's budget in bytes
-- @param where names the operator in messages
function M.new(db, cf, tcf, max_parallelism, init, first, last,
    cache_bytes, where)
  local self = setmetatable({ db = db, cf = cf, tcf = tcf,
    max_parallelism = max_parallelism, init = init, entries = {},
    groups = {}, count = 0, first = first, last = last,
    cache_bytes = cache_bytes, where = where, entry_bytes = ENTRY_BYTES,
    sampled = 0, cached = 0,
    written = 0, buf = buffer.new(), dirty = {}, timer_queues = {} },
    RState)
  self.cache_keys = self:keys_for_budget()
  local entries = self.entries
  --- get(k): the entry of k, marked as used (see the module's comment).
  local dirty = self.dirty
  function self.get(k)
    local e = entries[k]
    if e then
      e.used = true
      if not e.dirty then
        e.dirty = true
        dirty[#dirty + 1] = e
      end
      return e
    end
    return self:entry(k)
  end
  return self
end

-- The number of keys the cache may hold, from its budget and the mean
-- size in memory of the entries sampled so far.
function RState:keys_for_budget()
  return math.max(MIN_CACHE_KEYS, math.floor(self.cache_bytes()
    / (self.entry_bytes + SLOT_BYTES)))
end

-- The cache key of k (weir.state's): the value itself for a scalar, "\0"
-- and the canonical encoding for a composite key. Raises on a bad key.
local function canon_of(k)
  if type(k) ~= "table" then return k end
  local enc, why = key.encode(k)
  if not enc then errors.raise_invalid_key(k, why) end
  return "\0" .. enc
end

--- canon_of(k): the cache key of k (for the timer queues).
RState.canon_of = canon_of

-- Whether entry e has timers (a key with timers is never empty).
local function has_timers(e)
  return (e.timers ~= nil and next(e.timers) ~= nil)
    or (e.ptimers ~= nil and next(e.ptimers) ~= nil)
end

local function is_empty(e)
  local s = e.state
  return (s == nil or type(s) == "table" and next(s) == nil)
    and not has_timers(e)
end

--- The RocksDB key of entry e ({ key, kg (computed when absent) }), kept
-- in e.db_key: an entry is written back again and again.
function RState:db_key_of(e)
  local dbk = e.db_key
  if dbk then return dbk end
  dbk = e.kg and assert(M.db_key(e.kg, e.key)) or self:db_key_for(e.key)
  e.db_key = dbk
  return dbk
end

--- The RocksDB key of key k (a valid key: a timer's).
function RState:db_key_for(k)
  return assert(M.db_key(assert(key.key_group(k, self.max_parallelism)), k))
end

-- Adds the write of entry e to ops (a db:write list): its value, or a
-- delete when it holds nothing. Raises naming the key and the path when
-- its state cannot be serialized.
function RState:put_entry(ops, e)
  local n = #ops
  ops[n + 1], ops[n + 2] = self.cf, self:db_key_of(e)
  if is_empty(e) then
    ops[n + 3] = false
    return
  end
  local buf = self.buf
  buf:reset()
  local ok = pcall(buf.encode, buf, { e.key, e.state, e.timers, e.ptimers,
    e.written })
  if not ok then
    local path, t = State.find_unserializable(e.state, "state")
    errors.raise_unserializable(e.key, path or "state", t or "unknown")
  end
  ops[n + 3] = buf:get()
  self.written = self.written + 1
  if self.written % SAMPLE_WRITES == 0 then self:count_entry(e) end
end

-- Adds entry e's size in memory (weir.state's memory_bytes: its decoded
-- state, its timers and what operators keep beside them, such as a
-- window index) to the running mean the cache's key budget divides by.
function RState:count_entry(e)
  local n = self.sampled + 1
  self.sampled = n
  self.entry_bytes = self.entry_bytes
    + (State.memory_bytes(e) - self.entry_bytes) / math.min(n, 1000)
end

-- Every SAMPLE_KEYS entries cached, the size of one changed entry (a
-- changing one of them: entries grow after they are cached) counts too:
-- the budget is right before anything was written back (the first
-- eviction comes only once the cache holds its budget's keys).
function RState:sample_value()
  local dirty = self.dirty
  if #dirty == 0 then return end
  self:count_entry(dirty[(self.cached * 2654435761) % #dirty + 1])
  self.cache_keys = self:keys_for_budget()
end

-- Writes ops (a db:write list) once it holds a batch's worth; returns
-- the list to go on filling.
function RState:write_full(ops)
  if #ops < 3 * SCAN_KEYS then return ops end
  self:write(ops)
  return {}
end

function RState:write(ops)
  if #ops == 0 then return end
  local ok, err = self.db:write(ops)
  if not ok then
    error(string.format("%s: cannot write its state to RocksDB: %s",
      self.where, tostring(err)), 0)
  end
end

-- Forgets cached entry e (canonical cache key canon).
function RState:uncache(canon, e)
  self.entries[canon] = nil
  local g = self.groups[e.kg]
  -- An emptied group's table stays: asking next(g) whether it is empty
  -- walks its dead slots from the start, per entry uncached.
  g[canon] = nil
  self.count = self.count - 1
end

-- Evicts about an eighth of the cache: entries not used since the last
-- sweep (those lose their mark), written back first.
function RState:evict()
  local want = math.max(1, math.floor(self.cache_keys / 8))
  local ops, victims = {}, {}
  for canon, e in pairs(self.entries) do
    if #victims >= want then break end
    if e.used then
      e.used = nil
    else
      victims[#victims + 1] = canon
      if e.dirty or not self.tracked then self:put_entry(ops, e) end
      e.dirty = nil
    end
  end
  self:write(ops)
  for _, canon in ipairs(victims) do
    self:uncache(canon, self.entries[canon])
  end
  self.cache_keys = self:keys_for_budget()
  -- Without checkpoints nothing flushes: the list of changed entries
  -- drops those written back here once it outgrows the cache by a
  -- quarter (it holds them alive: up to a quarter of the cache beyond
  -- its budget; each entry is walked about five times per eviction).
  local dirty = self.dirty
  if #dirty > self.cache_keys + self.cache_keys / 4 then
    local n = 0
    for i = 1, #dirty do
      local e = dirty[i]
      dirty[i] = nil
      if e.dirty then
        n = n + 1
        dirty[n] = e
      end
    end
  end
end

-- Caches entry e under canon.
function RState:cache(canon, e)
  self.entries[canon] = e
  self.count = self.count + 1
  self.cached = self.cached + 1
  if self.cached % SAMPLE_KEYS == 0 then self:sample_value() end
  local g = self.groups[e.kg]
  if not g then
    g = {}
    self.groups[e.kg] = g
  end
  g[canon] = e
end

-- The entry decoded from a stored value v, or raises naming the key.
function RState:decode_entry(kg, v)
  local t, why = M.decode_value(v)
  if not t then
    error(string.format("%s: a value in its RocksDB state cannot be "
      .. "decoded (%s)", self.where, why), 0)
  end
  return entry_of_value(kg, t)
end

--- Returns the entry of key k, from the cache, else from RocksDB, else
-- new (state from init); raises a user error when k is not a valid key.
-- An entry read or made here is marked changed unless quiet (it is then
-- only marked used: a timer queue's look at it). `entries[k]` is the
-- caller's fast path for cached scalar keys.
function RState:entry(k, quiet)
  local canon = canon_of(k)
  local e = self.entries[canon]
  if e then return e end
  local kg, why = key.key_group(k, self.max_parallelism)
  if not kg then errors.raise_invalid_key(k, why) end
  if self.count >= self.cache_keys then self:evict() end
  local v, err = self.db:get(self.cf, assert(M.db_key(kg, k)))
  if v then
    e = self:decode_entry(kg, v)
  elseif err then
    error(string.format("%s: cannot read its state from RocksDB: %s",
      self.where, tostring(err)), 0)
  else
    if type(k) == "table" then
      local copy = {}
      for i = 1, #k do copy[i] = k[i] end
      k = copy
    end
    e = { key = k, kg = kg, state = self.init and self.init() }
  end
  self:cache(canon, e)
  if quiet then e.used = true else self:mark(e) end
  return e
end

--- Marks cached entry e as changed: the next flush writes it back (for
-- code that changes an entry it did not get through get(): timers).
function RState:mark(e)
  if not e.dirty then
    e.dirty = true
    self.dirty[#self.dirty + 1] = e
  end
end

-- The entries a flush writes back: those marked since the last one (a
-- list, so the sync part of a checkpoint costs what changed, not what is
-- cached), or every cached one for an operator that never calls get()
-- (the windows).
function RState:changed()
  if self.tracked then return self.dirty end
  local all = {}
  for _, e in pairs(self.entries) do all[#all + 1] = e end
  return all
end

--- Writes the cached entries that may have changed since the last flush
-- back to RocksDB (they stay cached).
function RState:flush()
  local ops = {}
  for _, e in ipairs(self:changed()) do
    if e.dirty or not self.tracked then
      self:put_entry(ops, e)
      e.dirty = nil
      ops = self:write_full(ops)
    end
  end
  self:write(ops)
  clear(self.dirty)  -- in place: get() holds the list
end

--- Forgets the cached keys changed since the last flush that hold
-- nothing (weir.state's compact; a key empties only by a change), and
-- deletes them from RocksDB.
function RState:compact()
  for _, e in ipairs(self:changed()) do
    local canon = canon_of(e.key)
    if is_empty(e) and self.entries[canon] == e then
      self.db:delete(self.cf, assert(M.db_key(e.kg, e.key)))
      self:uncache(canon, e)
      e.dirty = nil
    end
  end
end

--- As weir.state's: here the whole cache (it is bounded).
function RState:compact_some()
  self:compact()
end

-- Calls fn(kg, e) for every stored entry of the subtask in key order (key
-- groups ascending), after writing the cache back; a cached entry is
-- passed as the cached table itself.
function RState:scan(fn)
  self:flush()
  local from, to = group_prefix(self.first), group_prefix(self.last + 1)
  while true do
    local kvs = self.db:scan(self.cf, from, to, SCAN_KEYS)
    if not kvs then
      error(self.where .. ": cannot read its state from RocksDB", 0)
    end
    for i = 1, #kvs, 2 do
      local k, v = kvs[i], kvs[i + 1]
      local kg = k:byte(1) * 256 + k:byte(2)
      local e = self:decode_entry(kg, v)
      fn(kg, self.entries[canon_of(e.key)] or e)
    end
    if #kvs < 2 * SCAN_KEYS then return end
    from = kvs[#kvs - 1] .. "\0"
  end
end

--- Calls fn(entry) for every key, key groups in ascending order.
function RState:each(fn)
  self:scan(function(_, e) fn(e) end)
end

-- Whether an entry written at `written` (wall-clock ms, or nil: not yet
-- seen by a sweep) expired at now.
local function expired(written, now, ttl_ms)
  return written ~= nil and now - written >= ttl_ms
end

--- Drops the state of every key of the next n key groups of the subtask
-- (in turn) not written for ttl_ms or more at now (wall-clock ms), cached
-- or stored: its state is forgotten, and the key with it unless it has
-- timers. A key met by a sweep without a write time (restored from a
-- snapshot that keeps none) counts as written then.
-- @return the number of keys whose state was dropped
function RState:expire_some(now, ttl_ms, n)
  local dropped, ops = 0, {}
  local span = self.last - self.first + 1
  for _ = 1, math.min(n, span) do
    local kg = self.expire_next or self.first
    self.expire_next = kg < self.last and kg + 1 or self.first
    local g = self.groups[kg]
    for _, e in pairs(g or {}) do
      if not e.written then
        e.written, e.dirty = now, true
      elseif expired(e.written, now, ttl_ms) then
        e.state, e.written, e.dirty = self.init and self.init(), nil, true
        dropped = dropped + 1
      end
    end
    local from, to = group_prefix(kg), group_prefix(kg + 1)
    while true do
      local kvs = self.db:scan(self.cf, from, to, SCAN_KEYS)
      if not kvs then break end
      for i = 1, #kvs, 2 do
        local e = self:decode_entry(kg, kvs[i + 1])
        if not self.entries[canon_of(e.key)] then
          if not e.written then
            e.written = now
            self:put_entry(ops, e)
          elseif expired(e.written, now, ttl_ms) then
            e.state, e.written = self.init and self.init(), nil
            self:put_entry(ops, e)
            dropped = dropped + 1
          end
        end
      end
      if #kvs < 2 * SCAN_KEYS then break end
      from = kvs[#kvs - 1] .. "\0"
    end
  end
  self:write(ops)
  self:compact()
  return dropped
end

--- Serializes the state in weir.state's format: { [key_group] = bytes },
-- each a string.buffer encoding of { key1, state1, event_timers1,
-- processing_timers1, key2, ..., n = count, written = { [j] = ms } } (see
-- weir.state's snapshot). Raises a user error naming
-- the key and the path of any value string.buffer cannot carry.
function RState:snapshot()
  self:compact()
  local out, flat, n, at = {}, nil, 0, nil
  local buf = buffer.new()
  local function close_group()
    if flat then
      flat.n = n
      out[at] = buf:reset():encode(flat):get()
    end
  end
  self:scan(function(kg, e)
    if kg ~= at then
      close_group()
      flat, n, at = {}, 0, kg
    end
    flat[n + 1], flat[n + 2] = e.key, e.state
    flat[n + 3], flat[n + 4] = e.timers, e.ptimers
    n = n + 4
    if e.written then
      flat.written = flat.written or {}
      flat.written[n / 4] = e.written
    end
  end)
  close_group()
  return out
end

--- Replaces the state with a snapshot's key groups (weir.state's
-- format; see weir.state.restore for owns and files), written to RocksDB;
-- the timer queues (registered before) are rebuilt from their timers.
function RState:restore(groups, owns, files)
  for k in pairs(self.entries) do self.entries[k] = nil end
  for k in pairs(self.groups) do self.groups[k] = nil end
  self.count = 0
  for _, q in ipairs(self.timer_queues) do q:clear() end
  -- The database is the host's own, new with it: nothing to clear.
  local ops = {}
  State.each_group(groups, owns, files, self.max_parallelism,
    function(kg, flat)
      for i = 1, flat.n, 4 do
        local e = { key = flat[i], kg = kg, state = flat[i + 1],
          timers = flat[i + 2], ptimers = flat[i + 3],
          written = State.written_at(flat, i) }
        self:put_timers(ops, e)
        self:put_entry(ops, e)
      end
      ops = self:write_full(ops)
    end)
  self:write(ops)
end

--- Adds restored entries (a batch of weir.rocksdb_checkpoint.each_entry)
-- to the state, written as they were stored, their timers to the timers'
-- column family.
function RState:restore_entries(batch)
  local ops = {}
  for _, r in ipairs(batch) do
    local e = entry_of_value(r.kg, r.entry)
    e.db_key = r.db_key
    self:put_timers(ops, e)
    local n = #ops
    ops[n + 1], ops[n + 2], ops[n + 3] = self.cf, r.db_key, r.bytes
  end
  self:write(ops)
end

return M
