--- The coordinator's side of a job on worker processes (the `weir run`
-- process): it spawns one worker process per subtask slot (weir.worker),
-- admits their authenticated connections (weir.handshake), introduces
-- them to each other, runs the checkpoint coordinator (weir.coordinator)
-- with a proxy of each worker as its host, watches their heartbeats and,
-- when one fails, fails over.
--
-- Failover: the supervisor sees a worker's exit (or its silence past the
-- heartbeat timeout, e.g. a worker stopped with SIGSTOP), kills every
-- worker of the attempt, and, as the restart strategy allows
-- (weir.restart), starts fresh workers that restore the newest complete
-- checkpoint of the run's lineage. Attempts are numbered from 0; a
-- connection of an older attempt is refused.
local core = require "weir.core"
local checkpoint = require "weir.checkpoint_storage"
local control_mod = require "weir.control"
local coordinator = require "weir.coordinator"
local errors = require "weir.errors"
local fsutil = require "weir.fsutil"
local handshake = require "weir.handshake"
local protocol = require "weir.protocol"
local plan = require "weir.plan"
local restart = require "weir.restart"
local rundir = require "weir.rundir"

local M = {}

M.SET_UP_GRACE = 10           -- heartbeat timeouts a worker may set up in

local guard = errors.guard

-- -- A worker process, as the coordinator's host ---------------------------

local Process = {}
Process.__index = Process

function Process:send(t, fields)
  if self.conn then self.conn:send(protocol.encode(t, fields)) end
end
function Process:trigger(id, final, savepoint)
  self:send("trigger", { id = id, final = final,
    savepoint = savepoint or nil })
end
function Process:complete(id) self:send("complete", { id = id }) end
function Process:commit() self:send("commit") end
function Process:drain() self:send("drain") end
function Process:abort(id) self:send("abort", { id = id }) end
function Process:stop()
  self.stopping = true
  self:send("stop")
end

-- -- The supervisor ---------------------------------------------------------

local Supervisor = {}
Supervisor.__index = Supervisor

