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
        ranges[#ranges + 1] = { r[1], r[2] }
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

return M
