--- Runtime instances of the transforming operators (sources and sinks live
-- in weir.sources and weir.sinks, windows in weir.windows).
--
-- make(node, emit, env) returns an instance:
--   push(record, ts [, key]) receives a record with its event timestamp in
--                          ms (nil when none was assigned); keyed operators
--                          also get the key
--   watermark(w [, status]) the operator's input watermark advanced to w, or
--                          its input became "idle" / "active" (optional;
--                          by default forwarded)
--   snapshot(id) -> state  the synchronous part of a checkpoint (optional)
--   restore(olds)          replaces the state with a snapshot's: olds is
--                          { { subtask, state } } of every old subtask, so
--                          an operator restored at another parallelism
--                          takes its share (optional)
--   finish()               bounded input ended (optional)
--   periodic(now_ms)       called every loop turn (optional)
-- `emit(record, ts)` passes a record downstream, env.emit_watermark(w,
-- status) a watermark. Wrappers keep the record in a local named `record`
-- so weir.errors can show it when user code fails.
local checkpoint = require "weir.checkpoint_storage"
local core = require "weir.core"
local errors = require "weir.errors"
local State = require "weir.state"
local Timers = require "weir.timers"

local M = {}

local register = errors.register
local NO_WATERMARK = -math.huge

function M.map(node, emit)
  local fn = register(node.fn, node)
  return { push = register(function(record, ts)
    local v = fn(record)
    if v == nil then error(errors.messages.map_nil, 0) end
    emit(v, ts)
  end, node) }
end

function M.filter(node, emit)
  local fn = register(node.fn, node)
  return { push = register(function(record, ts)
    if fn(record) then emit(record, ts) end
  end, node) }
end

-- Records a flat_map emits keep the timestamp of the record they came from.
function M.flat_map(node, emit)
  local fn = register(node.fn, node)
  local current_ts
  local function user_emit(v) emit(v, current_ts) end
  return { push = register(function(record, ts)
    current_ts = ts
    fn(record, user_emit)
  end, node) }
end

-- key_by evaluates the key and hands (record, ts, key) to the keyed
-- operator.
function M.key_by(node, emit)
  local fn = register(node.fn, node)
  return { push = register(function(record, ts)
    emit(record, ts, fn(record))
  end, node) }
end

function M.union(node, emit)
  return { push = emit }
end

--- The side output of a window (`:late()`): passes records through.
M.late = M.union
--- The side output of an operator with on_error = "skip" (`:failed()`).
M.failed = M.union

--- With node.on_error = "skip", inst's inputs skip a record its own code
-- fails on (weir.errors.skipping): counted in env.stats.failed_records
-- and passed on, as { record, error, operator = uid }, to the side output
-- "failed" (`:failed()`). State the code changed before it raised stays
-- changed. Returns inst.
function M.skip_failures(inst, node, env)
  if node.on_error ~= "skip" then return inst end
  local stats, side = env.stats, env.side and env.side.failed
  local function on_failed(record, message, ts)
    stats.failed_records = stats.failed_records + 1
    if side then
      side({ record = record, error = message, operator = node.uid }, ts)
    end
  end
  inst.push = errors.skipping(inst.push, node, on_failed)
  for i, push in pairs(inst.inputs or {}) do
    inst.inputs[i] = errors.skipping(push, node, on_failed)
  end
  return inst
end

