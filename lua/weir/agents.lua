--- The coordinator's side of weir agents (weir run --agents; the agent's
-- side is weir.agent): connections to every agent, authenticated both
-- ways with the shared secret, the slots they offer, the placement of
-- worker processes on them, and worker processes started through them
-- for weir.supervisor.
local core = require "weir.core"
local errors = require "weir.errors"
local fsutil = require "weir.fsutil"
local handshake = require "weir.handshake"
local protocol = require "weir.protocol"

local M = {}

M.CONNECT_TIMEOUT_MS = 10000  -- to reach every agent and get its offer

local guard = errors.guard

local Pool = {}
Pool.__index = Pool

-- A message (bytes) from agent a, or its connection's end (nil): each
-- worker process it ran counts as exited, with the cause.
function Pool:on_message(a, bytes)
  if not bytes then
    if a.conn then a.conn:close() a.conn = nil end
    a.reconnecting = nil
    if a.lost then return end
    a.lost = true
    local cause = "agent " .. a.address .. " was lost"
    if not a.slots then
      a.error = a.error or string.format("agent %s closed the connection "
        .. "before it offered its slots: do it and this coordinator share "
        .. "the secret (--secret-file; the agent's log says why)",
        a.address)
    end
    for w, proc in pairs(a.procs) do
      a.procs[w] = nil
      proc.on_exit(-1, 0, cause)
    end
    return
  end
  a.last_seen = core.monotonic_ms()
  local msg, bad = protocol.decode(bytes, "agent")
  if not msg then
    errors.warn("agent " .. a.address .. " sent a bad message: " .. bad)
    return self:on_message(a, nil)
  end
  if msg.t == "offer" then
    a.slots, a.host = msg.slots, msg.host
    if a.lost then
      -- An agent lost before is back: it gets the script again.
      a.lost, a.reconnecting = false, nil
      errors.note("agent " .. a.address .. " is back with " .. a.slots
        .. " slots")
      a.conn:send(protocol.encode("ship", { sha = self.script_sha,
        bytes = self.script_bytes }))
    end
  elseif msg.t == "exited" then
    local proc = a.procs[msg.worker]
    if proc then
      a.procs[msg.worker] = nil
      proc.on_exit(msg.status, msg.signal, msg.message and string.format(
        "worker %d could not start on agent %s: %s", msg.worker, a.address,
        msg.message), msg.fatal)
    end
  end
end

-- Connects to agent a and authenticates both ways: the agent challenges
-- this side first, then this side the agent (its first frame after).
function Pool:connect(a)
  local nonce = assert(core.random_bytes(handshake.NONCE_BYTES))
  local ok, err = core.connect("tcp:" .. a.address, guard(function(cerr,
    conn)
    a.connecting = nil
    if cerr then
      a.error = "cannot reach agent " .. a.address .. ": " .. cerr
      a.reconnecting = nil
      return
    end
    if a.closed then return conn:close() end
    a.conn = conn
    local verified = false
    handshake.connect(conn, self.secret, nil,
      { role = "agent", worker = 0, attempt = 0 },
      function() conn:send(nonce) end,
      guard(function(bytes, len)
        if verified or not bytes then return self:on_message(a, bytes) end
        local role, index = core.auth_verify(self.secret, nonce, bytes, len)
        if role ~= "agent" or index ~= 1 then
          a.error = string.format("agent %s did not prove it knows the "
            .. "shared secret (--secret-file)", a.address)
          return self:on_message(a, nil)
        end
        verified = true
        a.local_address = conn:local_address()
      end))
  end))
  if not ok then
    a.error = "cannot reach agent " .. a.address .. ": " .. err
    a.reconnecting = nil
  else
    -- Until connected: closed to give up (a host that does not answer
    -- would hold the job's exit for the kernel's SYN retries).
    a.connecting = err
  end
end

--- Connects to the agents in list ("HOST:PORT,HOST:PORT,...") and waits
-- (at most CONNECT_TIMEOUT_MS) for each one's offer of slots.
-- @param secret_file the shared secret's file, or nil for the default
--   (weir.handshake.shared_secret)
-- @return the pool: slots (in all), host (the address of this host's
--   interface that reaches the first agent, which the workers connect
--   back to), and the methods below; raises a one-line message naming an
--   agent that cannot be reached or did not authenticate
function M.connect(list, secret_file)
  local secret, serr = handshake.shared_secret(secret_file)
  if not secret then error(serr, 0) end
  local self = setmetatable({ secret = secret, agents = {}, slots = 0 },
    Pool)
  for address in list:gmatch("[^,]+") do
    self.agents[#self.agents + 1] = { address = address, procs = {} }
  end
  for _, a in ipairs(self.agents) do self:connect(a) end
  local timed_out = false
  local timer = core.timer(function() timed_out = true end)
  timer:start(M.CONNECT_TIMEOUT_MS, 0)
  local function pending()
    for _, a in ipairs(self.agents) do
      if a.error then timer:close() error(a.error, 0) end
      if not a.slots then return a end
    end
  end
  while pending() and not timed_out do core.run_once() end
  local waiting = pending()
  timer:close()
  if waiting then
    error(string.format("agent %s offered no slots within %d ms",
      waiting.address, M.CONNECT_TIMEOUT_MS), 0)
  end
  for _, a in ipairs(self.agents) do self.slots = self.slots + a.slots end
  self.host = self.agents[1].local_address:match("^tcp:(.*):%d+$")
  return self
end

--- Ships the script to every agent.
-- @param path the script's path (made absolute: an agent that sees the
--   same file there runs it in place, so that files it loads beside
--   itself are found)
-- @param bytes its content
-- @return the script's SHA-256 (hex), its content address
function Pool:ship(path, bytes)
  local sha = core.sha256(bytes)
  self.script_path = fsutil.absolute(path)
  for _, a in ipairs(self.agents) do
    a.conn:send(protocol.encode("ship", { sha = sha, bytes = bytes }))
  end
  self.script_sha, self.script_bytes = sha, bytes
  return sha
