--- Running a job on worker processes: the coordinator side (the `weir run`
-- process) and the worker side (`weir worker`, started by the coordinator).
--
-- Every worker runs the same script with the same arguments, builds the
-- same graph, and hosts the subtasks whose index modulo the number of
-- workers is its own (weir.host). Workers talk to the coordinator over a
-- control connection and to each other over one data connection per pair,
-- both framed Unix domain sockets or TCP connections (engine/frame.c)
-- carrying string.buffer messages. Every connection authenticates first
-- (weir.handshake): nothing a process that does not know the job's secret
-- sends is decoded. Data channels use credit-based flow control: a
-- receiver grants CREDITS batches per channel up front and one more for
-- every batch its task takes, and a sender without credit holds its
-- batches, which stops the producing task (backpressure). Barriers,
-- watermarks and end of input travel in-band behind the batches before
-- them.
--
-- Failover: the coordinator sees a worker's exit (or its silence past the
-- heartbeat timeout, e.g. a worker stopped with SIGSTOP), kills every
-- worker, and, as the restart strategy allows, starts fresh workers that
-- restore the newest complete checkpoint.
local buffer = require "string.buffer"
local ffi = require "ffi"
local core = require "weir.core"
local channel = require "weir.channel"
local checkpoint = require "weir.checkpoint"
local control_mod = require "weir.control"
local coordinator = require "weir.coordinator"
local errors = require "weir.errors"
local handshake = require "weir.handshake"
local host_mod = require "weir.host"
local plan = require "weir.plan"
local restart = require "weir.restart"
local rundir = require "weir.rundir"

local M = {}

M.CREDITS = 8                 -- batches a receiver grants per channel
M.HEARTBEAT_MS = 200          -- a worker's heartbeat period
M.METRICS_MS = 1000           -- a worker's metrics period
M.SET_UP_GRACE = 10           -- heartbeat timeouts a worker may set up in

