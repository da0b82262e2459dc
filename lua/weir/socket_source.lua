--- read_socket: newline-delimited records from any number of TCP clients
-- (weir.pipeline_io), at parallelism 1.
--
-- With wal, each line received goes through a write-ahead log
-- (weir.wal) under the job's checkpoint directory before it enters the
-- job: once the log's group commit made a batch durable, each connection
-- that sent lines in it receives "ok <n>\n", n counting that
-- connection's lines from 1, so its first n lines are durable and will
-- be processed exactly once (a client resends what was not
-- acknowledged). A checkpoint records the log offset read up to; a
-- restore reads the log again from there, and a run with no checkpoint to
-- restore reads the whole log first. Segments are removed once neither a
-- retained checkpoint nor a savepoint needs them. Without wal nothing is
-- acknowledged, and a failure loses what was received since the last
-- checkpoint: at-most-once.
--
-- A line is the bytes up to "\n" (one "\r" before it stripped unless
-- keep_cr); a connection the client ends is closed once its last lines
-- are acknowledged; one that ends mid-line loses that last partial line
-- (never acknowledged), and one that sends a line longer than
-- max_line_bytes is told "error ...\n" and closed. While more than
-- READY_BYTES of received lines wait to be processed, connections are not
-- read (TCP backpressure on the clients).
local core = require "weir.core"
local errors = require "weir.errors"
local options = require "weir.options"
local replay = require "weir.replay"
local wal = require "weir.wal"

local M = {}

--- Bytes of received lines waiting to enter the job above which clients
-- are no longer read.
M.READY_BYTES = 16 * 1024 * 1024

local resume_skip = replay.resume_skip
local fail = errors.fail
local CR = 13

local Source = {}
Source.__index = Source

