--- An ordered map from numbers to values (a skip list): insert, remove and
-- the first key at or above a number in O(log n) expected, then a walk in
-- key order. Session windows use it to find the windows a record touches
-- among however many a key has pending. Levels come from a generator of
-- its own, so the user's math.random sequence is left alone and runs
-- repeat exactly.
local M = {}
M.__index = M

local MAX_LEVEL = 32

--- Creates an empty map.
function M.new()
  return setmetatable({ head = { next = {} }, level = 1, seed = 1,
                        update = {} }, M)
end

-- A level of 1 + k with probability 4^-k.
local function random_level(self)
  local level, seed = 1, self.seed
  repeat
    seed = (seed * 1103515245 + 12345) % 2147483648
    local more = seed < 536870912
    if more then level = level + 1 end
  until not more or level == MAX_LEVEL
  self.seed = seed
  return level
end

-- Fills self.update[i] with the last node before key at each level and
-- returns the first node at or after key (or nil).
local function search(self, key)
  local x, update = self.head, self.update
  for i = self.level, 1, -1 do
    local nx = x.next[i]
    while nx and nx.key < key do
      x = nx
      nx = x.next[i]
    end
    update[i] = x
  end
  return x.next[1]
end

--- Maps key (a number, not NaN) to value, replacing any value it had.
function M:insert(key, value)
  local found = search(self, key)
  if found and found.key == key then
    found.value = value
    return
  end
  local level, update = random_level(self), self.update
  for i = self.level + 1, level do update[i] = self.head end
  if level > self.level then self.level = level end
  local node = { key = key, value = value, next = {}, level = level }
  for i = 1, level do
    node.next[i] = update[i].next[i]
    update[i].next[i] = node
  end
end

--- Removes key and its value, if present.
function M:remove(key)
  local found = search(self, key)
  if not found or found.key ~= key then return end
  local update = self.update
  for i = 1, found.level do update[i].next[i] = found.next[i] end
  while self.level > 1 and self.head.next[self.level] == nil do
    self.level = self.level - 1
  end
end

--- Returns the node with the smallest key >= key, or nil: node.key,
-- node.value, and M.after(node) for the next one in key order.
function M:ceiling(key)
  return search(self, key)  -- its update list is scratch, unused here
end

--- Returns the node after node in key order, or nil.
function M.after(node)
  return node.next[1]
end

return M
