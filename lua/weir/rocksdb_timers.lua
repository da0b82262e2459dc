--- The timers of the RocksDB backend's state (weir.rocksdb_state): its
-- operator's timer queues (weir.timers) hold keys, not entries, so that an
-- entry with timers leaves the cache as any other (as Flink's RocksDB
-- backend keeps timers by key). A checkpoint lists the queues' timers
-- (time and key) at the barrier; a restore rebuilds the queues from that
-- list, or from the entries' own timer sets.
local new_table = require "table.new"

local M = {}
local methods = {}

-- Adds the timers of entry e (restored, not cached) to the operator's
-- timer queues, by key.
function methods.queue_timers(self, e)
  for _, q in ipairs(self.timer_queues) do
    local set = e[q.field]
    if set then
      for t in pairs(set) do q:push_ref(t, e.key) end
    end
  end
end

--- The operator's timers at the barrier, for a checkpoint to list: { queues
-- = { [field] = { ts = { time (ms), ... }, keys = { key, ... } } } }, one
-- per timer queue (weir.timers, registered in timer_queues), copies of
-- its heap (a timer deleted since it was added may be listed: its key's
-- entry no longer holds it). A restore that takes the checkpoint's
-- database as it is rebuilds the queues from them (queue_timer_keys).
function methods.timer_keys(self)
  local queues = {}
  for _, q in ipairs(self.timer_queues) do
    local ts, keys, qts, qes = new_table(q.n, 0), new_table(q.n, 0), q.ts,
      q.es
    for i = 1, q.n do ts[i], keys[i] = qts[i], qes[i] end
    queues[q.field] = { ts = ts, keys = keys }
  end
  return { queues = queues }
end

-- Raises naming the operator: the checkpoint's timers are not what
-- timer_keys makes.
function methods.bad_timer_keys(self, what)
  error(string.format("%s: the checkpoint's list of timers holds %s",
    self.where, what), 0)
end

--- Rebuilds the timer queues after a restore took a checkpoint's database
-- as it is, from the checkpoint's timers (see timer_keys), or, from a
-- checkpoint taken before those were listed, from the entries of its keys
-- with timers (a list of RocksDB keys; a listed key that is not stored
-- holds none). Raises naming the operator when they are not a list of
-- timers or keys, or a value is undecodable or unreadable.
function methods.queue_timer_keys(self, list)
  if type(list) ~= "table" then self:bad_timer_keys("no list") end
  if list.queues ~= nil then
    if type(list.queues) ~= "table" then self:bad_timer_keys("no queues") end
    for _, q in ipairs(self.timer_queues) do
      local saved = list.queues[q.field]
      if saved ~= nil then
        local ts, keys = type(saved) == "table" and saved.ts,
          type(saved) == "table" and saved.keys
        if type(ts) ~= "table" or type(keys) ~= "table" or #ts ~= #keys then
          self:bad_timer_keys("a queue that is not one")
        end
        for i = 1, #ts do
          local t, k = ts[i], keys[i]
          local tk = type(k)
          if type(t) ~= "number" or t ~= t or not (tk == "number"
              or tk == "string" or tk == "table" or tk == "boolean") then
            self:bad_timer_keys("something that is not a timer")
          end
          q:push_ref(t, k)
        end
      end
    end
    return
  end
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
      self:queue_timers(self:decode_entry(k:byte(1) * 256 + k:byte(2), v))
    end
  end
end

--- Adds these methods to the RocksDB state's metatable RState:
-- queue_timers(e), timer_keys(), queue_timer_keys(list) (see each).
function M.install(RState)
  for name, fn in pairs(methods) do RState[name] = fn end
end

return M
