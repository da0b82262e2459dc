--- A write-ahead log of lines in a directory of segments, for sources
-- that cannot replay their input (Spark Streaming's receiver log): what
-- is received is appended and made durable before it enters the job, a
-- checkpoint records the log offset the job read up to, and a restore
-- reads the log again from there.
--
-- Offsets are byte offsets in the log as a whole. Segment files are
-- named by the offset of their first byte, 20 digits and ".log"
-- ("00000000000000001234.log"), so listing the directory orders them. An
-- append groups what was added while the last one was in flight into one
-- write and one fdatasync (group commit) on libuv's thread pool
-- (core.log_open). At open, bytes after the last "\n" of the last
-- segment (a write cut short by a crash, never acknowledged) are cut off.
-- Savepoints pin the offset they read up to (a ".pin" file) for as long
-- as the savepoint exists.
local buffer = require "string.buffer"
local core = require "weir.core"
local ffi = require "ffi"
local fsutil = require "weir.fsutil"
local line_reader = require "weir.line_reader"

ffi.cdef [[
int truncate(const char *path, int64_t length);
]]

local M = {}

--- Bytes a segment grows to before the next one starts.
M.SEGMENT_BYTES = 64 * 1024 * 1024

local Log = {}
Log.__index = Log

local function segment_name(offset)
  return string.format("%020d.log", offset)
end

-- The segments of dir, sorted: { { start = offset, path, size } }.
local function segments(dir)
  local names = assert(core.scandir(dir))
  local out = {}
  for _, name in ipairs(names) do
    local digits = name:match("^(%d+)%.log$")
    if digits and #digits == 20 then
      local path = dir .. "/" .. name
      local st = core.stat(path)
      out[#out + 1] = { start = tonumber(digits), path = path,
        size = st and st.size or 0 }
    end
  end
  table.sort(out, function(a, b) return a.start < b.start end)
  return out
end

-- The size of the file at path once bytes after its last "\n" are cut
-- off (truncate(2)); size is its size now.
local function cut_torn_tail(path, size)
  local f = assert(io.open(path, "rb"))
  local keep, at = 0, size
  while at > 0 and keep == 0 do
    local from = math.max(0, at - 65536)
    f:seek("set", from)
    local chunk = f:read(at - from)
    local last = chunk:find("\n[^\n]*$")
    if last then keep = from + last end
    at = from
  end
  f:close()
  if keep < size and ffi.C.truncate(path, keep) ~= 0 then
    error(string.format("cannot cut the torn end of %s: errno %d", path,
      ffi.errno()), 0)
  end
  return keep
end

--- Opens (or creates) the log in dir.
-- @param dir its directory (created with its parents)
-- @param opts { segment_bytes = bytes (default M.SEGMENT_BYTES) }
-- @return Log | nil, message
function M.open(dir, opts)
  local ok, err = fsutil.mkdir_p(dir)
  if not ok then return nil, err end
  local log = setmetatable({ dir = dir, queue = {}, callbacks = {},
    segment_bytes = opts and opts.segment_bytes or M.SEGMENT_BYTES },
    Log)
  local segs = segments(dir)
  local last = segs[#segs]
  if last then
    last.size = cut_torn_tail(last.path, last.size)
    log.first, log.durable = segs[1].start, last.start + last.size
  else
    log.first, log.durable = 0, 0
  end
  local ok2, oerr = log:roll(last)
  if not ok2 then return nil, oerr end
  return log
end

-- Makes seg (or a new segment at the durable end) the one appends go to.
function Log:roll(seg)
  if self.file then self.file:close() end
  local path = seg and seg.path or self.dir .. "/" .. segment_name(self.durable)
  local file, err = core.log_open(path)
  if not file then return nil, "cannot open " .. path .. ": " .. err end
  if not seg then
    local ok, serr = core.fsync_parent(path)
    if not ok then return nil, "cannot sync the directory of " .. path
      .. ": " .. serr end
  end
  self.file, self.current = file, seg and seg.start or self.durable
  return true
end

--- Adds bytes (whole lines, each ending in "\n") to the log; fn(nil,
-- end_offset) once they are durable, in the order of add, or fn(message)
-- if the write or its sync failed.
function Log:add(bytes, fn)
  self.queue[#self.queue + 1] = bytes
  self.callbacks[#self.callbacks + 1] = fn
  if not self.file:busy() then self:flush() end
end

-- Appends all that was added since the last append, as one write and one
-- fdatasync.
function Log:flush()
  if #self.queue == 0 or self.closed then return end
  if self.durable - self.current >= self.segment_bytes then
    local ok, err = self:roll(nil)
    if not ok then return self:failed(self.callbacks, err) end
  end
  local bytes = table.concat(self.queue)
  local fns, ends, at = self.callbacks, {}, self.durable
  for i, b in ipairs(self.queue) do
    at = at + #b
    ends[i] = at
  end
  self.queue, self.callbacks = {}, {}
  local ok, err = self.file:append(bytes, function(aerr)
    if aerr then return self:failed(fns, aerr) end
    self.durable = at
    for i, fn in ipairs(fns) do fn(nil, ends[i]) end
    self:flush()
  end)
  if not ok then self:failed(fns, err) end
end

function Log:failed(fns, err)
  local msg = "cannot write the log in " .. self.dir .. ": " .. tostring(err)
  for _, fn in ipairs(fns) do fn(msg) end
end

--- Whether everything added is durable.
function Log:idle()
  return #self.queue == 0 and not self.file:busy()
end

--- A reader of the lines from offset `from` to the durable end (as it is
-- now): reader() -> line (without "\n"), end_offset | nil at the end.
-- Raises if the log does not hold offset `from`.
function Log:reader(from)
  if from < self.first or from > self.durable then
    error(string.format("the log %s holds offsets %d to %d, not %d: its "
      .. "segments were removed or lost", self.dir, self.first,
      self.durable, from), 0)
  end
  local segs, k, r, at = segments(self.dir), 0, nil, from
  local stop = self.durable
  return function()
    while at < stop do
      if not r then
        k = k + 1
        local seg = segs[k]
        if seg.start + seg.size > at then
          r = assert(line_reader.open(seg.path, { keep_cr = true }))
          r:seek(at - seg.start)
        end
      end
      if r then
        local line, consumed = r:next()
        if line then
          at = at + consumed
          return line, at
        end
        r:close()
        r = nil
      end
    end
    if r then r:close() r = nil end
    return nil
  end
end

--- Records that savepoint id needs the log from offset on, for as long
-- as alive() says it exists.
function Log:pin(id, offset, where)
  local path = string.format("%s/savepoint-%d.pin", self.dir, id)
  local f = assert(io.open(path, "wb"))
  f:write(buffer.encode({ offset = offset, where = where }))
  f:close()
end

-- The pins, { { path, offset, where } }.
function Log:pins()
  local out = {}
  for _, name in ipairs(assert(core.scandir(self.dir))) do
    if name:match("^savepoint%-%d+%.pin$") then
      local path = self.dir .. "/" .. name
      local f = io.open(path, "rb")
      local ok, v = pcall(buffer.decode, f and f:read("*a") or "")
      if f then f:close() end
      if ok and type(v) == "table" and type(v.offset) == "number" then
        out[#out + 1] = { path = path, offset = v.offset, where = v.where }
      end
    end
  end
  return out
end

--- Removes the segments that hold only bytes before offset `before`,
-- and the pins for which alive(where) is false; the lowest offset a live
-- pin holds bounds it too. With all (the job read its input to the end),
-- a last segment read to its end goes too, for an empty one at the
-- durable end.
function Log:release(before, alive, all)
  for _, pin in ipairs(self:pins()) do
    if alive(pin.where) then
      before = math.min(before, pin.offset)
    else
      core.unlink(pin.path)
    end
  end
  if all and before >= self.durable and self.current < self.durable
      and self:idle() then
    assert(self:roll(nil))
  end
  local segs = segments(self.dir)
  for i, seg in ipairs(segs) do
    local next_start = segs[i + 1] and segs[i + 1].start
    if next_start and next_start <= before then
      core.unlink(seg.path)
      self.first = next_start
    end
  end
end

--- Closes the log; appends in flight complete without their callbacks.
function Log:close()
  self.closed = true
  if self.file then self.file:close() self.file = nil end
end

return M
