--- Runtime instances of sources. make(node, emit, env) returns:
--   open()              acquires the input; raises a clear error if missing
--   produce(n) -> ended emits up to n records; true once the input ended
--   snapshot() -> state the position (operator state)
--   restore(state)      seeks to a snapshot's position
local M = {}

--- read_lines: position = byte offset of the next line.
function M.read_lines(node, emit)
  local f, offset = nil, 0
  local inst = {}
  function inst.open()
    local err
    f, err = io.open(node.path, "rb")
    if not f then
      error(string.format("read_lines (%s): cannot open input: %s",
        node.defined_at, err), 0)
    end
    local size = f:seek("end")
    f:seek("set", offset)
    if size == nil then
      error(string.format("read_lines (%s): input %s is not a readable file",
        node.defined_at, node.path), 0)
    end
  end
  function inst.produce(n)
    local read = f.read
    for _ = 1, n do
      local record = read(f, "*l")
      if record == nil then return true end
      offset = offset + #record + 1
      emit(record)
    end
    return false
  end
  function inst.snapshot() return { offset = offset, path = node.path } end
  function inst.restore(s)
    offset = s.offset
    if f then f:seek("set", offset) end
  end
  function inst.close() if f then f:close() f = nil end end
  return inst
end

--- sequence: position = the next integer.
function M.sequence(node, emit)
  local nxt, last = node.first, node.last
  local inst = {}
  function inst.produce(n)
    local stop = math.min(last, nxt + n - 1)
    for record = nxt, stop do
      nxt = record + 1
      emit(record)
    end
    return nxt > last
  end
  function inst.snapshot() return { next = nxt } end
  function inst.restore(s) nxt = s.next end
  return inst
end

return M
