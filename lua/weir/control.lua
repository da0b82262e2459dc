--- Control of running jobs: the coordinator of every job listens on a Unix
-- domain socket, control.sock in its run directory (weir.rundir: short
-- and private, 0600 whatever the umask, only this user may connect), and
-- leaves a pointer to it in its job directory:
-- <checkpoint_dir>/<job>/coordinator.sock.path holds the socket's path.
-- `weir jobs`, `weir savepoint`, `weir cancel` (and the same functions
-- from Lua) follow the pointer. (A pointer file rather than a socket or
-- symbolic link in the job directory: connect(2) takes a path of at most
-- 107 bytes, which a deep checkpoint directory exceeds.)
--
-- Requests and replies are tables encoded with string.buffer, one per
-- frame. A request is { t = "status" | "metrics" | "savepoint" | "cancel",
-- dir = absolute savepoint directory (savepoint, cancel), drain = false
-- (cancel: stop without draining a write-ahead log) }; a reply is
-- { ok = true, ... } or { error = message }. After the reply to a cancel
-- the connection stays open until the job's process is gone, so a client
-- can wait for the job to end.
local buffer = require "string.buffer"
local checkpoint = require "weir.checkpoint_storage"
local core = require "weir.core"
local errors = require "weir.errors"
local fsutil = require "weir.fsutil"
local rundir = require "weir.rundir"

local M = {}

M.SOCKET = "control.sock"             -- in the run directory
M.POINTER = "coordinator.sock.path"   -- in the job directory
M.MAX_SOCKET_PATH = 107  -- bytes of a Unix socket path (sun_path, less NUL)
M.TIMEOUT_MS = 5000      -- a status request not answered by then fails
M.MAX_REQUEST_BYTES = 65536  -- a longer request closes its connection

--- The path of the pointer to a job's control socket in its directory.
function M.pointer_path(job_dir)
  return job_dir .. "/" .. M.POINTER
end

--- The path of the control socket of the job in job_dir, read from its
-- pointer. Returns it | nil, message when there is no pointer.
function M.socket_path(job_dir)
  local f = io.open(M.pointer_path(job_dir), "rb")
  local path = f and f:read("*l")
  if f then f:close() end
  if not path or path == "" then
    return nil, string.format("no running job in %s (no %s)", job_dir,
      M.POINTER)
  end
  return path
end

-- Writes the pointer of job_dir to socket (a temporary file renamed into
-- place, so a reader never sees half a path). Returns true | nil, message.
local function write_pointer(job_dir, socket)
  local path = M.pointer_path(job_dir)
  local f, err = io.open(path .. ".tmp", "wb")
  if not f then return nil, err end
  local ok, werr = f:write(socket, "\n")
  f:close()
  if ok then ok, werr = core.chmod(path .. ".tmp", tonumber("600", 8)) end
  if ok then ok, werr = core.rename(path .. ".tmp", path) end
  if not ok then
    core.unlink(path .. ".tmp")
    return nil, string.format("cannot write %s: %s", path, tostring(werr))
  end
  return true
end

local absolute = fsutil.absolute

--- Makes a path absolute against this process's working directory (a
-- savepoint directory is created by the job's process, which may run
-- elsewhere): weir.fsutil.absolute.
M.absolute = absolute

-- Connects to path and waits (running the loop) for the outcome.
-- Returns conn | nil, message, code.
local function connect_wait(path, timeout_ms)
  local done, conn, err
  local ok, cerr, code = core.connect(path, function(e, c)
    done, conn, err = true, c, e
  end)
  if not ok then return nil, cerr, code end
  local deadline = core.monotonic_ms() + timeout_ms
  local timer = core.timer(function() end)
  timer:start(timeout_ms, 0)
  while not done and core.monotonic_ms() < deadline do core.run_once() end
  timer:close()
  if not done then return nil, "timed out" end
  if err then return nil, err end
  return conn
end

