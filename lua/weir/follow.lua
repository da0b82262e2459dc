--- Followed files: read_lines(path or glob, { follow = true }) reads files
-- as they grow and picks up new files that match (Fluent Bit's in_tail,
-- Flink's continuous file source). Unbounded: the job runs until it is
-- cancelled.
--
-- A file is known by its device and inode, so a rename does not make it
-- another file: its position (the offset after the last complete line
-- read) is kept per inode in checkpoints. Every POLL_MS the glob is
-- expanded again (glob(3), so `.part-*` files never match): a new inode
-- is read from its start; a file whose size fell below its position was
-- truncated and is read again from its start (with a warning); a file no
-- longer matched (rotated away or deleted) is read through its open
-- descriptor to its end, then dropped. A last line without "\n" waits
-- for its "\n" (the writer may still be writing it). Lines follow the
-- rules of weir.line_reader. File f goes to subtask inode % parallelism.
-- A cancel with drain (weir.host Host:drain) expands the glob once more,
-- reads every file to its current end and ends the source (a last line
-- without "\n" stays unread: its position is the final checkpoint's).
local core = require "weir.core"
local errors = require "weir.errors"
local replay = require "weir.replay"
local line_reader = require "weir.line_reader"

local M = {}

local resume_skip = replay.resume_skip

M.POLL_MS = 200

local Follower = {}
Follower.__index = Follower

-- The files the node names, each { path, id, ino, size }.
function Follower:matches()
  local node, out = self.node, {}
  local paths = node.path
  if type(paths) == "string" then
    if paths:find("[*?%[]") then
      paths = assert(self.glob(paths))
    else
      paths = { paths }
    end
  end
  for _, path in ipairs(paths) do
    local st = core.stat(path)
    if st and st.type == "file" then
      out[#out + 1] = { path = path, id = st.dev .. ":" .. st.ino,
        ino = st.ino, size = st.size }
    end
  end
  return out
end

-- Opens file f (this subtask's) at offset.
function Follower:open_file(f, offset)
  local reader, err = line_reader.open(f.path, { keep_cr = self.node.keep_cr,
    context = "read_lines (" .. self.node.defined_at .. ")",
    complete_lines = true })
  if not reader then
    errors.warn(string.format("read_lines (%s): cannot open %s: %s",
      self.node.defined_at, f.path, err))
    return nil
  end
  reader:seek(offset)
  local file = { id = f.id, path = f.path, offset = offset, reader = reader,
    seen = true }
  self.files[f.id] = file
  return file
end

-- Expands the glob again: new files, renamed ones, truncated ones, and
-- files no longer matched (read to their end, then dropped).
function Follower:scan()
  local env, p = self.env, self.env.parallelism
  for _, file in pairs(self.files) do file.seen = false end
  for _, f in ipairs(self:matches()) do
    if f.ino % p == env.subtask then
      local file = self.files[f.id]
      if not file then
        local at = self.restored[f.id]
        self.restored[f.id] = nil
        file = self:open_file(f, at and at.offset or 0)
        if file and at then file.skip = at.skip end
      else
        file.seen, file.path = true, f.path
        if f.size < file.offset then
          errors.warn(string.format("read_lines (%s): %s was truncated "
            .. "(%d bytes, read up to %d); reading it again from its start",
            self.node.defined_at, f.path, f.size, file.offset))
          file.offset = 0
          file.reader:seek(0)
        end
      end
    end
  end
  for id, at in pairs(self.restored) do
    errors.warn(string.format("read_lines (%s): %s (the file of the "
      .. "restored checkpoint, read up to byte %d) is gone: its lines after "
      .. "that are not read", self.node.defined_at, at.path, at.offset))
    self.restored[id] = nil
  end
end

function Follower:produce(n)
  local now = core.monotonic_ms()
  if now - self.scanned >= M.POLL_MS then
    self.scanned = now
    self:scan()
  end
  local count, emit, env = 0, self.emit, self.env
  local ids = {}
  for id in pairs(self.files) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local file = self.files[id]
    while count < n do
      local line, consumed = file.reader:next()
      if line == nil then break end
      resume_skip(file, env)
      self.current = file
      emit(line)
      self.current = nil
      file.offset = file.offset + consumed
      count = count + 1
    end
    if not file.seen and count < n then  -- read to its end: let it go
      file.reader:close()
      self.files[id] = nil
    end
  end
  if next(self.files) == nil then
    if not self.idle then  -- no file of its own: idle, event time goes on
      self.idle = true
      env.emit_watermark(-math.huge, "idle")
    end
  elseif self.idle then  -- files again: its watermarks count once more
    self.idle = false
    env.emit_watermark(-math.huge, "active")
  end
  if count == 0 then
    if self.draining then return true, 0 end
    self:wait()
  end
  return false, count, count == 0
end

-- The job is cancelled with drain: the next step scans the glob once
-- more, and the source ends once every file is read to its end.
function Follower:drain()
  self.draining = true
  self.scanned = -math.huge
  self.env.wake()
end

-- Nothing to read: the host is woken for the next scan.
function Follower:wait()
  if self.stopped or self.timer_armed then return end
  self.timer_armed = true
  self.timer:start(M.POLL_MS, 0)
end

function Follower:snapshot(skip)
  local st = {}
  for id, file in pairs(self.files) do
    st[id] = { path = file.path, offset = file.offset, skip = file.skip }
  end
  for id, at in pairs(self.restored) do st[id] = at end  -- not met yet
  if skip and skip > 0 and self.current then
    st[self.current.id].skip = skip
  end
  return { files = st }
end

-- Every file's position, taken by the subtask its inode goes to now.
function Follower:restore(olds)
  local p = self.env.parallelism
  for _, o in ipairs(olds) do
    for id, at in pairs(o.state.files or {}) do
      local ino = tonumber(id:match(":(%d+)$"))
      if ino and ino % p == self.env.subtask then
        self.restored[id] = { path = at.path, offset = at.offset,
          skip = at.skip }
      end
    end
  end
end

function Follower:open()
  self.timer = core.timer(function()
    self.timer_armed = false
    self.env.wake()
  end)
  self.scanned = core.monotonic_ms()
  self:scan()
end

function Follower:stop()
  self.stopped = true
  if self.timer then self.timer:close() self.timer = nil end
  for _, file in pairs(self.files) do file.reader:close() end
  self.files = {}
end

--- The runtime instance of a followed read_lines node (see
-- weir.sources); glob(pattern) expands a pattern (weir.sources.glob).
function M.read_lines(node, emit, env, glob)
  local f = setmetatable({ node = node, emit = emit, env = env,
    glob = glob, files = {}, restored = {} }, Follower)
  return { open = function() f:open() end,
    produce = function(n) return f:produce(n) end,
    snapshot = function(_, skip) return f:snapshot(skip) end,
    restore = function(olds) f:restore(olds) end,
    drain = function() f:drain() end,
    stop = function() f:stop() end, close = function() f:stop() end }
end

return M
