--- Launching a job: plans a pipeline into a job and runs it to the end,
-- in this process (a host with every task, restarted after failures as
-- the restart strategy allows) or, when the weir command line runs a
-- script at a parallelism above 1, on worker processes (weir.supervisor
-- on the coordinator's side, weir.worker in each worker).
--
-- What the command line knows about the run (the script, its arguments
-- and flags, whether this process is a worker) reaches the job through
-- one launch context (Flink's context environment), set only for as long
-- as the script runs (M.with_context); a pipeline run from plain LuaJIT,
-- the REPL or a spec has none.
local core = require "weir.core"
local agents_mod = require "weir.agents"
local checkpoint = require "weir.checkpoint_storage"
local control = require "weir.control"
local coordinator = require "weir.coordinator"
local errors = require "weir.errors"
local fsutil = require "weir.fsutil"
local ha = require "weir.ha"
local host_mod = require "weir.host"
local kinds = require "weir.kinds"
local plan = require "weir.plan"
local restart = require "weir.restart"
local supervisor = require "weir.supervisor"
local worker = require "weir.worker"

local M = {}

-- The launch context of the script running now, or nil (see the header).
local context = nil

--- Runs fn(...) with ctx as the launch context; returns what fn returns
-- and raises what it raises, the context being unset again either way.
-- @param ctx { script = path, script_args = { ... }, flags = { weir run
--   flags, passed on to workers }, overrides = { the pipeline options
--   those flags set, which override the script's }, default_parallelism
--   = n, report = fn(stats) (sees every run's statistics) } for `weir
--   run`, or { worker = { coordinator = socket, coordinator_pid, worker
--   = index, workers = count, parallelism = n, run_dir, restore_path },
--   overrides } for `weir worker`
function M.with_context(ctx, fn, ...)
  local previous = context
  context = ctx
  local result = { pcall(fn, ...) }
  context = previous
  if not result[1] then error(result[2], 0) end
  return unpack(result, 2, table.maxn(result))
end

--- The launch context of the script running now (see M.with_context), or
-- nil outside the weir command line.
function M.context()
  return context
end

--- Plans a pipeline into a job: { pipeline, options, name, job_dir, plan,
-- lineage }. lineage = { run_id, restarts, base }: run_id names this run
-- in the manifest of every checkpoint it takes, restarts counts its
-- restarts after failures, and base is the path of the checkpoint or
-- savepoint it started from (set by weir.coordinator), so a restart
-- fails over only onto checkpoints of this run's own lineage.
-- @param p Pipeline (weir.pipeline)
-- @param parallelism the default parallelism of its operators
function M.prepare(p, parallelism)
  local o = p.options
  -- Under weir run the pipeline's log_level (or --log-level) holds.
  if context then errors.configure_log({ level = o.log_level }) end
  return { pipeline = p, options = o, name = o.name, cli = context ~= nil,
    job_dir = o.checkpoint_dir .. "/" .. o.name,
    plan = plan.plan(p, parallelism),
    lineage = { restarts = 0, run_id = string.format("%x-%x",
      math.floor(core.time_ms()), core.getpid()) } }
end

-- -- In this process --------------------------------------------------------

--- Starts every task of the job in this process: builds, restores, opens,
-- listens for control requests and starts the host and the coordinator
-- on the loop, which the caller runs. state (a table) receives coord,
-- host, control and running (true once failures are no longer in the
-- set-up). on_finish(), if given, runs when the job has finished.
-- Returns false when the restored checkpoint is a finished job's (nothing
-- left to run); raises on a set-up failure.
function M.start_local(job, state, on_finish)
  local coord = coordinator.new(job)
  local host = host_mod.new(job, 0, 1)
  state.coord, state.host = coord, host
  coord.hosts = { host }
  host.coord = coord
  host:build()
  local restored = coord:restore_point()
  host:restore(restored)
  host:open()
  if restored and restored.manifest.final then
    -- The job had finished; recovering the sinks committed its output.
    coord.last_completed = restored.manifest.id
    return false
  end
  state.running = true  -- failures from now on are not in the set-up
  state.control = control.serve_job(job, {
    coordinator = function() return coord end,
    info = function() return { parallelism = job.plan.default_parallelism,
      restarts = 0 } end,
    metrics = function() return host:metrics() end })
  coord.on_finish = function()
    if state.control then state.control.close() state.control = nil end
    if on_finish then on_finish() end
  end
  host:start()
  coord:start()
  return true
end

--- Stops the loop handles M.start_local started (state as it filled it).
function M.stop_local(state)
  if state.coord then state.coord:close() end
  if state.control then state.control.close() state.control = nil end
  if state.host then state.host:stop() end
end

--- Stops what M.start_local started (after the job finished, failed or
-- was cancelled) and returns the job's statistics (see M.run); raises
-- err's message when the job failed (ok false).
function M.finish_local(job, state, start_ms, ok, err)
  M.stop_local(state)
  if state.host then state.host:close() end
  if not ok then
    if os.getenv("WEIR_DEBUG") and err.traceback then
      io.stderr:write(err.traceback, "\n")
    end
    error(tostring(err.message), 0)
  end
  local coord = state.coord
  if coord.cancelled then
    -- Once no snapshot write is in flight (a background job's may be).
    state.host.checkpoints:after_writes(function()
      coord:remove_checkpoints()
    end)
  end
  return { name = job.name, checkpoints = coord.checkpoints,
    records = coord:close_metrics(),
    late_records = state.host.stats.late_records,
    failed_records = state.host.stats.failed_records,
    last_checkpoint = coord.last_completed and
      checkpoint.path(job.job_dir, coord.last_completed),
    restored_from = coord.restored and coord.restored.path,
    cancelled = coord.cancelled and true or nil,
    savepoint = coord.cancelled and coord.cancelled.savepoint,
    duration_ms = core.monotonic_ms() - start_ms }
end

-- Waits delay ms, running the loop.
local function wait_ms(delay)
  local due = false
  local timer = core.timer(function() due = true end)
  timer:start(delay, 0)
  while not due do core.run_once() end
  timer:close()
end

-- Runs the job in this process until it ends; after a failure in a
-- running job (not in its set-up: a missing input or a checkpoint that
-- does not fit) it restarts from the newest checkpoint of the run's
-- lineage as the restart strategy allows, when restarts is true.
-- Returns the statistics of M.finish_local, or raises its error.
local function run_local(job, restarts)
  local strategy = restarts and restart.strategy(job.options.restart)
  local start = core.monotonic_ms()
  local lineage = job.lineage
  while true do
    local state = {}
    local ok, err = xpcall(function()
      if M.start_local(job, state) then core.run() end
    end, errors.handler)
    if not ok then M.stop_local(state) end
    core.drain()
    if state.coord then state.coord:remove_abandoned() end
    local delay = not ok and state.running and strategy
      and strategy:next_delay(core.monotonic_ms())
    if not ok and state.running and job.history then
      job.history:exception(tostring(err.message),
        delay and lineage.restarts + 1 or nil)
    end
    if not delay then
      if not ok and state.running and strategy then
        err.message = restart.give_up_message(tostring(err.message),
          lineage.restarts, lineage)
      end
      local stats = M.finish_local(job, state, start, ok, err)
      stats.restarts = lineage.restarts
      return stats
    end
    if state.host then state.host:close() end
    lineage.restarts = lineage.restarts + 1
    errors.warn(restart.restarting_message(tostring(err.message), delay,
      lineage.restarts))
    wait_ms(delay)
  end
end

-- Warns about stateful operators without an explicit uid.
local function warn_uids(p)
  local stateful = kinds.with("stateful")
  for _, node in ipairs(p.nodes) do
    if stateful[node.kind] and not node.explicit_uid then
      errors.warn(string.format("%s keeps state but has no :uid(); its "
        .. "state is named '%s' after its place in the graph, which "
        .. "changes when operators are added before it",
        errors.describe(node), node.uid))
    end
  end
end

--- Runs a pipeline to completion: in this process, or, when the weir
-- command line runs a script at a parallelism above 1, on worker
-- processes; in a worker process, that worker's share of it.
-- @param p Pipeline (weir.pipeline)
-- @return { name = job name, checkpoints = checkpoints completed by this
--   run, late_records = records windows found too late, failed_records
--   = records skipped by on_error "skip", last_checkpoint = path|nil, restored_from = path|nil, duration_ms = wall time,
--   restarts = restarts after failures, records = records the sources
--   read (nil without metrics), cancelled = true|nil (weir cancel),
--   savepoint = path|nil (the savepoint it was cancelled with) }; the
--   launch context's report(stats), if set, sees it too
-- Raises a one-line message on failure: a user function that threw (with
-- the operator, where the script defined it and the record), a checkpoint
-- that failed, a missing input, an unusable directory, another process
-- running the same job. Complete checkpoints are left intact for
-- `restore = "latest"`.
function M.run(p)
  local ctx = context or {}
  if ctx.worker then
    return worker.run(M.prepare(p,
      ctx.worker.parallelism), ctx.worker)
  end
  local parallelism = p.options.parallelism or ctx.default_parallelism or 1
  -- weir run --ha: lead the job, or wait as a standby until it can.
  local leader = ctx.script and p.options.ha and ha.lead(p.options.ha,
    p.options.name, fsutil.absolute(p.options.checkpoint_dir .. "/"
      .. p.options.name), 2 * p.options.heartbeat_timeout,
    p.options.ha_new_run)
  -- weir run --agents: the workers run on the agents, by default one
  -- subtask per slot they offer.
  local agents = ctx.script and p.options.agents
    and agents_mod.connect(p.options.agents, p.options.secret_file)
  if agents then parallelism = p.options.parallelism or agents.slots end
  local job = M.prepare(p, parallelism)
  if ctx.script then warn_uids(p) end
  if leader then
    if leader.adopt then
      job.lineage.run_id, job.lineage.base = leader.adopt.run_id,
        leader.adopt.base
      job.lineage.last = leader.adopt.last
      job.lineage.adopted = true
    end
    job.leader = leader
  end
  local ok, stats = pcall(function()
    if (agents or job.plan.max_parallelism > 1) and ctx.script then
      return supervisor.run(job, ctx, agents)
    end
    return run_local(job, ctx.script or p.options.restart)
  end)
  if not ok then
    -- A failed run stays unfinished in etcd; the next coordinator of the
    -- job need not wait for the lease to end.
    if leader then leader:resign() end
    error(stats, 0)
  end
  if leader then leader:close(job.lineage) end
  if ctx.report then ctx.report(stats) end
  return stats
end

return M