local encode, decode = buffer.encode, buffer.decode
-- Data frames go out from a string.buffer and come in as a pointer into
-- the receive buffer: neither becomes a Lua string (a string of a
-- batch's size, interned twice per batch, costs more than the batch).
local send_raw = ffi.cast("int (*)(void *, const uint8_t *, size_t)",
  core.send_raw_fn())
local uint8_ptr = ffi.typeof("const uint8_t *")
local guard = errors.guard

local function warn(msg) errors.warn(msg) end

-- -- Worker side ---------------------------------------------------------------

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

--- Runs this worker's share of a job (weir.launch.prepare) until the
-- coordinator says stop; exits the process.
-- @param ctx the worker's launch context (weir.launch): { coordinator =
--   socket, coordinator_pid, worker = index, workers = count, parallelism,
--   run_dir, restore_path }
function M.run_worker(job, ctx)
  local w, workers = ctx.worker, ctx.workers
  -- A worker dies with its coordinator: nothing may be written for a job
  -- whose coordinator is gone, and a restarted job must not meet it.
  core.die_with_parent(ctx.coordinator_pid)
  local secret, attempt = handshake.take_worker_env()
  if not secret then
    errors.warn("worker " .. w .. ": " .. attempt)
    core.exit(1)
  end
  local host = host_mod.new(job, w, workers)
  local control                       -- connection to the coordinator
  local peers, peer_count = {}, 0     -- worker index -> data connection
  local handles = {}                  -- worker index -> its conn:handle()
  local peer_attempts = {}            -- worker index -> its connection's
                                      -- attempt (connections accepted)
  local writers = {}                  -- channel id -> remote writer state
  -- Data frames hold the channel id then the batch or event; a credit
  -- frame holds minus the channel id.
  local out, incoming = buffer.new(), buffer.new()
  local function send_data(peer, cid, item)
    out:reset()
    out:encode(cid)
    local ok, err = pcall(out.encode, out, item)
    if not ok then error(unsendable(job.plan, cid, item, err), 0) end
    local r = send_raw(handles[peer], out:ref())
    if r < 0 then
      error(string.format("cannot send to worker %d: %s", peer,
        core.strerror(r)), 0)
    end
  end
  local server, heartbeat, metrics_timer

  local function send_control(msg)
    if control then control:send(encode(msg)) end
  end

  -- A remote writer queues batches until the peer is connected and has
  -- granted credit; events wait behind the batches before them.
  function host.remote_writer(cid, peer)
    -- queue[head..tail] waits to be sent.
    local state = { credits = M.CREDITS, queue = {}, head = 1, tail = 0 }
    writers[cid] = state
    function state.pump()
      local conn = peers[peer]
      local q = state.queue
      while conn and state.head <= state.tail do
        local item = q[state.head]
        if item.n then
          if state.credits <= 0 then break end
          state.credits = state.credits - 1
        end
        send_data(peer, cid, item)
        q[state.head] = nil
        state.head = state.head + 1
      end
    end
    return channel.writer(function(item)
      local conn = peers[peer]
      if state.head > state.tail and conn
          and (not item.n or state.credits > 0) then
        if item.n then state.credits = state.credits - 1 end
        send_data(peer, cid, item)
        return true
      end
      state.tail = state.tail + 1
      state.queue[state.tail] = item
      state.pump()
    end, function() return state.head <= state.tail end)
  end

  host.coord = {
    ack = function(_, task_id, id, files)
      send_control({ t = "ack", task = task_id, id = id, files = files })
    end,
    decline = function(_, id, reason)
      send_control({ t = "decline", id = id, reason = reason })
    end,
    task_ended = function(_, task_id)
      send_control({ t = "ended", task = task_id,
                     late_records = host.stats.late_records })
    end,
  }

  -- The buffer that reads a received frame in place (during its callback).
  local function received(payload, len)
    return incoming:set(ffi.cast(uint8_ptr, payload), len)
  end

  local function on_data(payload, len)
    local cid = received(payload, len):decode()
    if cid > 0 then
      host.channels[cid]:put(incoming:decode())
    else
      local state = writers[-cid]
      state.credits = state.credits + 1
      state.pump()
    end
    host:wake()
  end

  local function all_peers()
    return peer_count == workers - 1
  end

  local function add_peer(j, conn)
    peers[j], handles[j] = conn, conn:handle()
    peer_count = peer_count + 1
    for _, state in pairs(writers) do state.pump() end
    if all_peers() then send_control({ t = "ready" }) end
  end

  -- Frames from worker j, an authenticated peer: a frame over the size
  -- limit from it is a fault of the job's own processes, which fails the
  -- attempt. Its end of stream is not: a peer that stops or dies closes
  -- its connections, and the coordinator sees its exit.
  local function data_handler(j)
    return guard(function(b, len, code)
      if b then return on_data(b, len) end
      if code ~= "EOF" and code ~= "ECONNRESET" then
        error(string.format("the connection with worker %d failed: %s", j,
          tostring(len)), 0)
      end
    end)
  end

  -- Admits an authenticated data connection from worker j (only workers
  -- with a higher index connect to this one); a newer attempt of j
  -- replaces its connection.
  local function admit_peer(role, j, claimed, conn)
    if role ~= "data" or j <= w or j >= workers then
      return nil, "worker " .. w .. " does not accept it"
    end
    local verdict, reason = handshake.admit(peer_attempts[j], claimed,
      attempt)
    if not verdict then return nil, reason end
    peer_attempts[j] = claimed
    if verdict == "replace" then
      peers[j]:close()
      peers[j], handles[j] = conn, conn:handle()
      for _, state in pairs(writers) do state.pump() end
    else
      add_peer(j, conn)
    end
    return data_handler(j)
  end

  -- Remote channels return a credit to their producer per batch taken.
  local function grant_credits()
    for _, task in ipairs(host.tasks) do
      local k = 0
      for _, edge in ipairs(task.chain.inputs) do
        for _, i in ipairs(plan.producers(edge,
            task.subtask)) do
          k = k + 1
          local producer = host:worker_of(i)
          if producer ~= w then
            local cid = channel.id(edge, i, task.subtask)
            local credit = encode(-cid)
            task.channels[k].on_take = function()
              peers[producer]:send(credit)
            end
          end
        end
      end
    end
  end

  -- WEIR_PROFILE=FILE profiles each worker with LuaJIT's profiler into
  -- FILE.<worker> (WEIR_PROFILE_MODE: its options, default "Fl").
  local profile = os.getenv("WEIR_PROFILE")
  if profile then
    require("jit.p").start(os.getenv("WEIR_PROFILE_MODE") or "Fl",
      profile .. "." .. w)
  end

  local function shutdown(status)
    if heartbeat then heartbeat:stop() heartbeat = nil end
    if metrics_timer then metrics_timer:close() metrics_timer = nil end
    if server then server:close() server = nil end
    host:close()
    if profile then require("jit.p").stop() end
    core.exit(status)
  end

  -- Stops after the coordinator's stop: the last metrics are sent, every
  -- handle closes, and the loop (then the process) ends once the control
  -- connection has flushed.
  local function stop_gracefully()
    send_control({ t = "metrics", samples = host:metrics() })
    if heartbeat then heartbeat:stop() heartbeat = nil end
    if metrics_timer then metrics_timer:close() metrics_timer = nil end
    if server then server:close() server = nil end
    for j, conn in pairs(peers) do
      conn:close()
      peers[j] = nil
    end
    if control then control:shutdown() control = nil end
  end

  local function on_control(bytes, err)
    if not bytes then
      -- The coordinator is gone: nothing may be committed any more.
      return shutdown(1)
    end
    local msg = decode(bytes)
    if msg.t == "peers" then
      for j = 0, w - 1 do
        assert(core.connect(msg.addresses[j + 1],
          guard(function(cerr, conn)
            if cerr then error("cannot connect to worker " .. j .. ": "
              .. cerr, 0) end
            handshake.connect(conn, secret, "pointer",
              { role = "data", worker = w, attempt = attempt },
              guard(function() add_peer(j, conn) end), data_handler(j))
          end)))
      end
      if all_peers() then send_control({ t = "ready" }) end
    elseif msg.t == "start" then
      host:start()
    elseif msg.t == "trigger" then
      host:trigger(msg.id, msg.final)
      host:wake()
    elseif msg.t == "complete" then
      host:complete(msg.id)
    elseif msg.t == "commit" then
      host:commit()
    elseif msg.t == "abort" then
      host:abort(msg.id)
    elseif msg.t == "stop" then
      host:stop()
    end
  end

  -- Builds, restores and opens this worker's tasks; an error here is in
  -- the job's set-up (a missing input, an unusable directory) and fails
  -- the job without restarts.
  local function set_up()
    host:build()
    grant_credits()
    local loaded
    if ctx.restore_path then
      local lerr
      loaded, lerr = checkpoint.load(ctx.restore_path)
      if not loaded then error("cannot restore from " .. ctx.restore_path
        .. ": " .. lerr, 0) end
    end
    host:restore(loaded)
    host:open()
    host.on_stop = stop_gracefully
    -- Data connections: a Unix domain socket in the run directory, or TCP
    -- on a port the system picks, announced to the coordinator.
    local address = job.options.transport == "tcp" and "tcp:127.0.0.1:0"
      or ctx.run_dir .. "/worker-" .. w .. ".sock"
    server = assert(core.listen(address,
      guard(function(conn)
        handshake.accept(conn, secret, "pointer", "worker " .. w,
          admit_peer)
      end)))
  end

  local set_up_done = false
  -- Once the control connection is authenticated: heartbeats, set-up and
  -- the hello to the coordinator.
  local function set_up_control(conn)
    control = conn
    -- Heartbeats come from a thread of their own, on a connection of
    -- their own: they go on while this thread is busy for long (a large
    -- snapshot), and stop only with the process.
    local herr
    heartbeat, herr = core.heartbeat(ctx.coordinator,
      encode({ t = "hb", worker = w }), M.HEARTBEAT_MS,
      { secret = secret, worker = w, attempt = attempt })
    if not heartbeat then
      error("cannot send heartbeats to the coordinator: " .. herr, 0)
    end
    set_up()
    -- Peers connect once every worker said hello: this worker's socket
    -- is listening by then.
    send_control({ t = "hello", worker = w, address = server:address() })
    metrics_timer = core.timer(function()
      send_control({ t = "metrics", samples = host:metrics() })
    end)
    metrics_timer:start(M.METRICS_MS, M.METRICS_MS)
    set_up_done = true
  end

  local ok, err = xpcall(function()
    assert(core.connect(ctx.coordinator, guard(function(cerr, conn)
      if cerr then error("cannot reach the coordinator: " .. cerr, 0) end
      handshake.connect(conn, secret, nil,
        { role = "control", worker = w, attempt = attempt },
        guard(function() set_up_control(conn) end), guard(on_control))
    end)))
    core.run()
  end, errors.handler)
  if not ok then
    if os.getenv("WEIR_DEBUG") and err.traceback then
      io.stderr:write(err.traceback, "\n")
    end
    send_control({ t = "error", worker = w, message = tostring(err.message),
                   fatal = not set_up_done or err.fatal == true })
    if heartbeat then heartbeat:stop() heartbeat = nil end
    if metrics_timer then metrics_timer:close() metrics_timer = nil end
    if server then server:close() server = nil end
    host.stopped = true
    if host.idle then host.idle:close() host.idle = nil end
    for _, conn in pairs(peers) do conn:close() end
    -- Flush the error to the coordinator before exiting.
    if control then control:shutdown() end
    core.drain()
    shutdown(1)
  end
  shutdown(0)