--- Starts listening for control requests of the job in job_dir, on a
-- socket in run_dir, with a pointer to it in job_dir.
-- @param handlers { status = fn() -> table, metrics = fn() -> table,
--   savepoint = fn(dir, cb), cancel = fn(dir|nil, cb, no_drain) } where
--   cb(err, path) reports the outcome (path of the savepoint, if one was
--   taken)
-- @param take_over true for the leader elected in etcd (weir.ha): the
--   job is its, even while a deposed leader's socket still answers
-- @return server (close it with :close()) | nil, message when another
--   process runs the job from this directory or the socket cannot be made
--   (the job can run without one; the caller warns)
-- Must be called outside loop callbacks (it waits for a probe connection).
function M.serve(job_dir, run_dir, handlers, take_over)
  local path = run_dir .. "/" .. M.SOCKET
  if #path > M.MAX_SOCKET_PATH then
    return nil, string.format("its control socket path %s is longer than "
      .. "%d bytes", path, M.MAX_SOCKET_PATH)
  end
  local other = M.socket_path(job_dir)
  if other and core.stat(other) and not take_over then
    local conn = connect_wait(other, 1000)
    if conn then
      conn:close()
      return nil, string.format("another process runs this job from %s "
        .. "(see weir jobs); two runs must not share a job's checkpoints",
        job_dir), "running"
    end
  end
  local conns = {}
  -- Any process that may open the socket can send requests: they are
  -- bounded (MAX_REQUEST_BYTES) and checked before they are decoded, so
  -- that no request can make the coordinator allocate more than a small
  -- multiple of its size or stall it (see DESIGN.md, "Trust boundary").
  -- The decoding runs interpreted: LuaJIT 2.1 as Debian ships it crashes
  -- when string.buffer raises an error from a compiled trace.
  local function decode_request(bytes)
    if core.serialized_check(bytes) ~= #bytes then return nil end
    local ok, msg = pcall(buffer.decode, bytes)
    return ok and type(msg) == "table" and msg or nil
  end
  jit.off(decode_request)
  local server, err = core.listen(path, errors.guard(function(conn)
    conns[conn] = true
    conn:on_frame(errors.guard(function(bytes, message, code)
      if not bytes then
        if code == "E2BIG" then
          errors.warn("closed a connection to the control socket " .. path
            .. ": it sent " .. message)
        end
        conns[conn] = nil
        conn:close()
        return
      end
      local msg = decode_request(bytes)
      local function reply(r) conn:send(buffer.encode(r)) end
      if not msg then
        return reply({ error = "not a weir control request" })
      end
      local h = handlers[msg.t]
      if not h then
        return reply({ error = "unknown request " .. tostring(msg.t) })
      end
      if msg.t == "status" or msg.t == "metrics" then
        local r = h()
        r.ok = true
        return reply(r)
      end
      h(msg.dir, function(herr, spath)
        if herr then reply({ error = herr })
        else reply({ ok = true, path = spath }) end
      end, msg.drain == false)
    end), nil, M.MAX_REQUEST_BYTES)
  end))
  if not server then
    return nil, string.format("cannot listen on %s: %s", path, err)
  end
  local pok, perr = write_pointer(job_dir, path)
  if not pok then
    server:close()
    core.unlink(path)
    return nil, perr
  end
  local control = { path = path }
  --- Stops listening and ends open connections once their replies are
  -- sent (their clients see the end of stream), removing the socket.
  function control.close()
    if server then server:close() server = nil end
    for c in pairs(conns) do c:shutdown() end
    conns = {}
    if M.socket_path(job_dir) == path then
      core.unlink(M.pointer_path(job_dir))
    end
    core.unlink(path)
  end
  return control
end

-- SIGTERM and SIGINT stop the job as `weir cancel` does, but keep its
-- checkpoints (--restore latest resumes it), after a savepoint into
-- options.savepoint_on_stop if set: cancel(cb) cancels it. A
-- second signal ends the process at once. Returns a function that stops
-- listening for them.
local function stop_on_signals(job, cancel)
  local stopping = false
  local function on_signal(name)
    if stopping then
      errors.warn("SIG" .. name .. " again: exiting at once, without "
        .. "stopping the job cleanly")
      core.exit(name == "INT" and 130 or 143)
    end
    stopping = true
    job.options.retain_on_cancel = true
    errors.note(string.format("SIG%s: stopping job '%s'; its checkpoints "
      .. "are kept (--restore latest resumes it); send it again to exit at "
      .. "once", name, job.name))
    cancel(function(err, path)
      if err then
        errors.warn("cannot stop the job: " .. err)
        stopping = false
      elseif path then
        errors.note("savepoint " .. path)
      end
    end)
  end
  local handles = { core.signal("TERM", on_signal),
    core.signal("INT", on_signal) }
  return function()
    for _, s in ipairs(handles) do s:close() end
  end
