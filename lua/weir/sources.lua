--- Runtime instances of sources. make(node, emit, env) returns:
--   open()              acquires the input; raises a clear error if missing
--   produce(n) -> ended, count emits up to n records; ended is true once
--                       the input ended
--   snapshot() -> state the position (operator state)
--   restore(state)      seeks to a snapshot's position
local M = {}

--- read_lines: position = byte offset of the next line. Subtask i of p
-- reads the lines that start in the i-th of p equal byte ranges of the
-- file (a line belongs to the range its first byte is in).
function M.read_lines(node, emit, env)
  local f, offset, stop = nil, nil, nil
  local inst = {}
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
    local i, p = env.subtask, env.parallelism
    stop = math.floor(size * (i + 1) / p)
    if i == p - 1 then stop = math.huge end
    if offset == nil then
      offset = math.floor(size * i / p)
      if offset > 0 then
        -- Start after the end of the line that holds byte offset - 1.
        f:seek("set", offset - 1)
        local rest = f:read("*l")
        offset = offset - 1 + (rest and #rest + 1 or 0)
      end
    end
    f:seek("set", offset)
  end
  function inst.produce(n)
    local read = f.read
    for i = 1, n do
      if offset >= stop then return true, i - 1 end
      local record = read(f, "*l")
      if record == nil then return true, i - 1 end
      offset = offset + #record + 1
      emit(record)
    end
    return false, n
  end
  function inst.snapshot() return { offset = offset, path = node.path } end
  function inst.restore(s)
    offset = s.offset
    if f then f:seek("set", offset) end
  end
  function inst.close() if f then f:close() f = nil end end
  return inst
end

--- sequence: position = the next integer. Subtask i of p emits the i-th
-- of p contiguous ranges of first..last.
function M.sequence(node, emit, env)
  local count = math.max(0, node.last - node.first + 1)
  local i, p = env.subtask, env.parallelism
  local nxt = node.first + math.floor(count * i / p)
  local last = node.first + math.floor(count * (i + 1) / p) - 1
  local inst = {}
  function inst.produce(n)
    local stop = math.min(last, nxt + n - 1)
    local count = math.max(0, stop - nxt + 1)
    for record = nxt, stop do
      nxt = record + 1
      emit(record)
    end
    return nxt > last, count
  end
  function inst.snapshot() return { next = nxt } end
  function inst.restore(s) nxt = s.next end
  return inst
end

return M
