--- Lines of a file, read by byte count: the one reader every line source
-- uses, so that they all agree on what a line is and where it starts.
-- It guarantees:
-- * A line is the bytes up to the next "\n", NUL bytes and any other byte
--   value included; the record is those bytes without the "\n".
-- * The last line of a file is a line even without a final "\n".
-- * One "\r" at the end of a line (before its "\n", or at the end of the
--   file) is stripped unless keep_cr; any other "\r" stays.
-- * next() returns with each line the number of bytes it consumed in the
--   file: the line, its stripped "\r" and its "\n". Offsets summed from
--   these counts are exact byte offsets, so a position taken between two
--   lines, given back to seek(), resumes at the next line.
-- It reads with pread(2) into its own buffer and finds line ends with
-- memchr, without stdio: no NUL ever ends a line early, and no lock is
-- taken per line.
local core = require "weir.core"
local ffi = require "ffi"

ffi.cdef [[
int open(const char *path, int flags, ...);
int close(int fd);
intptr_t pread(int fd, void *buf, size_t count, int64_t offset);
intptr_t pread64(int fd, void *buf, size_t count, int64_t offset);
uint8_t *memchr(const void *s, int c, size_t n);
void *memmove(void *dest, const void *src, size_t n);
char *strerror(int errnum);
]]

local C = ffi.C
local memchr, ffi_string, tonumber = C.memchr, ffi.string, tonumber
-- pread's offset is an off_t: 64 bits on 64-bit systems, and on 32-bit
-- ones only in pread64.
local pread = ffi.abi("64bit") and C.pread or C.pread64

local O_RDONLY = 0
local NEWLINE, CR = 10, 13
local BUFFER_BYTES = 65536  -- first buffer size; doubles for longer lines

local M = {}
local Reader = {}
Reader.__index = Reader

local function errno_message()
  return ffi_string(C.strerror(ffi.errno()))
end

-- Closes the descriptor in box[0] once, whether close() or the garbage
-- collector gets there first.
local function close_box(box)
  if box[0] >= 0 then
    C.close(box[0])
    box[0] = -1
  end
end

--- Opens a regular file for reading lines.
-- @param path the file's path
-- @param opts { keep_cr = true to keep the "\r" of "\r\n" line ends,
--   context = what read errors start with, e.g. "read_lines (job.lua:3)",
--   complete_lines = true for a file that may still grow: a last line
--   without "\n" is not returned until its "\n" is there } (optional)
-- @return a reader, whose size_bytes is the file's size in bytes; or nil
--   and a message naming the path ("PATH: No such file or directory",
--   "PATH is a directory, ...") if it cannot be opened or is not a file
function M.open(path, opts)
  local st, err = core.stat(path)
  if st and st.type == "directory" then
    return nil, path .. " is a directory, not a file (for the files in it "
      .. "give a glob: " .. path:gsub("/+$", "") .. "/*)"
  elseif st and st.type ~= "file" then
    return nil, path .. " is not a regular file"
  end
  local fd = C.open(path, O_RDONLY)
  if fd < 0 then return nil, path .. ": " .. errno_message() end
  if not st then  -- opened although the stat failed: report the stat
    C.close(fd)
    return nil, path .. ": " .. tostring(err)
  end
  local box = ffi.gc(ffi.new("int[1]", fd), close_box)
  return setmetatable({ path = path, size_bytes = st.size, box = box,
    keep_cr = opts and opts.keep_cr or false,
    complete_lines = opts and opts.complete_lines or false,
    context = opts and opts.context and opts.context .. ": " or "",
    buf = ffi.new("uint8_t[?]", BUFFER_BYTES), cap = BUFFER_BYTES,
    pos = 0, len = 0, file_offset = 0 }, Reader)
end

--- Makes the next line read start at byte `offset` of the file (0: the
-- start). Discards what was buffered.
function Reader:seek(offset)
  self.pos, self.len, self.file_offset = 0, 0, offset
end

-- Reads more of the file into the buffer, keeping its unconsumed bytes
-- (moved to the front, the buffer doubled if they fill it). Returns the
-- address of the first "\n" among the new bytes, or nil at the end of the
-- file. Raises on a read error.
function Reader:fill()
  local buf, pos, len, cap = self.buf, self.pos, self.len, self.cap
  local rest = len - pos
  if rest == cap then
    cap = cap * 2
    local bigger = ffi.new("uint8_t[?]", cap)
    ffi.copy(bigger, buf + pos, rest)
    buf = bigger
    self.buf, self.cap = buf, cap
  elseif pos > 0 then
    C.memmove(buf, buf + pos, rest)
  end
  self.pos, self.len = 0, rest
  local got = tonumber(pread(self.box[0], buf + rest, cap - rest,
    self.file_offset))
  if got < 0 then
    error(self.context .. "cannot read " .. self.path .. ": "
      .. errno_message(), 0)
  end
  self.len, self.file_offset = rest + got, self.file_offset + got
  if got == 0 then return nil end
  return memchr(buf + rest, NEWLINE, got), true
end

--- The next line.
-- @return the line (a string, without its "\n" and, unless keep_cr, one
--   "\r" before it) and the bytes it consumed in the file; nil at the end
--   of the file. Raises on a read error ("CONTEXT: cannot read PATH:
--   message").
function Reader:next()
  local buf, pos = self.buf, self.pos
  local nl = memchr(buf + pos, NEWLINE, self.len - pos)
  while nl == nil do
    local more
    nl, more = self:fill()
    buf, pos = self.buf, 0
    if not more then break end
  end
  local n, consumed
  if nl ~= nil then
    n = tonumber(nl - (buf + pos))
    consumed = n + 1
  else
    n = self.len  -- the last line has no "\n"
    if n == 0 or self.complete_lines then return nil end
    consumed = n
  end
  self.pos = pos + consumed
  if n > 0 and buf[pos + n - 1] == CR and not self.keep_cr then n = n - 1 end
  local line = ffi_string(buf + pos, n)
  -- A buffer grown for one long line is let go once it is read: what is
  -- left of it moves to a buffer of the first size.
  local rest = self.len - self.pos
  if self.cap > BUFFER_BYTES and rest < BUFFER_BYTES then
    local small = ffi.new("uint8_t[?]", BUFFER_BYTES)
    ffi.copy(small, buf + self.pos, rest)
    self.buf, self.cap, self.pos, self.len = small, BUFFER_BYTES, 0, rest
  end
  return line, consumed
end

--- Skips the next line without keeping it: the buffer does not grow for
-- a long line and no string is made.
-- @return the bytes the line consumed in the file (as next() counts
--   them); nil at the end of the file. Raises on a read error.
function Reader:skip()
  local skipped = 0
  while true do
    local buf, pos, len = self.buf, self.pos, self.len
    local nl = memchr(buf + pos, NEWLINE, len - pos)
    if nl ~= nil then
      local n = tonumber(nl - (buf + pos)) + 1
      self.pos = pos + n
      return skipped + n
    end
    skipped = skipped + (len - pos)
    self.pos, self.len = 0, 0
    local got = tonumber(pread(self.box[0], buf, self.cap, self.file_offset))
    if got < 0 then
      error(self.context .. "cannot read " .. self.path .. ": "
        .. errno_message(), 0)
    end
    if got == 0 then return skipped > 0 and skipped or nil end
    self.len, self.file_offset = got, self.file_offset + got
  end
end

--- Closes the file; the reader reads nothing after.
function Reader:close()
  close_box(ffi.gc(self.box, nil))
end

return M