--- with_timestamps: assigns each record its event timestamp fn(record)
-- (ms) and generates bounded out-of-orderness watermarks, advanced per
-- record so that the watermark a record meets downstream does not depend
-- on batching: watermark = max timestamp seen - max_out_of_orderness - 1.
-- Upstream watermarks are ignored except the final one (end of input)
-- and an upstream source that says it is idle (it has nothing to read).
-- After idle_timeout ms without a record the output is marked idle, so a
-- downstream operator with several inputs stops waiting for it.
function M.with_timestamps(node, emit, env)
  local fn = register(node.fn, node)
  local ooo, idle_timeout = node.max_out_of_orderness, node.idle_timeout
  local emit_watermark, now_ms = env.emit_watermark, env.now_ms
  local max_ts, current = NO_WATERMARK, NO_WATERMARK
  local last_record_ms, idle = now_ms(), false
  local inst = {}
  inst.push = register(function(record, _)
    local ts = fn(record)
    if type(ts) ~= "number" or ts ~= ts then
      error(string.format(errors.messages.bad_timestamp,
        ts ~= ts and "NaN" or type(ts)), 0)
    end
    if idle then
      idle = false
      emit_watermark(current, "active")
    end
    if idle_timeout then last_record_ms = now_ms() end
    emit(record, ts)
    if ts > max_ts then
      max_ts = ts
      local w = ts - ooo - 1
      if w > current then
        current = w
        emit_watermark(w)
      end
    end
  end, node)
  -- A source subtask with nothing to read (no stream or partition of its
  -- own) says so: until a record comes, this output is idle too.
  function inst.watermark(w, status)
    if status == "idle" then
      if not idle and max_ts == NO_WATERMARK then
        idle = true
        emit_watermark(current, "idle")
      end
    elseif w == math.huge and current < w then
      current = w
      emit_watermark(w)
    end
  end
  if idle_timeout then
    function inst.periodic(now)
      if not idle and now - last_record_ms >= idle_timeout then
        idle = true
        emit_watermark(current, "idle")
      end
    end
  end
  function inst.snapshot() return { max_ts = max_ts, watermark = current } end
  -- Restored at any parallelism: the lowest watermark of the old subtasks,
  -- so no record counts as late that did not before.
  function inst.restore(olds)
    max_ts, current = math.huge, math.huge
    for _, o in ipairs(olds) do
      max_ts = math.min(max_ts, o.state.max_ts)
      current = math.min(current, o.state.watermark)
    end
  end
  return inst
end

-- -- Keyed operators ------------------------------------------------------

