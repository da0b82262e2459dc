--- The worker side of a job on worker processes (`weir worker`, started
-- by the coordinator, weir.supervisor).
--
-- Every worker runs the same script with the same arguments, builds the
-- same graph, and hosts the subtasks whose index modulo the number of
-- workers is its own (weir.host). It talks to the coordinator over a
-- control connection (the messages of weir.protocol) and to the other
-- workers over data connections (weir.transport); heartbeats go from a
-- thread of their own on a connection of their own (engine/heartbeat.c).
-- A worker dies with its coordinator: nothing may be written for a job
-- whose coordinator is gone, and a restarted job must not meet it.
local core = require "weir.core"
local checkpoint = require "weir.checkpoint_storage"
local errors = require "weir.errors"
local handshake = require "weir.handshake"
local host_mod = require "weir.host"
local protocol = require "weir.protocol"
local transport = require "weir.transport"

local M = {}

M.METRICS_MS = 1000           -- a worker's metrics period

local guard = errors.guard

local Worker = {}
Worker.__index = Worker

-- Sends message t with fields to the coordinator (while connected).
function Worker:send(t, fields)
  if self.control then self.control:send(protocol.encode(t, fields)) end
end

-- Tells the coordinator this worker is connected to every peer (once).
function Worker:send_ready()
  if self.ready_sent then return end
  self.ready_sent = true
  self:send("ready")
end

-- What the tasks report to the coordinator (see weir.task_checkpoint).
function Worker:coordinator_proxy()
  local host = self.host
  return {
    ack = function(_, task_id, id, files, timing)
      self:send("ack", { task = task_id, id = id, files = files,
        sync_ms = timing.sync_ms, async_ms = timing.async_ms,
        alignment_ms = timing.alignment_ms })
    end,
    decline = function(_, id, reason)
      self:send("decline", { id = id, reason = reason })
    end,
    task_ended = function(_, task_id)
      self:send("ended", { task = task_id,
        late_records = host.stats.late_records,
        failed_records = host.stats.failed_records })
    end,
  }
end

-- Stops the timers and closes the data connections.
function Worker:close_handles()
  if self.heartbeat then self.heartbeat:stop() self.heartbeat = nil end
  if self.metrics_timer then
    self.metrics_timer:close()
    self.metrics_timer = nil
  end
  self.transport:close()
end

-- Closes everything and exits the process with status.
function Worker:exit(status)
  self:close_handles()
  self.host:close()
  if self.profile then require("jit.p").stop() end
  core.exit(status)
end

-- Stops after the coordinator's stop: the last metrics are sent, every
-- handle closes, and the loop (then the process) ends once the control
-- connection has flushed.
function Worker:stop_gracefully()
  self:send("metrics", { samples = self.host:metrics() })
  self:close_handles()
  if self.control then self.control:shutdown() self.control = nil end
end

-- A message from the coordinator (bytes), or its end (nil).
function Worker:on_control(bytes)
  -- The coordinator is gone: nothing may be committed any more.
  if not bytes then return self:exit(1) end
  local msg, bad = protocol.decode(bytes, "coordinator")
  if not msg then error("the coordinator sent a bad message: " .. bad, 0) end
  local host, t = self.host, msg.t
  if t == "peers" then
    self.transport:connect(msg.addresses, self.secret, self.attempt)
    if self.transport:all_connected() then self:send_ready() end
  elseif t == "start" then
    host:start()
  elseif t == "trigger" then
    host:trigger(msg.id, msg.final, msg.savepoint)
    host:wake()
  elseif t == "complete" then
    host:complete(msg.id)
  elseif t == "commit" then
    host:commit()
  elseif t == "drain" then
    host:drain()
  elseif t == "abort" then
    host:abort(msg.id)
  elseif t == "stop" then
    host:stop()
  end
end

