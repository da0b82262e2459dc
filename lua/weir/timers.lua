--- Timers of a keyed operator: per key and time, deduplicated, fired in
-- time order. A timer lives in its key's entry (entry[field] is a set of
-- times), so it is part of the keyed state and of every checkpoint; the
-- binary heap here only orders them and is rebuilt on restore. (The
-- RocksDB backend keeps its timers in RocksDB instead, with the same
-- methods: weir.rocksdb_timers.)
local M = {}
M.__index = M

--- Creates a timer queue over the entries' field (`timers` for event
-- time, `ptimers` for processing time).
function M.new(field)
  return setmetatable({ field = field, ts = {}, es = {}, n = 0 }, M)
end

local function swap(h, i, j)
  h.ts[i], h.ts[j] = h.ts[j], h.ts[i]
  h.es[i], h.es[j] = h.es[j], h.es[i]
end

local function push(h, t, e)
  local n = h.n + 1
  h.n = n
  h.ts[n], h.es[n] = t, e
  local i = n
  while i > 1 do
    local p = math.floor(i / 2)
    if h.ts[p] <= h.ts[i] then break end
    swap(h, i, p)
    i = p
  end
end

local function pop(h)
  local t, e = h.ts[1], h.es[1]
  local n = h.n
  h.ts[1], h.es[1] = h.ts[n], h.es[n]
  h.ts[n], h.es[n] = nil, nil
  n = n - 1
  h.n = n
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and h.ts[l] < h.ts[m] then m = l end
    if r <= n and h.ts[r] < h.ts[m] then m = r end
    if m == i then break end
    swap(h, i, m)
    i = m
  end
  return t, e
end

--- The heap's primitives, over any table { ts = times, es = what each
-- is for, n = count }: push(h, t, e); pop(h) -> t, e (the earliest).
M.heap_push, M.heap_pop = push, pop

--- Registers a timer at time t (ms) for entry e; a second timer for the
-- same key and time is ignored.
function M:add(e, t)
  local set = e[self.field]
  if not set then
    set = {}
    e[self.field] = set
  end
  if set[t] then return end
  set[t] = true
  push(self, t, e)
end

--- Removes entry e's timer at time t, if any.
function M:delete(e, t)
  local set = e[self.field]
  if set then set[t] = nil end
end

--- Returns the earliest pending time, or nil.
function M:peek()
  while self.n > 0 do
    local t, e = self.ts[1], self.es[1]
    local set = e[self.field]
    if set and set[t] then return t end
    pop(self)  -- deleted
  end
  return nil
end

--- Fires, in time order, every timer at or before time w:
-- fire(entry, t) for each. Timers registered while firing are fired too
-- when they are due.
function M:advance(w, fire)
  while true do
    local t = self:peek()
    if t == nil or t > w then return end
    local _, e = pop(self)
    e[self.field][t] = nil
    fire(e, t)
  end
end

--- Whether any timer is pending (cheaper than peek: a deleted one may
-- count).
function M:any()
  return self.n > 0
end

--- Rebuilds the queue from the timer sets of the entries of a keyed state
-- (after a restore).
function M:rebuild(state)
  self.ts, self.es, self.n = {}, {}, 0
  for _, e in pairs(state.entries) do
    local set = e[self.field]
    if set then
      for t in pairs(set) do push(self, t, e) end
    end
  end
end

return M