--- Shared by the keyed operators: keyed state with event-time timers,
-- the operator's current watermark, snapshot and restore (timers live in
-- the entries, so they are part of the keyed state), and whether finish
-- already ran (a restored finished operator must not emit its final
-- results twice). on_timer(e, t) fires an event-time timer.
function M.keyed(node, env, init, on_timer)
  local state = env.state_backend
    and env.state_backend:new_state(node, env, init)
    or State.new(env.max_parallelism, init)
  if state.mark and on_timer then
    -- A timer changes its key's state without a lookup.
    local fire = on_timer
    on_timer = function(e, t)
      state:mark(e)
      return fire(e, t)
    end
  end
  local between = env.between_timers
  if between and on_timer then
    -- Between two timers a task that ends may take a checkpoint's
    -- snapshot (see weir.task_checkpoint's between_timers).
    local fire = on_timer
    on_timer = function(e, t)
      fire(e, t)
      between()
    end
  end
  local timers = state.new_timer_queue and state:new_timer_queue("timers")
    or Timers.new("timers")
  local inst = { state = state, timers = timers, current = NO_WATERMARK }
  local emit_watermark = env.emit_watermark
  function inst.watermark(w, status)
    if status then return emit_watermark(w, status) end
    -- The same watermark again fires what is due too: a snapshot taken
    -- while its timers fired (a task whose input ended takes it at once,
    -- waiting for room between them) restores with some still due.
    if w < inst.current then return end
    inst.current = w
    timers:advance(w, on_timer)
    emit_watermark(w)
  end
  function inst.snapshot()
    return { key_groups = state:snapshot(), finished = inst.finished,
             watermark = inst.current }
  end
  local first, last = core.key_group_range(env.max_parallelism,
    env.parallelism, env.subtask)
  if state.db then
    -- The RocksDB backend's incremental checkpoint of the task's database
    -- (weir.rocksdb_checkpoint): this operator's state file references it.
    -- Called in the synchronous part: what the operator holds besides
    -- its keys is taken at the barrier; the returned function makes the
    -- state file once the upload is done (records flowed on meanwhile,
    -- and a watermark taken then would drop replayed records as late).
    function inst.snapshot_native()
      local finished, watermark = inst.finished, inst.current
      return function(ref)
        return { rocksdb = { dbid = ref.dbid, files = ref.files,
          private = ref.private, first = first, last = last,
          timer_keys = ref.timer_keys and ref.timer_keys[node.uid] },
          finished = finished, watermark = watermark }
      end
    end
  end
  -- On the heap the snapshot reads only this operator's memory: a forked
  -- copy of the process may take it (see weir.task_checkpoint).
  inst.fork_safe = getmetatable(state) == State
  -- Restored at any parallelism: the key groups this subtask owns, from
  -- whichever old subtask had them; the lowest old watermark.
  function inst.restore(olds)
    local groups, files, finished, watermark = {}, {}, true, math.huge
    local native = {}
    for _, o in ipairs(olds) do
      local ref = o.state.rocksdb
      if ref then
        if ref.first <= last and ref.last >= first then
          native[#native + 1] = ref
        end
      else
        local file = checkpoint.file_of(o.state.key_groups)
        for kg, bytes in pairs(o.state.key_groups) do
          if kg >= first and kg <= last then
            groups[kg], files[kg] = bytes, file
          end
        end
      end
      finished = finished and o.state.finished
      watermark = math.min(watermark, o.state.watermark)
    end
    state:restore(groups, nil, files)
    -- At the same parallelism the task's database may be the checkpoint's
    -- own files; else every key of the subtask's key groups is read.
    if #native == 1 and next(groups) == nil and state.db
        and env.state_backend:adopt(native[1], env.task_id, first, last) then
      state:queue_timer_keys(native[1].timer_keys)
    else
      for _, ref in ipairs(native) do
        env.state_backend:import(ref, node.uid, first, last,
          function(batch) state:restore_entries(batch) end)
      end
    end
    timers:rebuild(state)
    inst.finished, inst.current = finished, watermark
    if inst.restored then inst.restored() end
  end
  return inst, state, timers
end

-- The entry of key in state, with time-to-live (node.ttl_ms, see
-- Stream:ttl): a key whose state was not written for ttl_ms is met
-- with fresh state and marked written now; every RECORDS_PER_SWEEP
-- records one key group is swept for expired keys. Without a ttl, the
-- plain lookup (the RocksDB backend's get, which marks what it returns as
-- used and changed).
local RECORDS_PER_SWEEP = 1024

--- The lookup of a keyed operator's entries: lookup(key) -> the entry of
-- key in state (weir.state or weir.rocksdb_state), created if new. On
-- the RocksDB backend it is the state's get, which marks the entry as
-- used and changed, so that a flush writes back only what changed (the
-- state is then tracked); every change to an entry must then come
-- through it or through a timer (see M.keyed).
function M.lookup(state)
  local entries, lookup = state.entries, state.get
  if lookup then
    state.tracked = true
    return lookup
  end
  return function(key) return entries[key] or state:entry(key) end
end

local function entry_of(node, env, state)
  local ttl = node.ttl_ms
  local lookup = M.lookup(state)
  if not ttl then return lookup end
  local clock, init, records = env.clock, state.init, 0
  return function(key)
    local e = lookup(key)
    local now, written = clock.now, e.written
    if written and now - written >= ttl then
      e.state = init and init()
    end
    e.written = now
    records = records + 1
    if records >= RECORDS_PER_SWEEP then
      records = 0
      state:expire_some(now, ttl, 1)
    end
    return e
  end
end

function M.reduce(node, emit, env)
  local fn = register(node.fn, node)
  local inst, state = M.keyed(node, env)
  local entry = entry_of(node, env, state)
  inst.push = register(function(record, ts, key)
    local e = entry(key)
    local acc = e.state
    if acc == nil then acc = record else acc = fn(acc, record) end
    e.state = acc
    emit(acc, ts)
  end, node)
  return inst
end

--- process: fn(ctx, record) per record, on_timer(ctx, t) per timer and
-- finish(ctx) per key with state at the end of bounded input. ctx.subtask
-- (0-based index of this subtask), ctx.key,
-- ctx.state (the key's table), ctx.timestamp (the record's or the timer's
-- time), ctx.watermark, ctx:emit(v), ctx:timer(t) (event time) and
-- ctx:processing_timer(t) (wall-clock ms since the epoch).
-- fns: the user functions fn(ctx, record) of each input (one, or left and
-- right for co_process); returns the instance and a push per input.
local function keyed_process(node, emit, env, fns)
  local finish = register(node.finish, node)
  local on_timer = register(node.on_timer, node)
  local ctx = { subtask = env.subtask }
  local current_entry
  local function fire(e, t)
    current_entry = e
    ctx.key, ctx.state, ctx.timestamp = e.key, e.state, t
    on_timer(ctx, t)
  end
  local inst, state, timers = M.keyed(node, env,
    function() return {} end, fire)
  local ptimers = state.new_timer_queue
    and state:new_timer_queue("ptimers") or Timers.new("ptimers")
  local entry = entry_of(node, env, state)
  function ctx.emit(_, v) emit(v, ctx.timestamp) end
  function ctx.timer(_, t)
    if not on_timer then
      error("ctx:timer(t): give process an on_timer option to receive "
        .. "timers", 2)
    end
    if type(t) ~= "number" or t ~= t then
      error("ctx:timer(t): t must be a time in ms, got " .. tostring(t), 2)
    end
    timers:add(current_entry, t)
  end
  local wall_ms = env.wall_ms
  --- ctx:processing_time() -> the wall clock in ms since the epoch, the
  -- time processing-time timers compare with.
  function ctx.processing_time() return wall_ms() end
  function ctx.processing_timer(_, t)
    if not on_timer then
      error("ctx:processing_timer(t): give process an on_timer option to "
        .. "receive timers", 2)
    end
    if type(t) ~= "number" or t ~= t then
      error("ctx:processing_timer(t): t must be a time in ms, got "
        .. tostring(t), 2)
    end
    ptimers:add(current_entry, t)
  end
  setmetatable(ctx, { __index = function(_, k)
    if k == "watermark" then return inst.current end
  end })
  local pushes = {}
  for i, user_fn in ipairs(fns) do
    local fn = register(user_fn, node)
    pushes[i] = register(function(record, ts, key)
      local e = entry(key)
      current_entry = e
      ctx.key, ctx.state, ctx.timestamp = e.key, e.state, ts
      fn(ctx, record)
    end, node)
  end
  if on_timer then
    local wall_ms = env.wall_ms
    -- On the RocksDB backend a fired key's entry is changed (see keyed).
    local marked_fire = state.mark and function(e, t)
      state:mark(e)
      return fire(e, t)
    end or fire
    function inst.periodic()
      if ptimers:any() then ptimers:advance(wall_ms(), marked_fire) end
    end
  end
  function inst.restored() ptimers:rebuild(state) end
  function inst.finish()
    if inst.finished then return end
    inst.finished = true
    if not finish then return end
    state:each(function(e)
      local key = e.key
      if next(e.state) ~= nil then
        current_entry = e
        ctx.key, ctx.state, ctx.timestamp = key, e.state, nil
        finish(ctx)
      end
    end)
  end
  return inst, pushes
end

function M.process(node, emit, env)
  local inst, pushes = keyed_process(node, emit, env, { node.fn })
  inst.push = pushes[1]
  return inst
end

--- co_process (KeyedStream:connect(...):process{...}): process with two
-- inputs sharing the keyed state and timers; inst.inputs holds the push
-- of each.
function M.co_process(node, emit, env)
  local inst, pushes = keyed_process(node, emit, env,
    { node.left, node.right })
  inst.inputs = pushes
  return inst
end

return M
