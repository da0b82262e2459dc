--- Keyed state: one entry per key, grouped by key group.
-- An entry is { key = original key, kg = key group, state = value,
-- timers = set of event times, ptimers = set of processing times }. Scalar
-- keys are looked up by value; composite keys by their canonical encoding.
-- Snapshots serialize each key group separately with string.buffer, so a
-- restore at another parallelism can decode only the groups it owns.
local buffer = require "string.buffer"
local key = require "weir.key"
local errors = require "weir.errors"

local M = {}
M.__index = M

--- Creates an empty keyed state.
-- @param max_parallelism number of key groups
-- @param init function() -> initial state of a new key (may return nil)
-- @return the state; its field count is the number of keys it holds
function M.new(max_parallelism, init)
  return setmetatable({ max_parallelism = max_parallelism, init = init,
                        entries = {}, groups = {}, count = 0 }, M)
end

--- Returns the entry of key k, creating it on first sight; raises a user
-- error when k is not a valid key. `entries[k]` is the caller's fast path
-- for scalar keys; this is the slow path.
function M:entry(k)
  local canon = k
  if type(k) == "table" then
    local enc, why = key.encode(k)
    if not enc then errors.raise_invalid_key(k, why) end
    canon = "\0" .. enc
    local e = self.entries[canon]
    if e then return e end
    local copy = {}
    for i = 1, #k do copy[i] = k[i] end
    k = copy
  end
  local kg, why = key.key_group(k, self.max_parallelism)
  if not kg then errors.raise_invalid_key(k, why) end
  local e = { key = k, kg = kg, state = self.init and self.init() }
  self.entries[canon] = e
  self.count = self.count + 1
  local g = self.groups[kg]
  if not g then
    g = {}
    self.groups[kg] = g
  end
  g[canon] = e
  return e
end

local function is_empty(e)
  local s = e.state
  return (s == nil or type(s) == "table" and next(s) == nil)
    and (e.timers == nil or next(e.timers) == nil)
    and (e.ptimers == nil or next(e.ptimers) == nil)
end

-- Forgets the keys of key group kg (table g) whose state is nil or an
-- empty table and that have no timers, and the group once it is empty.
local function compact_group(self, kg, g)
  for canon, e in pairs(g) do
    if is_empty(e) then
      g[canon] = nil
      self.entries[canon] = nil
      self.count = self.count - 1
    end
  end
  if next(g) == nil then self.groups[kg] = nil end
end

