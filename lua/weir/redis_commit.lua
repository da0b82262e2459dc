--- The entries write_redis_stream pre-commits, kept as the Redis protocol
-- (RESP) bytes of the commit scripts' arguments, and the commit script
-- commands made from them (weir.redis_streams). One string.buffer per
-- batch instead of a Lua value per field: adding an entry allocates
-- nothing that lives on, a checkpoint stores one string, and a commit
-- sends the bytes as they are (core conn:command_raw).
--
-- A batch's body holds, per entry, the bulk strings of its field count,
-- then name and value after name and value; it is cut into chunks of at
-- most COMMIT_ENTRIES entries, each committed by one script that first
-- sets its marker (SET NX), so a chunk commits once however often it is
-- sent.
local buffer = require "string.buffer"
local ffi = require "ffi"
local redis = require "weir.redis"

local M = {}

M.COMMIT_ENTRIES = 1024  -- entries per commit script, at most
local OLD_COMMIT_ENTRIES = 4096  -- what earlier versions cut at

--- The commit script: KEYS[1] the stream, KEYS[2] the marker; ARGV[1]
-- the marker's time to live (ms), then per entry its number of fields
-- and its fields and values. Adds nothing when the marker exists.
M.SCRIPT = [[
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
local i, n = 2, #ARGV
while i <= n do
  local k = tonumber(ARGV[i])
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + 2 * k))
  i = i + 2 * k + 1
end
return 1
]]

local bulk = redis.bulk

local Batch = {}
Batch.__index = Batch

--- An empty batch: n entries; chunks { { end_byte, args } } once sealed.
-- @param per_chunk entries per chunk (default COMMIT_ENTRIES)
function M.new(per_chunk)
  return setmetatable({ buf = buffer.new(), n = 0, chunks = {},
    chunk_n = 0, chunk_args = 0, per_chunk = per_chunk or M.COMMIT_ENTRIES },
    Batch)
end

-- Ends the chunk being filled.
function Batch:cut()
  if self.chunk_n == 0 then return end
  self.chunks[#self.chunks + 1] = { #self.buf, self.chunk_args }
  self.chunk_n, self.chunk_args = 0, 0
end

--- Adds an entry: names (sorted) and fields { name = value }.
function Batch:add(names, fields)
  local buf = self.buf
  bulk(buf, #names)
  for i = 1, #names do
    local k = names[i]
    bulk(buf, k)
    bulk(buf, fields[k])
  end
  self.n = self.n + 1
  self.chunk_n = self.chunk_n + 1
  self.chunk_args = self.chunk_args + 1 + 2 * #names
  if self.chunk_n >= self.per_chunk then self:cut() end
end

--- The batch as it is kept in a txn and a checkpoint: { n, body =
-- string, chunks }.
function Batch:seal()
  self:cut()
  return { n = self.n, body = self.buf:tostring(), chunks = self.chunks }
end

--- A sealed batch from the flat entry list of older checkpoints ({
-- count, name, value, ... } per entry), cut where those versions cut it,
-- so a chunk they committed before the crash keeps its marker.
function M.from_entries(e)
  local b, at = M.new(OLD_COMMIT_ENTRIES), 1
  while at <= #e do
    local k, names, fields = e[at], {}, {}
    for j = 1, k do
      names[j] = e[at + 2 * j - 1]
      fields[names[j]] = e[at + 2 * j]
    end
    b:add(names, fields)
    at = at + 2 * k + 1
  end
  return b:seal()
end

--- The commit commands of sealed batch s (RESP bytes), one per chunk:
-- fn(k, bytes) for chunk k (from 1).
-- @param stream the stream; marker the marker's name without its chunk
--   number; ttl_ms the marker's time to live
function M.each_command(s, stream, marker, ttl_ms, fn)
  local body, from = s.body, 0
  local base = ffi.cast("const char *", body)
  for k, chunk in ipairs(s.chunks) do
    local to, args = chunk[1], chunk[2]
    local cmd = buffer.new(to - from + 256)
    cmd:put("*", 6 + args, "\r\n")
    bulk(cmd, "EVAL")
    bulk(cmd, M.SCRIPT)
    bulk(cmd, 2)
    bulk(cmd, stream)
    bulk(cmd, marker .. ":" .. k)
    bulk(cmd, ttl_ms)
    cmd:putcdata(base + from, to - from)
    from = to
    fn(k, cmd:tostring())
  end
end

return M
