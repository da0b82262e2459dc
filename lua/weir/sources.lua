--- Runtime instances of sources. make(node, emit, env) returns:
--   open()              acquires the input; raises a clear error if missing
--   produce(n) -> ended, count emits up to n records; ended is true once
--                       the input ended
--   snapshot() -> state the position (operator state): the ranges still to
--                       read, so a restore at another parallelism can hand
--                       them to other subtasks
--   restore(olds)       takes the ranges of the old subtasks j with
--                       j % parallelism == this subtask (olds: { { subtask,
--                       state } } of every old subtask)
local M = {}

-- The ranges old subtasks left that fall to this subtask.
local function restored_ranges(olds, env)
  local ranges = {}
  for _, o in ipairs(olds) do
    if o.subtask % env.parallelism == env.subtask then
      for _, r in ipairs(o.state.ranges) do
        ranges[#ranges + 1] = { unpack(r) }
      end
    end
  end
  return ranges
end

--- read_lines: ranges of byte offsets { from, to } (to exclusive; lines
-- that start before `to` belong to the range). A fresh subtask i of p
-- reads the lines that start in the i-th of p equal parts of the file.
function M.read_lines(node, emit, env)
  local f, ranges, r, offset, stop = nil, nil, 1, nil, nil
  local inst = {}
  local function enter(k)
    r = k
    local range = ranges[k]
    if range then
      offset, stop = range[1], range[2]
      f:seek("set", offset)
    else
      offset, stop = nil, nil
    end
  end
  function inst.open()
    local err
    f, err = io.open(node.path, "rb")
    if not f then
      error(string.format("read_lines (%s): cannot open input: %s",
        node.defined_at, err), 0)
    end
    local size = f:seek("end")
    if size == nil then
      error(string.format("read_lines (%s): input %s is not a readable file",
        node.defined_at, node.path), 0)
    end
    if not ranges then
      local i, p = env.subtask, env.parallelism
      local from = math.floor(size * i / p)
      local to = i == p - 1 and math.huge or math.floor(size * (i + 1) / p)
      if from > 0 then
        -- Start after the end of the line that holds byte from - 1.
        f:seek("set", from - 1)
        local rest = f:read("*l")
        from = from - 1 + (rest and #rest + 1 or 0)
      end
      ranges = { { from, to } }
    end
    enter(1)
  end
  function inst.produce(n)
    local read = f.read
    for i = 1, n do
      while offset and offset >= stop do enter(r + 1) end
      if not ranges[r] then return true, i - 1 end
      local record = read(f, "*l")
      if record == nil then
        enter(r + 1)
        if not ranges[r] then return true, i - 1 end
      else
        offset = offset + #record + 1
        emit(record)
      end
    end
    return false, n
  end
  function inst.snapshot()
    local left = {}
    if ranges[r] then left[1] = { offset, stop } end
    for k = r + 1, #ranges do left[#left + 1] = ranges[k] end
    return { path = node.path, ranges = left }
  end
  function inst.restore(olds)
    for _, o in ipairs(olds) do
      if o.state.path ~= node.path then
        error(string.format("read_lines (%s): the checkpoint's position is "
          .. "in %s, the job reads %s", node.defined_at, o.state.path,
          node.path), 0)
      end
    end
    ranges = restored_ranges(olds, env)
  end
  function inst.close() if f then f:close() f = nil end end
  return inst
end

--- sequence: ranges { next, last }. A fresh subtask i of p emits the i-th
-- of p contiguous parts of first..last.
function M.sequence(node, emit, env)
  local count = math.max(0, node.last - node.first + 1)
  local i, p = env.subtask, env.parallelism
  local ranges = { { node.first + math.floor(count * i / p),
                     node.first + math.floor(count * (i + 1) / p) - 1 } }
  local inst = {}
  function inst.produce(n)
    local range = ranges[1]
    while range and range[1] > range[2] do
      table.remove(ranges, 1)
      range = ranges[1]
    end
    if not range then return true, 0 end
    local nxt = range[1]
    local stop = math.min(range[2], nxt + n - 1)
    for record = nxt, stop do
      range[1] = record + 1
      emit(record)
    end
    return false, stop - nxt + 1
  end
  function inst.snapshot()
    local left = {}
    for k, range in ipairs(ranges) do left[k] = { range[1], range[2] } end
    return { ranges = left }
  end
  function inst.restore(olds) ranges = restored_ranges(olds, env) end
  return inst
end

--- nexmark: the Nexmark benchmark's events (weir.nexmark); ranges
-- { instance, instances, next } of generator instances, next being the
-- number of events the instance emitted. A fresh subtask i of p is
-- instance i of p; a subtask that took over several instances in a
-- restore at another parallelism emits their rest one after the other,
-- each with its own timestamps.
function M.nexmark(node, emit, env)
  local nexmark = require "weir.nexmark"
  local o = node.generator
  local ranges = { { env.subtask, env.parallelism, 0 } }
  local range, generate, size   -- the range being emitted and its instance
  local inst = {}
  local function enter()
    range = ranges[1]
    if range then
      local g = nexmark.generator { events = o.events, rate = o.rate,
        seed = o.seed, base_time = o.base_time, instance = range[1],
        instances = range[2] }
      generate, size = g.generate, g.size
    end
  end
  function inst.produce(n)
    if range ~= ranges[1] then enter() end
    while range and range[3] >= size do
      table.remove(ranges, 1)
      enter()
    end
    if not range then return true, 0 end
    local first = range[3]
    local stop = math.min(size, first + n) - 1
    for k = first, stop do
      range[3] = k + 1
      emit(generate(k))
    end
    return false, stop - first + 1
  end
  function inst.snapshot()
    local left = {}
    for k, r in ipairs(ranges) do left[k] = { r[1], r[2], r[3] } end
    return { generator = { events = o.events, rate = o.rate, seed = o.seed,
      base_time = o.base_time }, ranges = left }
  end
  function inst.restore(olds)
    for _, old in ipairs(olds) do
      for _, k in ipairs({ "events", "rate", "seed", "base_time" }) do
        if old.state.generator[k] ~= o[k] then
          error(string.format("nexmark (%s): the checkpoint's generator has "
            .. "%s = %s, the job's has %s", node.defined_at, k,
            tostring(old.state.generator[k]), tostring(o[k])), 0)
        end
      end
    end
    ranges = restored_ranges(olds, env)
    range = nil
  end
  return inst
end

return M