-- Builds, restores and opens this worker's tasks and listens for its
-- peers; an error here is in the job's set-up (a missing input, an
-- unusable directory) and fails the job without restarts.
-- @return the address the worker's data connections reach it at
function Worker:set_up()
  local host, ctx = self.host, self.ctx
  host:build()
  self.transport:grant_credits()
  local loaded
  if ctx.restore_path then
    local lerr
    -- The coordinator verified the checkpoint's shared files just now.
    loaded, lerr = checkpoint.load(ctx.restore_path, true)
    if not loaded then error("cannot restore from " .. ctx.restore_path
      .. ": " .. lerr, 0) end
  end
  host:restore(loaded)
  host:open()
  host.on_stop = function() self:stop_gracefully() end
  -- Data connections: a Unix domain socket in the run directory, or TCP
  -- on a port the system picks (on the host's address an agent gave),
  -- announced to the coordinator.
  local address = self.job.options.transport == "tcp"
    and "tcp:" .. (ctx.data_host or "127.0.0.1") .. ":0"
    or ctx.run_dir .. "/worker-" .. self.index .. ".sock"
  return self.transport:listen(address, self.secret, self.attempt)
end

-- Once the control connection is authenticated: heartbeats, set-up and
-- the hello to the coordinator.
function Worker:set_up_control(conn)
  self.control = conn
  local w = self.index
  -- Heartbeats come from a thread of their own, on a connection of their
  -- own: they go on while this thread is busy for long (a large
  -- snapshot), and stop only with the process.
  local heartbeat, herr = core.heartbeat(self.ctx.coordinator,
    protocol.encode("hb", { worker = w }), protocol.HEARTBEAT_MS,
    { secret = self.secret, worker = w, attempt = self.attempt })
  if not heartbeat then
    error("cannot send heartbeats to the coordinator: " .. herr, 0)
  end
  self.heartbeat = heartbeat
  local address = self:set_up()
  -- Peers connect once every worker said hello: this worker's socket is
  -- listening by then.
  self:send("hello", { worker = w, address = address })
  self.metrics_timer = core.timer(function()
    self:send("metrics", { samples = self.host:metrics() })
  end)
  self.metrics_timer:start(M.METRICS_MS, M.METRICS_MS)
  self.set_up_done = true
end

-- The worker failed with err (a weir.errors error): it tells the
-- coordinator why (a failure during set-up is fatal: a restart would
-- fail the same way), flushes that and exits.
function Worker:fail(err)
  if os.getenv("WEIR_DEBUG") and err.traceback then
    io.stderr:write(err.traceback, "\n")
  end
  self:send("error", { worker = self.index,
    message = tostring(err.message),
    fatal = not self.set_up_done or err.fatal == true })
  self:close_handles()
  -- The host stops without the graceful stop's goodbye.
  self.host.on_stop = nil
  self.host:stop()
  if self.control then self.control:shutdown() end
  core.drain()
  self:exit(1)
end

--- Runs this worker's share of a job (weir.launch.prepare) until the
-- coordinator says stop; exits the process (status 0 after a stop, 1
-- after a failure, which the coordinator was told about).
-- @param job the prepared job
-- @param ctx the worker's launch context (weir.launch): { coordinator =
--   socket, coordinator_pid, worker = index, workers = count, parallelism,
--   run_dir, restore_path, data_host = the address its data connections
--   listen on (TCP; default 127.0.0.1) }
function M.run(job, ctx)
  local w = ctx.worker
  core.die_with_parent(ctx.coordinator_pid)
  local secret, attempt = handshake.take_worker_env()
  if not secret then
    errors.warn("worker " .. w .. ": " .. attempt)
    core.exit(1)
  end
  -- SIGINT (Ctrl-C reaches the whole process group) and SIGTERM are the
  -- coordinator's to act on: it stops the workers as a cancel does.
  local signals = { core.signal("INT", function() end),
    core.signal("TERM", function() end) }
  local host = host_mod.new(job, w, ctx.workers)
  local self = setmetatable({ job = job, ctx = ctx, index = w, host = host,
    secret = secret, attempt = attempt, signals = signals }, Worker)
  self.transport = transport.new(host, { worker = w, workers = ctx.workers,
    plan = job.plan })
  self.transport.on_connected = function() self:send_ready() end
  host.coord = self:coordinator_proxy()
  -- WEIR_PROFILE=FILE profiles each worker with LuaJIT's profiler into
  -- FILE.<worker> (WEIR_PROFILE_MODE: its options, default "Fl").
  self.profile = os.getenv("WEIR_PROFILE")
  if self.profile then
    require("jit.p").start(os.getenv("WEIR_PROFILE_MODE") or "Fl",
      self.profile .. "." .. w)
  end
  local ok, err = xpcall(function()
    assert(core.connect(ctx.coordinator, guard(function(cerr, conn)
      if cerr then error("cannot reach the coordinator: " .. cerr, 0) end
      handshake.connect(conn, secret, nil,
        { role = "control", worker = w, attempt = attempt },
        guard(function() self:set_up_control(conn) end),
        guard(function(bytes) self:on_control(bytes) end))
    end)))
    core.run()
  end, errors.handler)
  if not ok then self:fail(err) end
  self:exit(0)
end

return M