end

--- Serves the control socket of a running job (see M.serve; in
-- job.run_dir, or in a run directory of its own, see weir.rundir):
-- status, metrics, savepoint and cancel requests; SIGTERM and SIGINT
-- stop the job as a cancel that keeps its checkpoints.
-- @param job a prepared job (weir.launch.prepare)
-- @param h { coordinator = fn() -> the job's checkpoint coordinator, or
--   nil while the job restarts; info = fn() -> fields the status adds
--   (parallelism, workers, restarts); metrics = fn() -> per-task samples
--   (weir.host Host:metrics); cancel_idle = fn(cb, no_drain), optional:
--   cancels the job while it has no coordinator (between a failure and
--   its restart; a job that drains, unless no_drain, drains once
--   restarted) }
-- @return the control server (close it with .close()), or nil after a
--   warning when there cannot be one; raises when another process runs
--   the job from the same directory, or when the job directory cannot be
--   made and checkpoints are on
function M.serve_job(job, h)
  local start_ms = core.monotonic_ms()
  local current = h.coordinator
  -- Directories made only for the socket are removed with it.
  local made = {}
  for _, dir in ipairs({ job.options.checkpoint_dir, job.job_dir }) do
    if not core.stat(dir) then table.insert(made, 1, dir) end
  end
  local ok, err = fsutil.mkdir_p(job.job_dir)
  if not ok and job.options.checkpoint_interval > 0 then
    error("checkpoint_dir: " .. err, 0)
  elseif not ok then
    errors.warn("job control (weir jobs, savepoint, cancel) is off: " .. err)
    return nil
  end
  local function with_coord(cb)
    local c = current()
    if not c then
      cb("the job is restarting after a failure; try again shortly")
    end
    return c
  end
  local run_dir = job.run_dir
  local own_run_dir = not run_dir
  if own_run_dir then run_dir = rundir.create() end
  local handlers
  handlers = {
    status = function()
      local c = current()
      local r = h.info()
      r.job, r.pid = job.name, core.getpid()
      r.uptime_ms = core.monotonic_ms() - start_ms
      r.state = not c and "restarting" or c.stopped and "stopping"
        or not c.started and "starting" or "running"
      r.checkpoints = c and c.checkpoints or 0
      r.last_checkpoint = c and c.last_completed
        and checkpoint.path(job.job_dir, c.last_completed) or nil
      return r
    end,
    metrics = function() return { tasks = h.metrics() } end,
    savepoint = function(dir, cb)
      local c = with_coord(cb)
      if not c then return end
      if type(dir) ~= "string" then
        return cb("a savepoint needs a directory")
      end
      c:savepoint(dir, cb)
    end,
    cancel = function(dir, cb, no_drain)
      if not current() and not dir and h.cancel_idle then
        return h.cancel_idle(cb, no_drain)
      end
      local c = with_coord(cb)
      if c then c:cancel(dir, cb, no_drain) end
    end,
  }
  local server, serr, code = M.serve(job.job_dir, run_dir, handlers,
    job.leader ~= nil)
  if not server then
    if own_run_dir then rundir.remove(run_dir) end
    if code == "running" then error("cannot run job '" .. job.name .. "': "
      .. serr, 0) end
    errors.warn("job control (weir jobs, savepoint, cancel) is off: " .. serr)
    return nil
  end
  local close = server.close
  local started, web = pcall(require("weir.http_api").start, job, handlers,
    current)
  if not started then  -- a bad --http setting: nothing stays open
    close()
    if own_run_dir then rundir.remove(run_dir) end
    for _, dir in ipairs(made) do core.rmdir(dir) end
    error(web, 0)
  end
  local unsignal = stop_on_signals(job, function(cb)
    if not current() and h.cancel_idle then return h.cancel_idle(cb) end
    local c = with_coord(cb)
    local dir = job.options.savepoint_on_stop
    if c then c:cancel(dir and M.absolute(dir) or nil, cb) end
  end)
  function server.close()
    unsignal()
    if web then web.close() end
    close()
    if own_run_dir then rundir.remove(run_dir) end
    for _, dir in ipairs(made) do core.rmdir(dir) end
  end
  return server
