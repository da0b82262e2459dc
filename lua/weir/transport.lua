--- The data connections between a job's workers, and the remote writers
-- that send channels' batches over them with credit-based flow control.
--
-- Each pair of workers shares one connection (a framed Unix domain socket
-- or TCP connection, engine/frame.c): the worker with the higher index
-- connects to the other, both authenticate it first (weir.handshake), and
-- a newer attempt of a worker replaces its connection. A data frame holds
-- the channel id then one batch or event, encoded with string.buffer; a
-- credit frame holds minus the channel id.
--
-- Credits (as Flink's credit-based flow control): a receiver grants
-- CREDITS batches per channel up front and one more for every batch its
-- task takes, and a sender without credit queues its batches, which
-- reports the channel blocked and so stops the producing task
-- (backpressure; see weir.channel). Barriers, watermarks and end of input
-- need no credit but travel in order behind the batches before them.
local buffer = require "string.buffer"
local ffi = require "ffi"
local core = require "weir.core"
local channel = require "weir.channel"
local errors = require "weir.errors"
local handshake = require "weir.handshake"
local plan_mod = require "weir.plan"

local M = {}

M.CREDITS = 8                 -- batches a receiver grants per channel

local encode = buffer.encode
local guard = errors.guard
-- Data frames go out from a string.buffer and come in as a pointer into
-- the receive buffer: neither becomes a Lua string (a string of a
-- batch's size, interned twice per batch, costs more than the batch).
local uint8_ptr = ffi.typeof("const uint8_t *")
local function default_send_raw()
  return ffi.cast("int (*)(void *, const uint8_t *, size_t)",
    core.send_raw_fn())
end

-- The error for a batch of channel cid that string.buffer refused (err):
-- it names the operator that produced the batch, the first record that
-- cannot be encoded and the path of the value in it. The script put that
-- value there, so running the job again would only fail again: the error
-- is fatal (no restart).
local function unsendable(plan, cid, item, err)
  local edge = plan.edges[channel.edge_of(cid)]
  local where = edge and errors.describe(edge.from) or "an operator"
  local probe = buffer.new()
  for i = 1, item.n or 0 do
    if not pcall(probe.encode, probe, item[i]) then
      local record = errors.repr(item[i])
      local path, t = require("weir.state").find_unserializable(item[i],
        "record")
      local message = path and string.format(errors.messages.unsendable,
        where, record, path, t) or string.format(
        errors.messages.unsendable_other, where, record, tostring(err))
      return errors.new(message, { fatal = true })
    end
    probe:reset()
  end
  return errors.new(where .. " cannot send to another worker: "
    .. tostring(err), { fatal = true })
end

local Transport = {}
Transport.__index = Transport

--- The data connections of worker `worker` of a job's `workers`, for the
-- tasks of host (a weir.host, whose remote_writer this sets).
-- @param opts { worker = index, workers = count, plan = the job's plan,
--   send_raw = fn(handle, pointer, length) -> 0 or a negative errno
--   (default: engine/frame.c's, which writes a frame to a connection's
--   handle; a spec passes its own) }
-- @return the Transport; set on_connected (fn()) to hear when every peer
--   is connected
function M.new(host, opts)
  local self = setmetatable({ host = host, worker = opts.worker,
    workers = opts.workers, plan = opts.plan,
    send_raw = opts.send_raw or default_send_raw(),
    peers = {},          -- worker index -> data connection
    handles = {},        -- worker index -> its conn:handle()
    peer_count = 0,
    peer_attempts = {},  -- worker index -> its connection's attempt
    writers = {},        -- channel id -> remote writer state
    out = buffer.new(), incoming = buffer.new() }, Transport)
  host.remote_writer = function(cid, peer)
    return self:remote_writer(cid, peer)
  end
  return self
end

--- Sends batch or event item of channel cid to worker peer. Raises when
-- item cannot be encoded (fatal, see unsendable) or the send fails.
function Transport:send_data(peer, cid, item)
  local out = self.out
  out:reset()
  out:encode(cid)
  local ok, err = pcall(out.encode, out, item)
  if not ok then error(unsendable(self.plan, cid, item, err), 0) end
  local r = self.send_raw(self.handles[peer], out:ref())
  if r < 0 then
    error(string.format("cannot send to worker %d: %s", peer,
      core.strerror(r)), 0)
  end
end

--- The writer of channel cid whose consumer runs on worker peer (see
-- weir.channel.writer): it queues batches until the peer is connected
-- and has granted credit; events wait behind the batches before them. It
-- is blocked while anything is queued.
function Transport:remote_writer(cid, peer)
  -- queue[head..tail] waits to be sent.
  local state = { credits = M.CREDITS, queue = {}, head = 1, tail = 0 }
  self.writers[cid] = state
  function state.pump()
    local q = state.queue
    while self.peers[peer] and state.head <= state.tail do
      local item = q[state.head]
      if item.n then
        if state.credits <= 0 then break end
        state.credits = state.credits - 1
      end
      self:send_data(peer, cid, item)
      q[state.head] = nil
      state.head = state.head + 1
    end
  end
  return channel.writer(function(item)
    if state.head > state.tail and self.peers[peer]
        and (not item.n or state.credits > 0) then
      if item.n then state.credits = state.credits - 1 end
      self:send_data(peer, cid, item)
      return true
    end
    state.tail = state.tail + 1
    state.queue[state.tail] = item
    state.pump()
  end, function() return state.head <= state.tail end)
end

--- A data frame arrived (payload: a pointer valid during the call, len
-- bytes): a batch or event goes into its channel's queue, a credit to its
-- writer; the host's tasks wake.
function Transport:on_data(payload, len)
  local incoming = self.incoming
  local cid = incoming:set(ffi.cast(uint8_ptr, payload), len):decode()
  if cid > 0 then
    self.host.channels[cid]:put(incoming:decode())
  else
    local state = self.writers[-cid]
    state.credits = state.credits + 1
    state.pump()
  end
  self.host:wake()
end

--- Whether a connection to every other worker is up.
function Transport:all_connected()
  return self.peer_count == self.workers - 1
end

local function pump_all(self)
  for _, state in pairs(self.writers) do state.pump() end
end

--- Worker j's connection conn is up (authenticated): queued batches go
-- out; on_connected runs once every peer is.
function Transport:add_peer(j, conn)
  self.peers[j], self.handles[j] = conn, conn:handle()
  self.peer_count = self.peer_count + 1
  pump_all(self)
  if self:all_connected() and self.on_connected then self.on_connected() end
end

--- The frame handler of the connection with worker j, an authenticated
-- peer: a frame over the size limit from it is a fault of the job's own
-- processes, which fails the attempt. Its end of stream is not: a peer
-- that stops or dies closes its connections, and the coordinator sees
-- its exit.
function Transport:data_handler(j)
  return guard(function(b, len, code)
    if b then return self:on_data(b, len) end
    if code ~= "EOF" and code ~= "ECONNRESET" then
      error(string.format("the connection with worker %d failed: %s", j,
        tostring(len)), 0)
    end
  end)
end

--- Admits an authenticated data connection from worker j of attempt
-- claimed (only workers with a higher index connect to this one); a
-- newer attempt of j replaces its connection. See weir.handshake.accept.
-- @param attempt this worker's attempt
-- @return the connection's frame handler, or nil and why it is refused
function Transport:admit_peer(role, j, claimed, conn, attempt)
  local w = self.worker
  if role ~= "data" or j <= w or j >= self.workers then
    return nil, "worker " .. w .. " does not accept it"
  end
  local verdict, reason = handshake.admit(self.peer_attempts[j], claimed,
    attempt)
  if not verdict then return nil, reason end
  self.peer_attempts[j] = claimed
  if verdict == "replace" then
    self.peers[j]:close()
    self.peers[j], self.handles[j] = conn, conn:handle()
    pump_all(self)
  else
    self:add_peer(j, conn)
  end
  return self:data_handler(j)
end

--- Makes every remote input channel of the host's tasks return a credit
-- to its producer for each batch the task takes.
function Transport:grant_credits()
  local host = self.host
  for _, task in ipairs(host.tasks) do
    local k = 0
    for _, edge in ipairs(task.chain.inputs) do
      for _, i in ipairs(plan_mod.producers(edge, task.subtask)) do
        k = k + 1
        local producer = host:worker_of(i)
        if producer ~= self.worker then
          local credit = encode(-channel.id(edge, i, task.subtask))
          task.channels[k].on_take = function()
            self.peers[producer]:send(credit)
          end
        end
      end
    end
  end
end

--- Listens for the data connections of higher-index workers on address
-- ("tcp:HOST:PORT" or a Unix socket path). Raises when it cannot.
-- @return the address it listens on (with the port the system chose)
function Transport:listen(address, secret, attempt)
  self.server = assert(core.listen(address, guard(function(conn)
    handshake.accept(conn, secret, "pointer", "worker " .. self.worker,
      function(role, j, claimed, c)
        return self:admit_peer(role, j, claimed, c, attempt)
      end)
  end)))
  return self.server:address()
end

--- Connects to every lower-index worker (addresses[j + 1] is worker j's).
-- A connection that fails raises on the loop (the attempt fails).
function Transport:connect(addresses, secret, attempt)
  local w = self.worker
  for j = 0, w - 1 do
    assert(core.connect(addresses[j + 1], guard(function(cerr, conn)
      if cerr then
        error("cannot connect to worker " .. j .. ": " .. cerr, 0)
      end
      handshake.connect(conn, secret, "pointer",
        { role = "data", worker = w, attempt = attempt },
        guard(function() self:add_peer(j, conn) end), self:data_handler(j))
    end)))
  end
end

--- Stops listening and closes every data connection.
function Transport:close()
  if self.server then self.server:close() self.server = nil end
  for j, conn in pairs(self.peers) do
    conn:close()
    self.peers[j] = nil
  end
end

return M
