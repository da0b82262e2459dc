--- Routing records of an edge to the consumer subtasks' writers (Flink's
-- ChannelSelector / StreamPartitioner): forward (subtask i to subtask i),
-- rebalance (round robin) or hash (the key group of the record's key
-- picks the subtask owning it; engine/keygroup.c).
local core = require "weir.core"
local errors = require "weir.errors"
local key = require "weir.key"

local M = {}

--- Calls every function of targets with the same arguments: a function
-- that does nothing for none, the function itself for one.
function M.fan_out(targets)
  if #targets == 0 then return function() end end
  if #targets == 1 then return targets[1] end
  return function(a, b, c)
    for i = 1, #targets do targets[i](a, b, c) end
  end
end

-- Hash partitioning: the key group of the key picks the subtask that owns
-- it. String keys have theirs computed each time (cheaper than looking
-- them up in a table as large as the key space), except in a run of equal
-- keys; other scalar keys remember their subtask. Raises (as the
-- operator that produced the record, edge.from) for a key that has no key
-- group (nil, NaN, a table).
local function hash(edge, ws, maxp)
  local p = #ws
  local owner = {}  -- key group + 1 -> push of the subtask owning it
  for kg = 0, maxp - 1 do
    owner[kg + 1] = ws[core.key_group_subtask(maxp, p, kg) + 1].push
  end
  local string_key_group = key.string_key_group
  local cache, last_key, last_push = {}, nil, nil
  return errors.register(function(record, ts, k)
    local push
    if k == last_key then
      push = last_push
    elseif type(k) == "string" then
      push = owner[string_key_group(k, #k, maxp) + 1]
      last_key, last_push = k, push
    else
      push = cache[k]
    end
    if push == nil then
      local kg, why = key.key_group(k, maxp)
      if not kg then errors.raise_invalid_key(k, why) end
      push = owner[kg + 1]
      if type(k) ~= "table" then cache[k] = push end
    end
    push(record, ts, k)
  end, edge.from)
end

--- Routes the records of `edge` leaving producer subtask i.
-- @param writer_of function(j) -> the writer (weir.channel) to consumer
--   subtask j (0-based)
-- @param max_parallelism the job's number of key groups
-- @return push(record, ts, key), watermark(wm, status) (to every
--   consumer), and the list of writers used
function M.new(edge, i, writer_of, max_parallelism)
  local p = edge.to.parallelism
  local ws = {}
  if edge.kind == "forward" then
    ws[1] = writer_of(i)
    return ws[1].push, ws[1].watermark, ws
  end
  for j = 0, p - 1 do ws[j + 1] = writer_of(j) end
  local function watermark(w, status)
    for _, wr in ipairs(ws) do wr.watermark(w, status) end
  end
  if edge.kind == "rebalance" then
    local next_j = i % p
    return function(record, ts)
      next_j = next_j + 1
      if next_j > p then next_j = 1 end
      ws[next_j].push(record, ts)
    end, watermark, ws
  end
  return hash(edge, ws, max_parallelism), watermark, ws
end

return M