end

-- -- Coordinator side ----------------------------------------------------------

-- The coordinator's view of one worker process.
local Worker = {}
Worker.__index = Worker

function Worker:send(msg)
  if self.conn then self.conn:send(encode(msg)) end
end

function Worker:trigger(id, final) self:send({ t = "trigger", id = id,
  final = final }) end
function Worker:complete(id) self:send({ t = "complete", id = id }) end
function Worker:commit() self:send({ t = "commit" }) end
function Worker:abort(id) self:send({ t = "abort", id = id }) end
function Worker:stop()
  self.stopping = true
  self:send({ t = "stop" })
end

--- Runs a job on worker processes, restarting them after failures as the
-- restart strategy allows. Returns the job's statistics (see
-- weir.launch.run); raises a one-line message when the job fails for
-- good.
-- @param ctx the launch context of `weir run` (weir.launch): script,
--   script_args and flags, which every worker runs with
function M.run_coordinator(job, ctx)
  local options = job.options
  local workers = job.plan.max_parallelism
  local run_dir = rundir.create()
  job.run_dir = run_dir
  local strategy = restart.strategy(options.restart)
  local start_ms = core.monotonic_ms()
  local coord = coordinator.new(job)
  local attempt_state = {}   -- the current attempt's workers and handles
  local outcome              -- { ok = true } or { message = ... }
  local restarts = 0
  local server, watchdog, restored_path, control
  -- Workers prove they belong to this job with its secret (see
  -- weir.handshake); attempts are numbered from 0.
  local secret = handshake.new_secret()
  local attempt = -1

  local function finish(result)
    if outcome then return end
    outcome = result
    coord:close()
    if watchdog then watchdog:close() watchdog = nil end
    if server then server:close() server = nil end
    if control then control.close() control = nil end
  end

  local start_attempt

  -- Kills every worker of the attempt; calls then() once all exited.
  local function kill_all(then_fn)
    local st = attempt_state
    st.dead = true
    st.on_all_exited = then_fn
    for _, wk in ipairs(st.workers) do
      if wk.conn then wk.conn:close() wk.conn = nil end
      if not wk.exited then wk.proc:kill("KILL") end
    end
    if st.exited == #st.workers then then_fn() end
  end

  local function fail(cause, fatal)
    if outcome or attempt_state.dead then return end
    local reason = "the job failed before the savepoint completed: " .. cause
    coord:abort_pending(reason)
    coord:close(reason)
    local delay = not fatal and strategy:next_delay(core.monotonic_ms())
    kill_all(function()
      -- Nothing writes into the failed attempt's checkpoints any more.
      coord:remove_abandoned()
      if outcome then return end  -- cancelled meanwhile
      if fatal then
        finish({ message = cause })
        return
      end
      if not delay then
        finish({ message = restart.give_up_message(cause, restarts,
          job.lineage) })
        return
      end
      restarts = restarts + 1
      warn(restart.restarting_message(cause, delay, restarts))
      local t = core.timer(guard(function() start_attempt(true) end))
      attempt_state.delay_timer = t
      t:start(delay, 0)
    end)
  end

  local function on_message(wk, bytes)
    local msg = decode(bytes)
    local st = attempt_state
    if st.dead then return end
    wk.last_seen = core.monotonic_ms()
    if msg.t == "hello" then
      st.hello = st.hello + 1
      wk.address = msg.address
      if st.hello == workers then
        local addresses = {}
        for i, other in ipairs(st.workers) do addresses[i] = other.address end
        for _, other in ipairs(st.workers) do
          other:send({ t = "peers", addresses = addresses })
        end
      end
    elseif msg.t == "ready" then
      st.ready = st.ready + 1
      if st.ready == workers and (st.finished_job or coord.cancelled) then
        coord:finish()
      elseif st.ready == workers then
        for _, other in ipairs(st.workers) do other:send({ t = "start" }) end
        coord:start()
      end
    elseif msg.t == "ack" then
      coord:ack(msg.task, msg.id, msg.files)
    elseif msg.t == "decline" then
      coord:decline(msg.id, msg.reason)
    elseif msg.t == "ended" then
      wk.late_records = msg.late_records
      coord:task_ended(msg.task)
    elseif msg.t == "error" then
      fail(msg.message, msg.fatal)
    elseif msg.t == "metrics" then
      wk.samples = msg.samples
      if coord.reporter then coord.reporter:update(wk.index, msg.samples) end
    end
  end

  start_attempt = function(restoring)
    if attempt_state.delay_timer then attempt_state.delay_timer:close() end
    attempt = attempt + 1
    local st = { workers = {}, hello = 0, ready = 0, exited = 0,
                 attempt = attempt }
    attempt_state = st
    coord = coordinator.new(job)
    coord.on_failure = function(message) fail(message) end
    -- A restart restores the newest complete checkpoint of this run's
    -- lineage (see Coordinator:restore_point).
    if restoring then job.lineage.restarts = restarts end
    local loaded = coord:restore_point(true)
    local restore_path = loaded and loaded.path
    restored_path = restore_path or restored_path
    local hosts = {}
    for w = 0, workers - 1 do
      local wk = setmetatable({ index = w, last_seen = core.monotonic_ms() },
        Worker)
      st.workers[w + 1] = wk
      hosts[w + 1] = wk
      local args = { "worker", "--coordinator", run_dir .. "/coordinator.sock",
        "--coordinator-pid", tostring(core.getpid()),
        "--worker", tostring(w), "--workers", tostring(workers),
        "--parallelism", tostring(job.plan.default_parallelism),
        "--run-dir", run_dir }
      if restore_path then
        args[#args + 1] = "--restore-path"
        args[#args + 1] = restore_path
      end
      for _, a in ipairs(ctx.flags or {}) do args[#args + 1] = a end
      args[#args + 1] = ctx.script
      for _, a in ipairs(ctx.script_args or {}) do args[#args + 1] = a end
      local proc, err = core.spawn(core.exepath(), args,
        handshake.worker_env(secret, attempt),
        guard(function(status, signal)
          wk.exited = true
          st.exited = st.exited + 1
          if st.dead then
            if st.exited == #st.workers and st.on_all_exited then
              st.on_all_exited()
            end
            return
          end
          if wk.stopping and status == 0 then
            if st.exited == #st.workers then finish({ ok = true }) end
            return
          end
          local cause = signal ~= 0 and string.format("worker %d was killed "
            .. "by signal %d", w, signal) or string.format("worker %d exited "
            .. "with status %d", w, status)
          -- A worker that fails says why on its control connection before
          -- it exits (a fatal set-up error is not restarted): read that
          -- first; the connection's end comes after it.
          if signal == 0 and wk.conn then
            wk.on_closed = function() fail(cause) end
            return
          end
          fail(cause)
        end))
      if not proc then error("cannot start worker " .. w .. ": " .. err, 0) end
      wk.proc = proc
    end
    coord.hosts = hosts
    if restore_path and coord.restored.manifest.final then
      -- The job had finished: the workers recover their sinks (which
      -- commits the output) and are stopped once ready.
      coord.last_completed = coord.restored.manifest.id
      st.finished_job = true
    end
  end

  -- Admits an authenticated connection of a worker of the running
  -- attempt: its control connection, or its heartbeats' (whose messages
  -- are all "hb"), one of each.
  local function admit_worker(role, index, claimed, conn)
    local st = attempt_state
    local wk = st.workers and st.workers[index + 1]
    if role == "data" or not wk or claimed ~= st.attempt then
      return nil, string.format("no worker %d of attempt %d runs",
        index, claimed)
    end
    local beats = role == "heartbeat"
    local current = wk.control_attempt
    if beats then current = wk.beats_attempt end
    local verdict, reason = handshake.admit(current, claimed, st.attempt)
    if not verdict then return nil, reason end
    if beats then wk.beats_attempt = claimed
    else wk.control_attempt, wk.conn = claimed, conn end
    return guard(function(bytes)
      if not bytes then
        conn:close()
        if not beats and wk.conn == conn then
          wk.conn = nil
          local on_closed = wk.on_closed
          wk.on_closed = nil
          if on_closed then on_closed() end
        end
        return
      end
      on_message(wk, bytes)
    end)
  end

  local ok, err = xpcall(function()
    server = assert(core.listen(run_dir .. "/coordinator.sock",
      guard(function(conn)
        handshake.accept(conn, secret, nil, "the coordinator",
          admit_worker)
      end)))
    -- A worker is hung when silent past the heartbeat timeout; while the
    -- workers set up (a restore reads every file before the first
    -- heartbeat) ten times as long.
    watchdog = core.timer(guard(function()
      local now = core.monotonic_ms()
      local limit = options.heartbeat_timeout
      if attempt_state.ready ~= workers then limit = limit * M.SET_UP_GRACE end
      for _, wk in ipairs(attempt_state.workers or {}) do
        if not wk.exited and now - wk.last_seen > limit then
          fail(string.format("worker %d sent no heartbeat for %d ms",
            wk.index, now - wk.last_seen))
          return
        end
      end
    end))
    watchdog:start(M.HEARTBEAT_MS, M.HEARTBEAT_MS)
    control = control_mod.serve_job(job, {
      coordinator = function()
        if outcome or attempt_state.dead then return nil end
        return coord
      end,
      info = function() return { parallelism = job.plan.default_parallelism,
        workers = workers, restarts = restarts } end,
      metrics = function()
        local out = {}
        for _, wk in ipairs(attempt_state.workers or {}) do
          for _, sample in ipairs(wk.samples or {}) do
            out[#out + 1] = sample
          end
        end
        return out
      end,
      -- Cancelled between attempts: no restart comes.
      cancel_idle = function(cb)
        if outcome then return cb("the job is already stopping") end
        if attempt_state.delay_timer then
          attempt_state.delay_timer:close()
          attempt_state.delay_timer = nil
        end
        coord.cancelled = {}
        cb(nil)
        finish({ ok = true })
      end })
    start_attempt(false)
    core.run()
  end, errors.handler)
  finish({ message = not ok and tostring(err.message) or nil, ok = ok })
  for _, wk in ipairs(attempt_state.workers or {}) do
    if not wk.exited then wk.proc:kill("KILL") end
  end
  core.drain()
  coord:remove_abandoned()
  rundir.remove(run_dir)
  if not outcome.ok then error(outcome.message, 0) end
  if coord.cancelled then coord:remove_checkpoints() end
  local late_records = 0
  for _, wk in ipairs(attempt_state.workers or {}) do
    late_records = late_records + (wk.late_records or 0)
  end
  local stats = { name = job.name, checkpoints = coord.checkpoints,
    late_records = late_records, restarts = restarts,
    records = coord:close_metrics(),
    last_checkpoint = coord.last_completed and
      checkpoint.path(job.job_dir, coord.last_completed),
    restored_from = restored_path,
    cancelled = coord.cancelled and true or nil,
    savepoint = coord.cancelled and coord.cancelled.savepoint,
    duration_ms = core.monotonic_ms() - start_ms }
  return stats
end

return M