end

--- Resolves a job given on the command line: a job directory (holding
-- coordinator.sock.path) or a job name under checkpoint_dir.
-- @return job directory
function M.job_dir(job, checkpoint_dir)
  if job:find("/", 1, true) or core.stat(M.pointer_path(job)) then
    return (job:gsub("/+$", ""))
  end
  return (checkpoint_dir or "checkpoints") .. "/" .. job
end

--- Sends one request to the job in job_dir and waits for its reply,
-- running the loop (call it outside loop callbacks).
-- @param msg request table (see the module's comment)
-- @param timeout_ms bound on the wait for the reply (nil: none, for
--   savepoints, which take as long as a checkpoint)
-- @param wait_end after the reply, also wait for the job's process to end
--   (cancel), bounded by timeout_ms or 60 s
-- @return reply table { ok = true, ... } | nil, message
function M.request(job_dir, msg, timeout_ms, wait_end)
  local path, perr = M.socket_path(job_dir)
  if not path then return nil, perr end
  if not core.stat(path) then
    return nil, string.format("no running job in %s (the job that "
      .. "listened at %s has ended)", job_dir, path)
  end
  local conn, err, code = connect_wait(path, timeout_ms or M.TIMEOUT_MS)
  if not conn then
    if code == "ECONNREFUSED" or err == "connection refused" then
      return nil, string.format("no running job in %s (the job that "
        .. "listened there has ended)", job_dir)
    end
    return nil, string.format("cannot reach the job in %s: %s", job_dir, err)
  end
  local reply, ended
  conn:on_frame(function(bytes)
    if not bytes then
      ended = true
      return
    end
    reply = buffer.decode(bytes)
  end)
  conn:send(buffer.encode(msg))
  local deadline = timeout_ms and core.monotonic_ms() + timeout_ms
  local timer = core.timer(function() end)
  if timeout_ms then timer:start(timeout_ms, 0) end
  while not reply and not ended
      and (not deadline or core.monotonic_ms() < deadline) do
    core.run_once()
  end
  if reply and reply.ok and wait_end then
    deadline = core.monotonic_ms() + (timeout_ms or 60000)
    timer:start(deadline - core.monotonic_ms(), 0)
    while not ended and core.monotonic_ms() < deadline do core.run_once() end
    if not ended then reply = { error = "the job did not end within "
      .. (timeout_ms or 60000) .. " ms after it was cancelled" } end
  end
  timer:close()
  conn:close()
  if not reply then
    return nil, ended and string.format("the job in %s ended before it "
      .. "replied", job_dir) or string.format("the job in %s did not reply "
      .. "within %d ms", job_dir, timeout_ms)
  end
  if not reply.ok then return nil, reply.error end
  return reply
end

--- Lists the running jobs under checkpoint_dir: the status replies of
-- every job directory with a live control socket, sorted by name.
-- @return { { job, pid, job_dir, parallelism, state, uptime_ms,
--   checkpoints, last_checkpoint, restarts } }
function M.jobs(checkpoint_dir)
  local out = {}
  local names = core.scandir(checkpoint_dir) or {}
  table.sort(names)
  for _, name in ipairs(names) do
    local dir = checkpoint_dir .. "/" .. name
    if core.stat(M.pointer_path(dir)) then
      local r = M.request(dir, { t = "status" }, M.TIMEOUT_MS)
      if r then
        r.ok, r.job_dir = nil, dir
        r.uptime_ms = math.floor(r.uptime_ms)
        out[#out + 1] = r
      end
    end
  end
  return out
end

return M