--- Forgets every key whose state is nil or an empty table and that has no
-- timers (a window operator's keys once their windows are purged). Done
-- at checkpoints rather than as keys empty, so that a key that comes back
-- soon keeps its entry.
function M:compact()
  for kg, g in pairs(self.groups) do compact_group(self, kg, g) end
end

-- Calls fn(kg, g) for each of the next n key groups that has keys, in
-- turn from self[cursor] (a key group index it then advances), so that
-- calls from different places each go round all groups.
local function next_groups(self, cursor, n, fn)
  local kg = self[cursor] or 0
  for _ = 1, math.min(n, self.max_parallelism) do
    local g = self.groups[kg]
    if g then fn(kg, g) end
    kg = (kg + 1) % self.max_parallelism
  end
  self[cursor] = kg
end

--- Drops the state of every key of the next n key groups (in turn, as
-- compact_some) not written for ttl_ms or more at now (wall-clock ms):
-- its state is forgotten and the key with it unless it has timers. A key
-- restored from a snapshot without its write time (taken by weir before
-- snapshots kept them) counts as written at the first sweep after.
-- @return the number of keys whose state was dropped
function M:expire_some(now, ttl_ms, n)
  local dropped = 0
  next_groups(self, "expire_next", n, function(kg, g)
    for _, e in pairs(g) do
      local t = e.written
      if not t then
        e.written = now
      elseif now - t >= ttl_ms then
        e.state, e.written = self.init and self.init(), nil
        dropped = dropped + 1
      end
    end
    compact_group(self, kg, g)
  end)
  return dropped
end

--- Compacts (see M:compact) the next n key groups in turn, so that every
-- group is compacted once per max_parallelism / n calls: for a snapshot
-- taken elsewhere (a forked process) that cannot compact this state.
function M:compact_some(n)
  next_groups(self, "compact_next", n, function(kg, g)
    compact_group(self, kg, g)
  end)
end

--- Calls fn(entry) for every entry, key groups in ascending order.
function M:each(fn)
  local kgs = {}
  for kg in pairs(self.groups) do kgs[#kgs + 1] = kg end
  table.sort(kgs)
  for _, kg in ipairs(kgs) do
    for _, e in pairs(self.groups[kg]) do fn(e) end
  end
end

-- Finds the first value in v that string.buffer cannot carry; returns its
-- path ("state.callback") and type, or nil (see M.find_unserializable).
local carried = { ["nil"] = true, boolean = true, number = true,
                  string = true, table = true }
local function find_unserializable(v, path, seen)
  local t = type(v)
  if not carried[t] then return path, t end
  if t ~= "table" then return nil end
  if seen[v] then return nil end
  seen[v] = true
  if getmetatable(v) ~= nil then return path, "table with a metatable" end
  for k, x in pairs(v) do
    local kp, kt = find_unserializable(k, path .. "[key]", seen)
    if kp then return kp, kt end
    local sub = type(k) == "string" and k:match("^[%a_][%w_]*$")
      and path .. "." .. k or path .. "[" .. tostring(k) .. "]"
    local p, pt = find_unserializable(x, sub, seen)
    if p then return p, pt end
  end
  return nil
end

--- Finds the first value in v (a record or a key's state) that
-- string.buffer cannot carry: a function, coroutine, userdata or cdata,
-- or a table with a metatable. Returns its path, starting with root
-- ("record.handlers.on_line"), and its type; or nil if there is none.
function M.find_unserializable(v, root)
  return find_unserializable(v, root, {})
end

-- The bytes LuaJIT's heap (64-bit) spends on a table's header, an array
-- slot, a hash node, a string's header, and any other object.
local TABLE_BYTES, SLOT_BYTES, NODE_BYTES = 64, 8, 24
local STRING_BYTES, OBJECT_BYTES = 24, 32

-- The least power of two at or above n (n >= 1).
local function pow2(n)
  local p = 1
  while p < n do p = p * 2 end
  return p
end

--- An estimate of the bytes value v holds in LuaJIT's heap: every table
-- reachable from it (its header, its array part and its hash part, each
-- rounded up to a power of two as LuaJIT sizes them), the strings it
-- holds as values (the strings it uses as table keys count as shared:
-- field names), cdata and functions as one small object; each counted
-- once, and at most `limit` tables (default 100,000: past them, what was
-- counted). Numbers and booleans live in their slots. For sizing a cache
-- of decoded state by what it costs in memory, not by its encoding.
-- @return bytes (a number)
function M.memory_bytes(v, limit)
  limit = limit or 100000
  local tv = type(v)
  if tv == "string" then return STRING_BYTES + #v + 1 end
  if tv ~= "table" then
    return (tv == "number" or tv == "boolean" or tv == "nil") and 0
      or OBJECT_BYTES
  end
  local seen, stack, top, tables, bytes = { [v] = true }, { v }, 1, 0, 0
  while top > 0 and tables < limit do
    local t = stack[top]
    stack[top] = nil
    top = top - 1
    tables = tables + 1
    local n, a = 0, #t
    for _, x in pairs(t) do
      n = n + 1
      local tx = type(x)
      if tx == "table" then
        if not seen[x] then
          seen[x] = true
          top = top + 1
          stack[top] = x
        end
      elseif tx == "string" then
        bytes = bytes + STRING_BYTES + #x + 1
      elseif tx ~= "number" and tx ~= "boolean" then
        bytes = bytes + OBJECT_BYTES
      end
    end
    bytes = bytes + TABLE_BYTES
    if a > 0 then bytes = bytes + pow2(a + 1) * SLOT_BYTES end
    if n > a then bytes = bytes + pow2(n - a) * NODE_BYTES end
  end
  return bytes
end

--- Serializes the state: { [key_group] = bytes }, each bytes a
-- string.buffer encoding of { key1, state1, event_timers1,
-- processing_timers1, key2, ..., n = count, written = { [j] = ms } }
-- (timers: sets of times; written, with a time-to-live only: the
-- wall-clock ms the j-th key was last written, absent in snapshots of
-- weir before it, whose keys count as written at the first sweep after
-- a restore). Raises a user error naming the key and the path of any
-- value string.buffer cannot carry (function, coroutine, userdata, cdata).
function M:snapshot()
  self:compact()
  local out, buf = {}, buffer.new()
  for kg, g in pairs(self.groups) do
    local flat, n = {}, 0
    for _, e in pairs(g) do
      flat[n + 1], flat[n + 2] = e.key, e.state
      flat[n + 3], flat[n + 4] = e.timers, e.ptimers
      n = n + 4
      local w = e.written
      if w then
        local written = flat.written or {}
        flat.written = written
        written[n / 4] = w
      end
    end
    flat.n = n
    local ok, err = pcall(buf.encode, buf, flat)
    if not ok then
      for _, e in pairs(g) do
        local path, t = find_unserializable(e.state, "state", {})
        if path then errors.raise_unserializable(e.key, path, t) end
      end
      errors.raise_unserializable(nil, "state", tostring(err))
    end
    out[kg] = buf:get()
  end
  return out
end

local function is_set_or_nil(v)
  return v == nil or type(v) == "table"
end

--- Decodes bytes (string.buffer's encoding) under pcall; never compiled:
-- an error that string.buffer raises on a trace crashes LuaJIT 2.1
-- releases before 2023, pcall or not (see weir.checkpoint_storage.decode).
-- The checks after it may be compiled.
-- @return true, the value | false, why it is none
local function decode(bytes)
  return pcall(buffer.decode, bytes)
end
jit.off(decode)
M.decode = decode

--- Decodes key group kg (bytes of M:snapshot(), already checked by
-- weir.checkpoint_storage) into its flat list { key, state, timers,
-- ptimers, ..., n = count }, and checks its shape: every key valid and of
-- key group kg (of max_parallelism), timers sets or nil.
-- @return flat | nil, message (what is wrong with the key group)
function M.decode_group(bytes, kg, max_parallelism)
  local ok, flat = decode(bytes)
  if not ok then
    return nil, string.format("key group %d cannot be decoded (%s)", kg,
      tostring(flat))
  end
  local n = type(flat) == "table" and flat.n
  if type(n) ~= "number" or n < 0 or n % 4 ~= 0 then
    return nil, string.format("key group %d is not a list of keys and "
      .. "their state", kg)
  end
  for i = 1, n, 4 do
    local k = flat[i]
    local got, why = nil, "nil"
    if k ~= nil then got, why = key.key_group(k, max_parallelism) end
    if got ~= kg then
      return nil, string.format("key group %d holds %s", kg, got
        and "a key of key group " .. got or "an invalid key (" .. why .. ")")
    end
    if not is_set_or_nil(flat[i + 2]) or not is_set_or_nil(flat[i + 3]) then
      return nil, string.format("key group %d holds timers that are not "
        .. "sets", kg)
    end
  end
  local written = flat.written
  if written ~= nil then
    local ok = type(written) == "table"
    for j, ms in pairs(ok and written or {}) do
      if type(j) ~= "number" or j < 1 or j > n / 4 or j % 1 ~= 0
          or type(ms) ~= "number" then
        ok = false
        break
      end
    end
    if not ok then
      return nil, string.format("key group %d holds write times that are "
        .. "not a list of ms", kg)
    end
  end
  return flat
end

--- The write time (wall-clock ms) of the key at flat[i] of a decoded key
-- group (see M:snapshot), or nil.
function M.written_at(flat, i)
  local written = flat.written
  return written and written[(i + 3) / 4]
end

--- Calls fn(kg, flat) for each key group of a snapshot's groups (those
-- of M:snapshot()) for which owns(kg) is true (all without owns), flat
-- decoded and checked by M.decode_group. Raises, naming the file the key
-- group came from (files[kg]), when it is damaged. Both state backends
-- restore through it.
function M.each_group(groups, owns, files, max_parallelism, fn)
  for kg, bytes in pairs(groups) do
    if not owns or owns(kg) then
      local flat, err = M.decode_group(bytes, kg, max_parallelism)
      if not flat then
        error(string.format("%s: damaged state file: %s",
          files and files[kg] or "a snapshot", err), 0)
      end
      fn(kg, flat)
    end
  end
end

--- Replaces the state with a snapshot's key groups (those of
-- M:snapshot()); only groups for which owns(kg) is true are decoded.
-- Raises, naming the file a key group came from (files[kg], see
-- weir.checkpoint_storage.file_of), when it is damaged (see M.decode_group).
function M:restore(groups, owns, files)
  -- Cleared in place: operators hold self.entries as an upvalue.
  for k in pairs(self.entries) do self.entries[k] = nil end
  for k in pairs(self.groups) do self.groups[k] = nil end
  self.count = 0
  M.each_group(groups, owns, files, self.max_parallelism, function(_, flat)
    for i = 1, flat.n, 4 do
      local e = self:entry(flat[i])
      e.state, e.timers, e.ptimers = flat[i + 1], flat[i + 2], flat[i + 3]
      e.written = M.written_at(flat, i)
    end
  end)
end

--- Adds restored entries (a batch of weir.rocksdb_checkpoint.each_entry:
-- { kg, entry = { key, state, timers, ptimers, written } }) to the state.
function M:restore_entries(batch)
  for _, r in ipairs(batch) do
    local t = r.entry
    local e = self:entry(t[1])
    e.state, e.timers, e.ptimers, e.written = t[2], t[3], t[4], t[5]
  end
end

return M