--- The node fields of p:read_socket(opts) (see weir.pipeline_io);
-- raises naming the option that is wrong.
function M.options(opts)
  local m = "read_socket"
  options.check_known(m, opts, { listen = true, wal = true, keep_cr = true,
    max_line_bytes = true, segment_bytes = true })
  local listen = opts.listen
  if type(listen) ~= "string" or not listen:match("^.+:%d+$") then
    error(m .. ": option 'listen' must be \"HOST:PORT\", e.g. "
      .. "\"127.0.0.1:9000\"", 3)
  end
  for _, k in ipairs({ "wal", "keep_cr" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then
      error(m .. ": option '" .. k .. "' must be a boolean", 3)
    end
  end
  for _, k in ipairs({ "max_line_bytes", "segment_bytes" }) do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v < 1 or v % 1 ~= 0) then
      error(m .. ": option '" .. k .. "' must be an integer >= 1", 3)
    end
  end
  return { listen = listen:gsub("^tcp:", ""), wal = opts.wal == true,
    keep_cr = opts.keep_cr == true,
    max_line_bytes = opts.max_line_bytes or 1024 * 1024,
    segment_bytes = opts.segment_bytes or wal.SEGMENT_BYTES,
    fixed_parallelism = 1 }
end

-- -- Connections ------------------------------------------------------------

-- Lines arrived from connection c: queued for the job, through the log.
function Source:received(c, lines, n)
  if not self.log then
    for i = 1, n do self:ready_line(lines[i], nil) end
    return self.env.wake()
  end
  local bytes = table.concat(lines, "\n", 1, n) .. "\n"
  c.in_flight = c.in_flight + 1
  self.log:add(bytes, function(err, end_offset)
    if err then fail(self.node, "%s", err) end
    local at = end_offset - #bytes
    for i = 1, n do
      at = at + #lines[i] + 1
      self:ready_line(lines[i], at)
    end
    c.durable = c.durable + n
    c.in_flight = c.in_flight - 1
    if not c.closed then
      c.conn:write("ok " .. c.durable .. "\n")
      -- The client ended its side: it has its last acknowledgement.
      if c.eof and c.in_flight == 0 then self:close_conn(c, true) end
    end
    self.env.wake()
  end)
end

function Source:ready_line(line, end_offset)
  local n = self.tail + 1
  self.tail = n
  self.lines[n], self.ends[n] = line, end_offset
  self.ready_bytes = self.ready_bytes + #line
  if self.ready_bytes > M.READY_BYTES and not self.paused then
    self.paused = true
    for c in pairs(self.conns) do c.conn:pause() end
  end
end

-- The bytes of connection c: complete lines go on, a partial one waits.
function Source:data(c, bytes, err)
  local node = self.node
  if not bytes then
    if #c.partial > 0 then
      errors.warn(string.format("read_socket (%s): %s closed the connection "
        .. "mid-line; its last %d bytes (no \"\\n\") are dropped",
        node.defined_at, c.peer, #c.partial))
    end
    c.eof = true
    if c.in_flight > 0 then return end  -- closed after its last "ok"
    return self:close_conn(c, true)
  end
  local data = c.partial .. bytes
  local lines, n, start = {}, 0, 1
  while true do
    local nl = data:find("\n", start, true)
    if not nl then break end
    local last = nl - 1
    if not node.keep_cr and last >= start and data:byte(last) == CR then
      last = last - 1
    end
    n = n + 1
    lines[n] = data:sub(start, last)
    start = nl + 1
  end
  c.partial = data:sub(start)
  if n > 0 then self:received(c, lines, n) end
  if #c.partial > node.max_line_bytes then
    errors.warn(string.format("read_socket (%s): %s sent a line longer "
      .. "than %d bytes; closing the connection", node.defined_at, c.peer,
      node.max_line_bytes))
    c.conn:write("error line longer than " .. node.max_line_bytes
      .. " bytes\n")
    c.partial = ""
    self:close_conn(c, true)
  end
  local _ = err
end

function Source:close_conn(c, graceful)
  if c.closed then return end
  c.closed = true
  self.conns[c] = nil
  if graceful then c.conn:shutdown() else c.conn:close() end
end

function Source:accept(conn)
  if self.draining then return conn:close() end
  local c = { conn = conn, partial = "", durable = 0, in_flight = 0,
    peer = conn:peer() or "a client" }
  self.conns[c] = true
  conn:on_data(function(bytes, err) self:data(c, bytes, err) end)
  if self.paused then conn:pause() end
end

function Source:listen()
  local node = self.node
  local server, err = core.listen("tcp:" .. node.listen, function(conn)
    self:accept(conn)
  end)
  if not server then
    fail(node, "cannot listen on %s: %s", node.listen, err)
  end
  self.server = server
  local address = server:address():gsub("^tcp:", "")
  errors.note(string.format("read_socket (%s) listening on %s%s",
    node.defined_at, address, self.log and ", write-ahead log in "
    .. self.log.dir or " (no write-ahead log: at-most-once)"))
end

-- -- The source -------------------------------------------------------------

function Source:open()
  local node, env = self.node, self.env
  if node.wal then
    if (env.options.checkpoint_interval or 0) <= 0 then
      fail(node, "wal = true needs checkpoints: set checkpoint_interval "
        .. "(--checkpoint-interval MS)")
    end
    local dir = string.format("%s/wal/%s", env.job_dir, node.uid)
    local log, err = wal.open(dir, { segment_bytes = node.segment_bytes })
    if not log then fail(node, "%s", err) end
    self.log = log
    local from = self.position or log.first
    local ok, reader = pcall(log.reader, log, from)
    if not ok then fail(node, "cannot restore: %s", reader) end
    self.replay = reader
    self.position = from
  end
  self:listen()
end

-- Emits one line (its log end offset at: the position after it).
function Source:emit_line(line, at)
  if self.skip then resume_skip(self, self.env) end
  self.emit(line)
  if at then self.position = at end
end

function Source:produce(n)
  local count = 0
  while self.replay and count < n do
    local line, at = self.replay()
    if not line then self.replay = nil break end
    count = count + 1
    self:emit_line(line, at)
  end
  local lines, ends = self.lines, self.ends
  while self.head < self.tail and count < n do
    local k = self.head + 1
    self.head = k
    local line = lines[k]
    lines[k] = nil
    self.ready_bytes = self.ready_bytes - #line
    count = count + 1
    self:emit_line(line, ends[k])
    ends[k] = nil
  end
  if self.paused and self.ready_bytes <= M.READY_BYTES / 2 then
    self.paused = false
    for c in pairs(self.conns) do c.conn:resume() end
  end
  if self.draining and count == 0 and self.head == self.tail
      and (not self.log or self.log:idle()) then
    self.drained = true
    return true, 0
  end
  return false, count, count == 0
end

--- Stops taking input (the job is being cancelled with drain): new
-- connections are refused, open ones closed (a partial line is dropped;
-- lines whose append is in flight still enter the job), and the source
-- ends once everything received was emitted.
function Source:drain()
  self.draining = true
  if self.server then self.server:close() self.server = nil end
  for c in pairs(self.conns) do self:close_conn(c, true) end
  self.env.wake()
end

function Source:snapshot(id, skip, savepoint)
  if not self.log then return {} end
  self.taken[id] = self.position
  if savepoint then
    self.log:pin(id, self.position, { job_dir = self.env.job_dir,
      dir = savepoint, job = self.env.job_name, id = id })
  end
  return { position = self.position,
    skip = skip and skip > 0 and skip or nil }
end

-- Whether the savepoint a pin names still exists: in the job directory
-- (being taken) or as savepoint-<job>-<id>[...] in its target directory.
local function savepoint_exists(where)
  if type(where) ~= "table" then return false end
  if core.stat(string.format("%s/chk-%d", where.job_dir, where.id)) then
    return true
  end
  local prefix = string.format("savepoint-%s-%d", where.job, where.id)
  for _, name in ipairs(core.scandir(where.dir or "") or {}) do
    if name == prefix or name:sub(1, #prefix + 1) == prefix .. "-" then
      return true
    end
  end
  return false
end

--- Checkpoint id completed: segments that neither the newest `retain`
-- completed checkpoints nor a savepoint need are removed.
function Source:notify_complete(id)
  if not self.log or not self.taken[id] then return end
  local done = self.done
  done[#done + 1] = self.taken[id]
  for k in pairs(self.taken) do
    if k <= id then self.taken[k] = nil end
  end
  while #done > (self.env.options.retain or 1) do table.remove(done, 1) end
  local before = math.huge
  for _, at in ipairs(done) do before = math.min(before, at) end
  -- A drained source's final checkpoint read everything: no earlier
  -- checkpoint is restored after a job that finished.
  if self.drained then before = self.position end
  self.log:release(before, savepoint_exists, self.drained)
end

function Source:restore(olds)
  local st = olds[1] and olds[1].state or {}
  if self.node.wal and st.position then
    self.position, self.skip = st.position, st.skip
    self.done[1] = st.position
  end
end

function Source:stop()
  if self.server then self.server:close() self.server = nil end
  for c in pairs(self.conns) do self:close_conn(c) end
  if self.log then self.log:close() self.log = nil end
end

--- The runtime instance of a read_socket node (see weir.pipeline_io).
function M.read_socket(node, emit, env)
  local s = setmetatable({ node = node, emit = emit, env = env,
    conns = {}, lines = {}, ends = {}, head = 0, tail = 0, ready_bytes = 0,
    taken = {}, done = {} }, Source)
  return { open = function() s:open() end,
    produce = function(n) return s:produce(n) end,
    snapshot = function(id, skip, savepoint)
      return s:snapshot(id, skip, savepoint)
    end,
    restore = function(olds) s:restore(olds) end,
    notify_complete = function(id) s:notify_complete(id) end,
    commit = function() end,
    drain = function() s:drain() end,
    stop = function() s:stop() end, close = function() s:stop() end }
end

return M
