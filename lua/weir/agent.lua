--- weir agent: the long-running process on each host that starts and
-- stops the worker processes of coordinators (weir run --agents; the
-- coordinator's side is weir.agents), as Flink's TaskManagers offer
-- slots to a JobManager.
--
-- A coordinator connects over TCP and both ends prove they know the
-- shared secret (weir.handshake.shared_secret): the agent challenges the
-- coordinator (role "agent"), then answers the coordinator's challenge,
-- so neither a foreign coordinator nor a foreign agent learns a job's
-- script or secret. The agent offers its slots; the coordinator ships
-- the job's script, kept under the work directory by its SHA-256 (a
-- script shipped again is not written again), and asks for one worker
-- process per subtask slot. A worker starts in the coordinator's working
-- directory, which must be on a file system this host sees too (as its
-- inputs, outputs and checkpoints), and dies with the agent. When the
-- coordinator's connection ends the agent kills that coordinator's
-- workers: nothing runs for a job whose coordinator is gone.
local core = require "weir.core"
local errors = require "weir.errors"
local handshake = require "weir.handshake"
local protocol = require "weir.protocol"
local rundir = require "weir.rundir"

local M = {}

local guard = errors.guard

local Agent = {}
Agent.__index = Agent

-- Writes the shipped script bytes under its digest, once.
function Agent:store_script(sha, bytes)
  if core.sha256(bytes) ~= sha then
    error("the shipped script does not match its digest " .. sha, 0)
  end
  local path = self.scripts .. "/" .. sha .. ".lua"
  if core.stat(path) then return path end
  local tmp = path .. ".tmp." .. core.getpid()
  local f = assert(io.open(tmp, "wb"))
  f:write(bytes)
  assert(f:close())
  assert(core.rename(tmp, path))
  return path
end

-- The number of worker processes running for every coordinator.
function Agent:busy_slots()
  local n = 0
  for session in pairs(self.sessions) do
    for _ in pairs(session.procs) do n = n + 1 end
  end
  return n
end