end

--- Places `workers` worker processes on the agents that are not lost,
-- spread evenly (worker w on the agent with the most free slots then,
-- of two alike the one given fewer workers so far),
-- and asks the lost ones to come back.
-- @return { [w] = agent } for w = 0 .. workers - 1 | nil, message saying
--   how many slots are short
function Pool:place(workers)
  -- A lost agent is asked again each time: once it answers, its slots
  -- count from the next placement on (a host that came back).
  for _, a in ipairs(self.agents) do
    if a.lost and not a.reconnecting and not a.closed then
      a.reconnecting, a.error = true, nil
      self:connect(a)
    end
  end
  local free, total, names = {}, 0, {}
  for _, a in ipairs(self.agents) do
    if not a.lost then
      free[a] = a.slots
      total = total + a.slots
      names[#names + 1] = string.format("%s: %d", a.address, a.slots)
    end
  end
  if total < workers then
    return nil, string.format("the job needs %d slots, one per worker "
      .. "process; the agents offer %d (%s)", workers, total,
      #names > 0 and table.concat(names, ", ") or "every agent is lost")
  end
  local placement, placed = {}, {}
  for w = 0, workers - 1 do
    local best
    for _, a in ipairs(self.agents) do
      if free[a] and free[a] > 0 and (not best or free[a] > free[best]
          or (free[a] == free[best] and (placed[a] or 0)
            < (placed[best] or 0))) then
        best = a
      end
    end
    free[best] = free[best] - 1
    placed[best] = (placed[best] or 0) + 1
    placement[w] = best
  end
  return placement
end

--- The slots of the agents not lost (a number).
function Pool:slots_left()
  local n = 0
  for _, a in ipairs(self.agents) do
    if not a.lost then n = n + a.slots end
  end
  return n
end

--- Starts worker w on agent a (weir.supervisor's spawn).
-- @param cmd { args = the worker's options, script_args, secret,
--   attempt, dirs = directories the worker must see (absolute) }
-- @param on_exit fn(status, signal, cause, fatal) once it ended (cause:
--   why, when it did not run or its agent was lost; fatal: a restart
--   would meet the same)
-- @return a process with kill(signal) | nil, message
function Pool:spawn(a, w, cmd, on_exit)
  if a.lost then return nil, "agent " .. a.address .. " was lost" end
  local proc = { on_exit = on_exit }
  function proc.kill(_, signal)
    if a.procs[w] == proc and not a.lost then
      a.conn:send(protocol.encode("kill", { worker = w, signal = signal }))
    end
  end
  a.procs[w] = proc
  a.conn:send(protocol.encode("spawn", { worker = w, args = cmd.args,
    script_sha = self.script_sha, script_path = self.script_path,
    script_args = cmd.script_args,
    cwd = core.cwd(), dirs = cmd.dirs or {}, secret = cmd.secret,
    attempt = cmd.attempt }))
  return proc
end

--- Starts the heartbeats with the agents: a ping to each every
-- HEARTBEAT_MS, and an agent silent for timeout_ms (its host down, or the
-- network to it) counts as lost, its workers as exited.
function Pool:watch(timeout_ms)
  self.beat = core.timer(guard(function()
    local now = core.monotonic_ms()
    for _, a in ipairs(self.agents) do
      if not a.lost and a.conn then
        if now - (a.last_seen or now) > timeout_ms then
          errors.warn(string.format("agent %s sent nothing for %d ms",
            a.address, now - a.last_seen))
          self:on_message(a, nil)
        else
          a.conn:send(protocol.encode("ping"))
        end
      end
    end
  end))
  self.beat:start(protocol.HEARTBEAT_MS, protocol.HEARTBEAT_MS)
end

--- Closes every agent connection (the agents kill what still runs).
function Pool:close()
  if self.beat then self.beat:close() self.beat = nil end
  for _, a in ipairs(self.agents) do
    a.lost, a.closed = true, true
    if a.conn then a.conn:close() a.conn = nil end
    if a.connecting then a.connecting:close() a.connecting = nil end
  end
end

return M