-- Starts worker process `index` on this host: the weir executable
-- itself, as `weir worker`, with cmd (see Supervisor:worker_command).
local function spawn_process(_, cmd, on_exit)
  local args = { "worker", "--coordinator-pid", tostring(core.getpid()),
    "--run-dir", cmd.run_dir }
  for _, a in ipairs(cmd.args) do args[#args + 1] = a end
  args[#args + 1] = cmd.script
  for _, a in ipairs(cmd.script_args) do args[#args + 1] = a end
  return core.spawn(core.exepath(), args,
    handshake.worker_env(cmd.secret, cmd.attempt), on_exit)
end

--- The supervisor of job (weir.launch.prepare) for the launch context ctx
-- of `weir run` (script, script_args and flags, which every worker runs
-- with). Nothing starts until start_attempt (M.run does it all).
-- @param opts { spawn = fn(index, cmd (see worker_command),
--   on_exit(status, signal, cause, fatal)) -> process (with
--   kill(signal)) or nil, error; run_dir = directory of the sockets; agents = a pool of weir
--   agents (weir.agents) to start the workers on }
function M.new(job, ctx, opts)
  opts = opts or {}
  local run_dir = opts.run_dir or rundir.create()
  job.run_dir = run_dir
  return setmetatable({ job = job, ctx = ctx, options = job.options,
    workers = job.plan.max_parallelism, run_dir = run_dir,
    spawn = opts.spawn or spawn_process, agents = opts.agents,
    coordinator_address = run_dir .. "/coordinator.sock",
    accepted = {},  -- every connection accepted, closed at the end
    strategy = restart.strategy(job.options.restart),
    coord = coordinator.new(job),
    attempt_state = {},  -- the current attempt's workers and counts
    restarts = 0,
    -- Workers prove they belong to this job with its secret.
    secret = handshake.new_secret(), attempt = -1 }, Supervisor)
end

--- Ends the job with result ({ ok = true } or { message = ... }); the
-- first result counts.
function Supervisor:finish(result)
  if self.outcome then return end
  self.outcome = result
  self.coord:close()
  if self.watchdog then self.watchdog:close() self.watchdog = nil end
  if self.server then self.server:close() self.server = nil end
  if self.control then self.control.close() self.control = nil end
  -- The agents kill whatever of the job still runs when it closes, and
  -- a worker behind a network partition never closes its connections.
  if self.agents then self.agents:close() end
  for _, conn in ipairs(self.accepted) do conn:close() end
end

--- Kills every worker of the attempt; calls then_fn() once all exited.
function Supervisor:kill_all(then_fn)
  local st = self.attempt_state
  st.dead = true
  st.on_all_exited = then_fn
  for _, wk in ipairs(st.workers) do
    if wk.conn then wk.conn:close() wk.conn = nil end
    if not wk.exited then wk.proc:kill("KILL") end
  end
  if st.exited == #st.workers then then_fn() end
end

--- The attempt failed with cause (a message): every worker is killed,
-- then the job restarts after the restart strategy's delay, or, when
-- fatal or the strategy gives up, fails.
function Supervisor:fail(cause, fatal)
  if self.outcome or self.attempt_state.dead then return end
  local coord = self.coord
  local reason = "the job failed before the savepoint completed: " .. cause
  coord:abort_pending(reason)
  coord:close(reason)
  local delay = not fatal and self.strategy:next_delay(core.monotonic_ms())
  self.job.history:exception(cause, delay and self.restarts + 1 or nil)
  self:kill_all(function()
    -- Nothing writes into the failed attempt's checkpoints any more.
    coord:remove_abandoned()
    if self.outcome then return end  -- cancelled meanwhile
    if fatal then return self:finish({ message = cause }) end
    if not delay then
      return self:finish({ message = restart.give_up_message(cause,
        self.restarts, self.job.lineage) })
    end
    self.restarts = self.restarts + 1
    errors.warn(restart.restarting_message(cause, delay, self.restarts))
    local t = core.timer(guard(function() self:start_attempt(true) end))
    self.attempt_state.delay_timer = t
    t:start(delay, 0)
  end)
end

-- Every worker said hello: each learns every worker's data address.
local function introduce(st)
  local addresses = {}
  for i, other in ipairs(st.workers) do addresses[i] = other.address end
  for _, other in ipairs(st.workers) do
    other:send("peers", { addresses = addresses })
  end
end

--- A message (bytes) from worker process wk of the running attempt.
-- Raises when it is not a message a worker sends (see weir.protocol).
function Supervisor:on_message(wk, bytes)
  local st, coord = self.attempt_state, self.coord
  if st.dead then return end
  local msg, bad = protocol.decode(bytes, "worker")
  if not msg then
    error(string.format("worker %d sent a bad message: %s", wk.index, bad), 0)
  end
  wk.last_seen = core.monotonic_ms()
  local t = msg.t
  if t == "hello" then
    st.hello = st.hello + 1
    wk.address = msg.address
    if st.hello == self.workers then introduce(st) end
  elseif t == "ready" then
    st.ready = st.ready + 1
    if st.ready == self.workers and (st.finished_job or coord.cancelled) then
      coord:finish()
    elseif st.ready == self.workers then
      for _, other in ipairs(st.workers) do other:send("start") end
      coord:start()
    end
  elseif t == "ack" then
    coord:ack(msg.task, msg.id, msg.files, { sync_ms = msg.sync_ms,
      async_ms = msg.async_ms, alignment_ms = msg.alignment_ms })
  elseif t == "decline" then
    coord:decline(msg.id, msg.reason)
  elseif t == "ended" then
    wk.late_records = msg.late_records
    wk.failed_records = msg.failed_records
    coord:task_ended(msg.task)
  elseif t == "error" then
    self:fail(msg.message, msg.fatal)
  elseif t == "metrics" then
    wk.samples = msg.samples
    if coord.reporter then coord.reporter:update(wk.index, msg.samples) end
  end
end

-- What starts worker w (see weir.cli's `weir worker`): { args = its
-- options (those of the host it runs on, --coordinator-pid, --run-dir
-- and --data-host, come from whoever starts it), script, script_args,
-- run_dir, secret, attempt }.
function Supervisor:worker_command(w, restore_path)
  local ctx = self.ctx
  local args = { "--coordinator", self.coordinator_address,
    "--worker", tostring(w), "--workers", tostring(self.workers),
    "--parallelism", tostring(self.job.plan.default_parallelism) }
  if restore_path then
    args[#args + 1] = "--restore-path"
    args[#args + 1] = restore_path
  end
  for _, a in ipairs(ctx.flags or {}) do args[#args + 1] = a end
  -- Workers on other hosts reach each other over TCP.
  if self.agents then args[#args + 1] = "--transport=tcp" end
  return { args = args, script = ctx.script,
    script_args = ctx.script_args or {}, run_dir = self.run_dir,
    secret = self.secret, attempt = self.attempt,
    -- Where its snapshot files go: a worker on another host must see it.
    dirs = { fsutil.absolute(self.job.job_dir) } }
end

-- Worker process wk of attempt st exited with status or signal.
function Supervisor:on_exit(st, wk, status, signal, cause, fatal)
  wk.exited = true
  st.exited = st.exited + 1
  if st.dead then
    if st.exited == #st.workers and st.on_all_exited then
      st.on_all_exited()
    end
    return
  end
  if wk.stopping and status == 0 then
    if st.exited == #st.workers then self:finish({ ok = true }) end
    return
  end
  -- A worker that fails says why on its control connection before it
  -- exits (a fatal set-up error is not restarted): read that first; the
  -- connection's end comes after it. (Not when its agent was lost: its
  -- connection may never end, the network to it being down.)
  if signal == 0 and wk.conn and not cause then
    cause = string.format("worker %d exited with status %d", wk.index,
      status)
    wk.on_closed = function() self:fail(cause) end
    return
  end
  self:fail(cause or (signal ~= 0 and string.format("worker %d was killed "
    .. "by signal %d", wk.index, signal) or string.format("worker %d "
    .. "exited with status %d", wk.index, status)), fatal)
end

-- Places the attempt's workers on the agents (weir.agents). After a
-- loss left too few slots, the job restarts at a lower parallelism, the
-- slots that remain (key groups move as in a rescale; Flink's adaptive
-- scheduler); with none left the attempt fails, and the restart strategy
-- decides whether to try again (a lost agent may be back by then).
-- @return { [w] = agent } | nil after failing the attempt
function Supervisor:place_on_agents(restoring)
  local placement, perr = self.agents:place(self.workers)
  if placement then return placement end
  if not restoring then error(perr, 0) end
  local job, slots = self.job, self.agents:slots_left()
  local was = job.plan.default_parallelism
  if slots >= 1 and slots < was then
    local replanned = plan.plan(job.pipeline, slots)
    placement = self.agents:place(replanned.max_parallelism)
    if placement then
      job.plan, self.workers = replanned, replanned.max_parallelism
      errors.warn(string.format("%s: the job restarts at parallelism %d "
        .. "(was %d) on the slots that remain", perr, slots, was))
      return placement
    end
  end
  self:fail(perr)
  return nil
end

--- Starts an attempt: a fresh coordinator, which restores the newest
-- complete checkpoint of the run's lineage (restoring: after a failure),
-- and one worker process per worker. Raises when a process cannot start.
function Supervisor:start_attempt(restoring)
  local previous = self.attempt_state
  if previous.delay_timer then previous.delay_timer:close() end
  -- What the last attempt's workers left open (a heartbeat connection
  -- from behind a partition) goes with it.
  for _, conn in ipairs(self.accepted) do conn:close() end
  self.accepted = {}
  self.attempt = self.attempt + 1
  local st = { workers = {}, hello = 0, ready = 0, exited = 0,
               attempt = self.attempt }
  self.attempt_state = st
  local spawn = self.spawn
  if self.agents then
    local placement = self:place_on_agents(restoring)
    if not placement then return end
    spawn = function(w, cmd, on_exit)
      return self.agents:spawn(placement[w], w, cmd, on_exit)
    end
  end
  local coord = coordinator.new(self.job)
  self.coord = coord
  coord.on_failure = function(message) self:fail(message) end
  -- A cancel with drain holds across failures: each attempt drains.
  coord.draining = self.draining
  coord.on_drain = function() self.draining = true end
  if restoring then self.job.lineage.restarts = self.restarts end
  local loaded = coord:restore_point(true)
  local restore_path = loaded and loaded.path
  self.restored_path = restore_path or self.restored_path
  for w = 0, self.workers - 1 do
    local wk = setmetatable({ index = w, last_seen = core.monotonic_ms() },
      Process)
    st.workers[w + 1] = wk
    local proc, err = spawn(w, self:worker_command(w, restore_path),
      guard(function(status, signal, cause, fatal)
        self:on_exit(st, wk, status, signal, cause, fatal)
      end))
    if not proc then error("cannot start worker " .. w .. ": " .. err, 0) end
    wk.proc = proc
  end
  coord.hosts = st.workers
  if restore_path and coord.restored.manifest.final then
    -- The job had finished: the workers recover their sinks (which
    -- commits the output) and are stopped once ready.
    coord.last_completed = coord.restored.manifest.id
    st.finished_job = true
  end
end

--- Admits an authenticated connection of a worker of the running attempt
-- (see weir.handshake.accept): its control connection, or its
-- heartbeats' (whose messages are all "hb"), one of each.
-- @return the connection's frame handler, or nil and why it is refused
function Supervisor:admit_worker(role, index, claimed, conn)
  local st = self.attempt_state
  local wk = st.workers and st.workers[index + 1]
  if (role ~= "control" and role ~= "heartbeat") or not wk
      or claimed ~= st.attempt then
    return nil, string.format("no worker %d of attempt %d runs", index,
      claimed)
  end
  local beats = role == "heartbeat"
  local current = wk.control_attempt
  if beats then current = wk.beats_attempt end
  local verdict, reason = handshake.admit(current, claimed, st.attempt)
  if not verdict then return nil, reason end
  if beats then wk.beats_attempt = claimed
  else wk.control_attempt, wk.conn = claimed, conn end
  return guard(function(bytes)
    if bytes then return self:on_message(wk, bytes) end
    conn:close()
    if not beats and wk.conn == conn then
      wk.conn = nil
      local on_closed = wk.on_closed
      wk.on_closed = nil
      if on_closed then on_closed() end
    end
  end)
end

--- Fails the attempt when a worker was silent past the heartbeat timeout
-- at now (ms, monotonic); while the workers set up (a restore reads every
-- file before the first heartbeat) SET_UP_GRACE times as long.
function Supervisor:check_heartbeats(now)
  local st = self.attempt_state
  local limit = self.options.heartbeat_timeout
  if st.ready ~= self.workers then limit = limit * M.SET_UP_GRACE end
  for _, wk in ipairs(st.workers or {}) do
    if not wk.exited and now - wk.last_seen > limit then
      return self:fail(string.format("worker %d sent no heartbeat for %d ms",
        wk.index, now - wk.last_seen))
    end
  end
end

-- Serves the job's control socket (weir.control): status, metrics,
-- savepoints and cancellation, also between attempts.
function Supervisor:serve_control()
  local job = self.job
  self.control = control_mod.serve_job(job, {
    coordinator = function()
      if self.outcome or self.attempt_state.dead then return nil end
      return self.coord
    end,
    info = function() return { parallelism = job.plan.default_parallelism,
      workers = self.workers, restarts = self.restarts } end,
    metrics = function()
      local out = {}
      for _, wk in ipairs(self.attempt_state.workers or {}) do
        for _, sample in ipairs(wk.samples or {}) do out[#out + 1] = sample end
      end
      return out
    end,
    -- Cancelled between attempts: no restart comes, unless the job
    -- drains (the next attempt does).
    cancel_idle = function(cb, no_drain)
      if self.outcome then return cb("the job is already stopping") end
      if not no_drain and self.coord:drains() then
        self.draining = true
        errors.note("draining: the job drains once it restarted")
        return cb(nil)
      end
      local st = self.attempt_state
      if st.delay_timer then st.delay_timer:close() st.delay_timer = nil end
      self.coord.cancelled = {}
      cb(nil)
      self:finish({ ok = true })
    end })
end

--- Listens for the workers, starts the heartbeat watchdog and the control
-- socket, and starts the first attempt; the caller runs the loop.
function Supervisor:start()
  -- Workers on agents connect back over TCP, to this host's address on
  -- the interface that reaches the agents.
  local address = self.agents and "tcp:" .. self.agents.host .. ":0"
    or self.coordinator_address
  self.server = assert(core.listen(address, guard(function(conn)
    self.accepted[#self.accepted + 1] = conn
    handshake.accept(conn, self.secret, nil, "the coordinator",
      function(...) return self:admit_worker(...) end)
  end)))
  self.coordinator_address = self.agents and self.server:address()
    or address
  if self.agents then
    self.agents:watch(self.options.heartbeat_timeout)
    local f = assert(io.open(self.ctx.script, "rb"))
    self.agents:ship(self.ctx.script, f:read("*a"))
    f:close()
  end
  self.watchdog = core.timer(guard(function()
    self:check_heartbeats(core.monotonic_ms())
  end))
  self.watchdog:start(protocol.HEARTBEAT_MS, protocol.HEARTBEAT_MS)
  self:serve_control()
  self:start_attempt(false)
end

--- The job's statistics once it ended (see weir.launch.run).
function Supervisor:stats(start_ms)
  local coord = self.coord
  local late_records, failed_records = 0, 0
  for _, wk in ipairs(self.attempt_state.workers or {}) do
    late_records = late_records + (wk.late_records or 0)
    failed_records = failed_records + (wk.failed_records or 0)
  end
  return { name = self.job.name, checkpoints = coord.checkpoints,
    late_records = late_records, failed_records = failed_records,
    restarts = self.restarts,
    records = coord:close_metrics(),
    last_checkpoint = coord.last_completed and
      checkpoint.path(self.job.job_dir, coord.last_completed),
    restored_from = self.restored_path,
    cancelled = coord.cancelled and true or nil,
    savepoint = coord.cancelled and coord.cancelled.savepoint,
    duration_ms = core.monotonic_ms() - start_ms }
end

--- Runs a job on worker processes, restarting them after failures as the
-- restart strategy allows.
-- @param job the prepared job (weir.launch.prepare)
-- @param ctx the launch context of `weir run` (weir.launch)
-- @param agents nil (workers on this host) or the weir agents to run them
--   on (weir.agents.connect)
-- @return the job's statistics (see weir.launch.run)
-- Raises a one-line message when the job fails for good.
function M.run(job, ctx, agents)
  local start_ms = core.monotonic_ms()
  local self = M.new(job, ctx, { agents = agents })
  local ok, err = xpcall(function()
    self:start()
    core.run()
  end, errors.handler)
  self:finish({ message = not ok and tostring(err.message) or nil, ok = ok })
  for _, wk in ipairs(self.attempt_state.workers or {}) do
    if not wk.exited then wk.proc:kill("KILL") end
  end
  core.drain()
  local coord = self.coord
  coord:remove_abandoned()
  rundir.remove(self.run_dir)
  if not self.outcome.ok then error(self.outcome.message, 0) end
  if coord.cancelled then coord:remove_checkpoints() end
  return self:stats(start_ms)
end

return M