-- Starts worker msg.worker of session s (a "spawn" message); tells the
-- coordinator when it ends, or why it could not start.
function Agent:spawn(s, msg)
  -- fatal: a restart would meet the same (a directory this host lacks).
  local function refuse(message, fatal)
    s.conn:send(protocol.encode("exited", { worker = msg.worker,
      status = -1, signal = 0, message = message, fatal = fatal }))
  end
  local script = s.scripts[msg.script_sha]
  if not script then return refuse("its script was not shipped") end
  -- The same script at the same path on this host (a shared file system)
  -- runs in place: files it loads from beside itself are there too.
  local f = io.open(msg.script_path, "rb")
  if f then
    if core.sha256(f:read("*a") or "") == msg.script_sha then
      script = msg.script_path
    end
    f:close()
  end
  if self:busy_slots() >= self.slots then
    return refuse(string.format("agent %s has all its %d slots taken",
      self.address, self.slots))
  end
  local st = core.stat(msg.cwd)
  if not st or st.type ~= "directory" then
    return refuse(string.format("the coordinator's working directory %s "
      .. "is not on host %s: a job's script directory, inputs, outputs "
      .. "and checkpoints must be on a file system every host sees",
      msg.cwd, self.host), true)
  end
  for _, d in ipairs(msg.dirs) do
    st = core.stat(d)
    if not st or st.type ~= "directory" then
      return refuse(string.format("the job's checkpoint directory %s is "
        .. "not on host %s: checkpoints must be on a file system every "
        .. "host sees", d, self.host), true)
    end
  end
  local args = { "worker", "--coordinator-pid", tostring(core.getpid()),
    "--run-dir", s.run_dir, "--data-host", self.host }
  for _, a in ipairs(msg.args) do args[#args + 1] = a end
  args[#args + 1] = script
  for _, a in ipairs(msg.script_args) do args[#args + 1] = a end
  local w = msg.worker
  local proc, err
  proc, err = core.spawn(core.exepath(), args,
    handshake.worker_env(msg.secret, msg.attempt), guard(function(status,
      signal)
      if s.procs[w] == proc then s.procs[w] = nil end
      proc:close()
      if not s.closed then
        s.conn:send(protocol.encode("exited", { worker = w, status = status,
          signal = signal }))
      end
      self:reap(s)
    end), msg.cwd)
  if not proc then return refuse("cannot start a worker process: " .. err) end
  s.procs[w] = proc
  errors.note(string.format("agent: started worker %d of coordinator %s "
    .. "(attempt %d, pid %d)", w, s.peer, msg.attempt, proc:pid()))
end

-- Removes session s's run directory once its coordinator left and its
-- workers exited.
function Agent:reap(s)
  if s.closed and next(s.procs) == nil and not s.reaped then
    s.reaped = true
    rundir.remove(s.run_dir)
    self.sessions[s] = nil
  end
end

-- A message (bytes) from session s's coordinator, or the connection's
-- end (nil).
function Agent:on_message(s, bytes)
  if not bytes then
    s.closed = true
    s.conn:close()
    for _, proc in pairs(s.procs) do proc:kill("KILL") end
    errors.note(string.format("agent: coordinator %s left; %s", s.peer,
      next(s.procs) and "its workers are killed" or "no workers ran"))
    return self:reap(s)
  end
  s.last_seen = core.monotonic_ms()
  local msg, bad = protocol.decode(bytes, "coordinator", "agent")
  if not msg then
    errors.warn("agent: coordinator " .. s.peer .. " sent a bad message: "
      .. bad)
    return self:on_message(s, nil)
  end
  if msg.t == "ship" then
    s.scripts[msg.sha] = self:store_script(msg.sha, msg.bytes)
  elseif msg.t == "spawn" then
    self:spawn(s, msg)
  elseif msg.t == "kill" then
    local proc = s.procs[msg.worker]
    if proc then proc:kill(msg.signal) end
  end
end

-- A connection that proved the secret as a coordinator: answer its
-- challenge, offer the slots, then take its messages.
function Agent:admit(role, conn)
  if role ~= "agent" then return nil, "it is not a coordinator" end
  local s = { conn = conn, procs = {}, scripts = {},
    peer = conn:peer() or "?", run_dir = rundir.create() }
  local challenged = false
  return guard(function(bytes)
    if bytes and not challenged then
      challenged = true
      if #bytes ~= handshake.NONCE_BYTES then
        errors.warn("agent: coordinator " .. s.peer .. " sent no challenge")
        return self:on_message(s, nil)
      end
      self.sessions[s] = true
      s.last_seen = core.monotonic_ms()
      conn:send(assert(core.auth_respond(self.secret, bytes, "agent", 1, 0)))
      conn:send(protocol.encode("offer", { slots = self.slots,
        host = self.host }))
      return
    end
    if not challenged then
      conn:close()
      return rundir.remove(s.run_dir)
    end
    return self:on_message(s, bytes)
  end)
end

--- Runs an agent until SIGTERM or SIGINT, which kill its workers.
-- @param opts { listen = "HOST:PORT" (HOST must be an address, never
--   0.0.0.0 by default), slots = worker processes it runs at once,
--   work_dir = where shipped scripts are kept (default ~/.cache/weir),
--   secret_file = path or nil (weir.handshake.shared_secret) }
-- @return the exit status; raises a one-line message when it cannot
--   listen or read its secret
function M.run(opts)
  local host, port = tostring(opts.listen):match("^(.+):(%d+)$")
  if not host then
    error("weir agent: --listen must be HOST:PORT, got " ..
      tostring(opts.listen), 0)
  end
  if not opts.slots or opts.slots < 1 or opts.slots % 1 ~= 0 then
    error("weir agent: --slots must be a whole number >= 1", 0)
  end
  local secret, serr = handshake.shared_secret(opts.secret_file)
  if not secret then error("weir agent: " .. serr, 0) end
  local work_dir = opts.work_dir or ((os.getenv("HOME") or "/tmp")
    .. "/.cache/weir")
  local self = setmetatable({ secret = secret, slots = opts.slots,
    host = host, sessions = {}, scripts = work_dir .. "/scripts" }, Agent)
  core.mkdir(work_dir, tonumber("700", 8))
  core.mkdir(self.scripts, tonumber("700", 8))
  local st = core.stat(self.scripts)
  if not st or st.type ~= "directory" then
    error("weir agent: cannot create " .. self.scripts .. " (--work-dir)", 0)
  end
  local server, err = core.listen("tcp:" .. host .. ":" .. port,
    guard(function(conn)
      handshake.accept(conn, secret, nil, "agent " .. self.address,
        function(role, _, _, c) return self:admit(role, c) end,
        "shared secret (--secret-file)")
    end))
  if not server then
    error(string.format("weir agent: cannot listen on %s: %s", opts.listen,
      err), 0)
  end
  self.address = server:address():gsub("^tcp:", "")
  errors.note(string.format("agent listening on %s with %d slots",
    self.address, self.slots))
  -- Heartbeats both ways: this agent lives; a coordinator silent past
  -- AGENT_TIMEOUT_MS (its host down, or the network between) is lost.
  local beat = core.timer(guard(function()
    local now = core.monotonic_ms()
    for session in pairs(self.sessions) do
      if now - session.last_seen > protocol.AGENT_TIMEOUT_MS then
        errors.warn(string.format("agent: coordinator %s sent nothing for "
          .. "%d ms", session.peer, now - session.last_seen))
        self:on_message(session, nil)
      elseif not session.closed then
        session.conn:send(protocol.encode("alive"))
      end
    end
  end))
  beat:start(protocol.HEARTBEAT_MS, protocol.HEARTBEAT_MS)
  local function stop()
    beat:close()
    for s in pairs(self.sessions) do
      for _, proc in pairs(s.procs) do proc:kill("KILL") end
      rundir.remove(s.run_dir)
    end
    server:close()
    core.stop()
  end
  local signals = { core.signal("TERM", stop), core.signal("INT", stop) }
  core.run()
  for _, sig in ipairs(signals) do sig:close() end
  return 0
end

return M
