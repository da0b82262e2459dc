--- The pipeline builder: the graph a script describes.
-- Nodes are numbered in construction order, so every run of the same
-- script builds the same graph and derives the same operator uids
-- ("<kind>-<number>"), which name operator state in snapshots.
local kinds = require "weir.kinds"
local options = require "weir.options"

local M = {}

local Pipeline, Stream, KeyedStream, WindowedStream = {}, {}, {}, {}
local Sink = {}
Pipeline.__index, Stream.__index = Pipeline, Stream
KeyedStream.__index, WindowedStream.__index = KeyedStream, WindowedStream
local ConnectedStreams = {}
ConnectedStreams.__index = ConnectedStreams
Sink.__index = Sink

--- Operator kinds that are sources (they start a chain and produce
-- records; see weir.sources), and those that keep state in checkpoints:
-- { [kind] = true }, from weir.kinds.
M.sources = kinds.with("source")
M.stateful = kinds.with("stateful")

--- Creates an empty pipeline.
-- @param opts table of options (see weir.options); the flags of `weir
--   run` (the launch context's overrides, see weir.launch) override them
-- @return Pipeline; raises on unknown or mistyped options
function M.pipeline(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("weir.pipeline: expected a table of options", 2)
  end
  local ctx = require("weir.launch").context()
  return setmetatable({ options = options.resolve(opts or {},
    ctx and ctx.overrides or {}), nodes = {} }, Pipeline)
end

-- Where the script called a builder method (level 3 from here). A file
-- is named in full: short_src cuts long paths to their last 56 bytes.
local function call_site()
  local info = debug.getinfo(4, "Sl")
  if not info then return "?" end
  local file = info.source:sub(1, 1) == "@" and info.source:sub(2)
    or info.short_src
  return file .. ":" .. (info.currentline or 0)
end

local function check_fn(method, fn, i)
  if type(fn) ~= "function" then
    error(string.format("%s: argument %d must be a function, got %s",
      method, i or 1, type(fn)), 3)
  end
end

--- Adds an operator node of kind to the graph, consuming the nodes in
-- inputs; the builder methods below call it. fields are the node's own
-- (its functions, options), kept in the node table itself.
-- @return the node: fields plus id, kind, uid ("<kind>-<id>"), inputs,
--   consumers and defined_at (the script's file:line)
function Pipeline:add(kind, inputs, fields)
  local node = fields or {}
  node.id = #self.nodes + 1
  node.kind = kind
  node.uid = kind .. "-" .. node.id
  node.inputs = inputs
  node.consumers = {}
  node.defined_at = call_site()
  for _, input in ipairs(inputs) do
    input.consumers[#input.consumers + 1] = node
  end
  self.nodes[node.id] = node
  return node
end

local function stream(p, node, mt)
  return setmetatable({ pipeline = p, node = node }, mt or Stream)
end

-- Sources (methods of Pipeline) and sinks (of Stream): weir.pipeline_io.
require("weir.pipeline_io").install(Pipeline, Stream, Sink, stream, check_fn)

--- Runs the pipeline to completion in this process (see weir.launch.run).
function Pipeline:run()
  return require("weir.launch").run(self)
end

--- Starts the pipeline in the background of this process and returns a
-- job handle at once (see weir.background.start): for the REPL, or a
-- script that takes savepoints of its own job.
function Pipeline:start()
  return require("weir.background").start(self)
end

--- Names this operator's state in every snapshot; without a uid it is
-- named by the operator's place in the graph ("process-4"), which changes
-- when operators are added before it. Returns the stream.
-- Raises on a uid that is not [letters digits _ . -] or is taken.
function Stream:uid(name)
  if type(name) ~= "string" or not name:match("^[%w_.-]+$") then
    error("uid: expected a name of letters, digits, '_', '.' and '-'", 2)
  end
  for _, node in ipairs(self.pipeline.nodes) do
    if node.uid == name and node ~= self.node then
      error(string.format("uid: '%s' is already the uid of %s (%s)", name,
        node.kind, node.defined_at), 2)
    end
  end
  self.node.uid = name
  self.node.explicit_uid = true
  return self
end
Sink.uid = Stream.uid

-- The keyed operators whose state may have a time-to-live (windows and
-- joins drop theirs as windows close).
local TTL_KINDS = { reduce = true, process = true, co_process = true }

--- Gives this keyed operator's state a time-to-live (Flink's
-- StateTtlConfig, on create and write, never returning expired state): a
-- key whose state was not written for ms milliseconds of processing time
-- (the wall clock) is met with fresh state, as if new, and is forgotten in
-- the background with its state (unless it has timers, which stay). A
-- record for a key counts as a write. After a restore, a key's time
-- counts from the restore. Returns the stream.
-- Raises on a ms that is not a number > 0, or an operator other than
-- reduce, process and connect(...):process.
function Stream:ttl(ms)
  if type(ms) ~= "number" or not (ms > 0) then
    error("ttl: expected a time in ms > 0", 2)
  end
  if not TTL_KINDS[self.node.kind] then
    error("ttl: " .. self.node.kind .. " keeps no state with a time-to-live "
      .. "(only reduce, process and connect(...):process do)", 2)
  end
  self.node.ttl_ms = ms
  return self
end

--- Sets this operator's parallelism (subtasks), overriding the
-- pipeline's.
function Stream:parallelism(n)
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then
    error("parallelism: expected an integer >= 1", 2)
  end
  if self.node.fixed_parallelism then
    error("parallelism: " .. self.node.kind .. " runs at parallelism "
      .. self.node.fixed_parallelism, 2)
  end
  self.node.own_parallelism = n
  return self
end

--- Applies fn to every record and emits its result (nil is an error).
function Stream:map(fn)
  check_fn("map", fn)
  return stream(self.pipeline, self.pipeline:add("map", { self.node },
    { fn = fn }))
end

--- Emits the records for which fn(record) is truthy.
function Stream:filter(fn)
  check_fn("filter", fn)
  return stream(self.pipeline, self.pipeline:add("filter", { self.node },
    { fn = fn }))
end

--- Calls fn(record, emit); fn emits zero or more records with emit(v).
function Stream:flat_map(fn)
  check_fn("flat_map", fn)
  return stream(self.pipeline, self.pipeline:add("flat_map", { self.node },
    { fn = fn }))
end

--- Assigns each record its event timestamp fn(record) (ms since the
-- epoch) and generates watermarks: max timestamp seen -
-- max_out_of_orderness - 1.
-- @param opts { max_out_of_orderness = ms (default 0), idle_timeout = ms
--   without records after which this input stops holding back the
--   watermark of a downstream operator with several inputs (default none) }
function Stream:with_timestamps(fn, opts)
  check_fn("with_timestamps", fn)
  if opts ~= nil and type(opts) ~= "table" then
    error("with_timestamps: argument 2 must be a table of options", 2)
  end
  opts = opts or {}
  local ooo, idle = opts.max_out_of_orderness or 0, opts.idle_timeout
  if type(ooo) ~= "number" or ooo < 0 or ooo ~= ooo then
    error("with_timestamps: max_out_of_orderness must be a number of ms "
      .. ">= 0", 2)
  end
  if idle ~= nil and (type(idle) ~= "number" or idle <= 0) then
    error("with_timestamps: idle_timeout must be a number of ms > 0", 2)
  end
  return stream(self.pipeline, self.pipeline:add("with_timestamps",
    { self.node }, { fn = fn, max_out_of_orderness = ooo,
                     idle_timeout = idle }))
end

--- The records a window found too late (all their windows were purged),
-- as a stream of their own.
function Stream:late()
  if self.node.kind ~= "window" then
    error("late: only the result of key_by(...):window(...) has late "
      .. "records", 2)
  end
  local node = self.pipeline:add("late", { self.node })
  node.side = "late"
  return stream(self.pipeline, node)
end

-- Kinds whose user code on_error may skip past.
local SKIPPABLE = { map = true, filter = true, flat_map = true,
  with_timestamps = true, reduce = true, process = true, co_process = true }

--- What the operator does when its code raises on a record: "fail" (the
-- default: the job fails and restarts from its last checkpoint) or
-- "skip" (the record is dropped, counted as a failed record, and goes
-- with its error to :failed(), exactly once).
-- @return the same stream; raises on another mode or operator
function Stream:on_error(mode)
  if mode ~= "fail" and mode ~= "skip" then
    error("on_error: expected \"fail\" or \"skip\", got "
      .. tostring(mode), 2)
  end
  if not SKIPPABLE[self.node.kind] then
    error("on_error: " .. self.node.kind .. " runs no code of yours "
      .. "(on_error applies to map, filter, flat_map, with_timestamps, "
      .. "reduce and process)", 2)
  end
  self.node.on_error = mode
  return self
end

--- The records the operator's code failed on (see Stream:on_error), as a
-- stream of { record = the record, error = the message, operator = its
-- uid } (dead letters, like :late()).
function Stream:failed()
  if self.node.on_error ~= "skip" then
    error("failed: only an operator with :on_error(\"skip\") has failed "
      .. "records", 2)
  end
  local node = self.pipeline:add("failed", { self.node })
  node.side = "failed"
  return stream(self.pipeline, node)
end

--- Partitions the stream by fn(record), the key (see weir.key).
-- @return KeyedStream, which offers reduce and process
function Stream:key_by(fn)
  check_fn("key_by", fn)
  return stream(self.pipeline, self.pipeline:add("key_by", { self.node },
    { fn = fn }), KeyedStream)
end

--- Merges this stream with others; the operator after a union has several
-- input channels and aligns checkpoint barriers across them.
function Stream:union(...)
  local inputs = { self.node }
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    if getmetatable(s) ~= Stream or s.pipeline ~= self.pipeline then
      error("union: argument " .. i .. " is not a stream of this pipeline", 2)
    end
    inputs[#inputs + 1] = s.node
  end
  return stream(self.pipeline, self.pipeline:add("union", inputs))
end

--- Keyed: emits fn(acc, record) for each record, acc being the key's
-- previous result (the first record of a key is emitted as is).
function KeyedStream:reduce(fn)
  check_fn("reduce", fn)
  return stream(self.pipeline, self.pipeline:add("reduce", { self.node },
    { fn = fn }))
end

--- Keyed: calls fn(ctx, record) with ctx.key, ctx.state (the key's own
-- table, kept in every checkpoint), ctx.timestamp, ctx.watermark and
-- ctx:emit(v); ctx:timer(ms) and ctx:processing_timer(ms) register timers
-- (ctx:processing_time() is the wall clock they compare with, in ms)
-- (one per key and time) that call opts.on_timer(ctx, ms).
-- opts.finish(ctx) runs once per key with non-empty state when bounded
-- input ends.
function KeyedStream:process(fn, opts)
  check_fn("process", fn)
  if opts ~= nil and type(opts) ~= "table" then
    error("process: argument 2 must be a table of options", 2)
  end
  opts = opts or {}
  if opts.finish ~= nil then check_fn("process", opts.finish, 2) end
  if opts.on_timer ~= nil then check_fn("process", opts.on_timer, 2) end
  return stream(self.pipeline, self.pipeline:add("process", { self.node },
    { fn = fn, finish = opts.finish, on_timer = opts.on_timer }))
end

--- Keyed: groups records into event-time windows (weir.tumbling,
-- weir.sliding, weir.session); follow with reduce, aggregate or apply.
-- @param opts { allowed_lateness = ms a fired window keeps its state and
--   re-fires with late records (default 0) }
function KeyedStream:window(assigner, opts)
  if type(assigner) ~= "table" or not assigner.kind then
    error("window: argument 1 must be weir.tumbling(ms), weir.sliding(ms, "
      .. "ms) or weir.session(ms)", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("window: argument 2 must be a table of options such as "
      .. "{ allowed_lateness = ms }, got " .. type(opts), 2)
  end
  opts = opts or {}
  local lateness = opts.allowed_lateness or 0
  if type(lateness) ~= "number" or lateness < 0 or lateness ~= lateness then
    error("window: allowed_lateness must be a number of ms >= 0", 2)
  end
  return setmetatable({ keyed = self, assigner = assigner,
                        allowed_lateness = lateness }, WindowedStream)
end

local function window_node(ws, functions)
  local p = ws.keyed.pipeline
  return stream(p, p:add("window", { ws.keyed.node }, {
    assigner = ws.assigner, allowed_lateness = ws.allowed_lateness,
    functions = functions }))
end

--- Emits, per key and window, the records reduced by fn(acc, record)
-- (also used to merge session windows).
function WindowedStream:reduce(fn)
  check_fn("reduce", fn)
  return window_node(self, { kind = "reduce", fn = fn })
end

--- Incremental aggregation per key and window: acc = init(); acc =
-- add(acc, record); merge(a, b) -> acc (needed by session windows);
-- emits result(acc, ctx) (ctx.key, ctx.window.start, ctx.window["end"]),
-- or acc without a result function.
function WindowedStream:aggregate(spec)
  if type(spec) ~= "table" then
    error("aggregate: expected { init = fn, add = fn, merge = fn, "
      .. "result = fn }", 2)
  end
  for _, name in ipairs({ "init", "add" }) do
    if type(spec[name]) ~= "function" then
      error("aggregate: " .. name .. " must be a function", 2)
    end
  end
  for _, name in ipairs({ "merge", "result" }) do
    if spec[name] ~= nil and type(spec[name]) ~= "function" then
      error("aggregate: " .. name .. " must be a function", 2)
    end
  end
  if self.assigner.kind == "session" and not spec.merge then
    error("aggregate: session windows merge; give a merge function", 2)
  end
  return window_node(self, { kind = "aggregate", init = spec.init,
    add = spec.add, merge = spec.merge, result = spec.result })
end

--- Calls fn(ctx, records) once per key and window with all its records;
-- ctx.key, ctx.window.start, ctx.window["end"], ctx:emit(v).
function WindowedStream:apply(fn)
  check_fn("apply", fn)
  return window_node(self, { kind = "apply", fn = fn })
end

-- -- Two inputs ---------------------------------------------------------------

--- Connects this keyed stream with another keyed stream of the pipeline,
-- keyed the same way (their key functions give equal keys for records
-- that belong together): both go to the subtask owning the key's group
-- and share the key's state. Follow with :process{...}.
-- @return ConnectedStreams
function KeyedStream:connect(other)
  if getmetatable(other) ~= KeyedStream or other.pipeline ~= self.pipeline then
    error("connect: argument 1 must be a keyed stream of this pipeline "
      .. "(s:key_by(fn))", 2)
  end
  return setmetatable({ pipeline = self.pipeline, left = self.node,
    right = other.node }, ConnectedStreams)
end

--- Keyed, two inputs: fns.left(ctx, record) for each record of the first
-- stream, fns.right(ctx, record) for each of the second, with the ctx of
-- KeyedStream:process (ctx.key, ctx.state shared by both sides,
-- ctx.timestamp, ctx.watermark -- the minimum of both inputs' --,
-- ctx:emit(v), ctx:timer(ms), ctx:processing_timer(ms)); fns.on_timer(ctx,
-- ms) and fns.finish(ctx) as for process. Checkpoint barriers are aligned
-- across both inputs.
function ConnectedStreams:process(fns)
  if type(fns) ~= "table" then
    error("process: expected { left = fn(ctx, record), right = fn(ctx, "
      .. "record), on_timer = fn(ctx, ms), finish = fn(ctx) }", 2)
  end
  for _, name in ipairs({ "left", "right" }) do
    if type(fns[name]) ~= "function" then
      error("process: " .. name .. " must be a function(ctx, record)", 2)
    end
  end
  for _, name in ipairs({ "on_timer", "finish" }) do
    if fns[name] ~= nil and type(fns[name]) ~= "function" then
      error("process: " .. name .. " must be a function", 2)
    end
  end
  return stream(self.pipeline, self.pipeline:add("co_process",
    { self.left, self.right }, { left = fns.left, right = fns.right,
      on_timer = fns.on_timer, finish = fns.finish }))
end

--- Window join (an inner join per window, as Flink's): pairs every record
-- l of this stream with every record r of other whose keys are equal
-- (opts.left_key(l) == opts.right_key(r)) and whose timestamps fall in
-- the same window; once the watermark passes the window, emits
-- opts.apply(l, r) for each pair (or { l, r }), timestamped with the
-- window's last ms. Both streams need timestamps (with_timestamps); a
-- record whose windows have all fired is late and counted.
-- @param opts { left_key = fn, right_key = fn, window =
--   weir.tumbling(ms) | weir.sliding(ms, ms), apply = fn(l, r) (optional) }
function Stream:join(other, opts)
  if getmetatable(other) ~= Stream or other.pipeline ~= self.pipeline then
    error("join: argument 1 must be a stream of this pipeline", 2)
  end
  if type(opts) ~= "table" then
    error("join: argument 2 must be { left_key = fn, right_key = fn, "
      .. "window = weir.tumbling(ms), apply = fn(l, r) }", 2)
  end
  for _, name in ipairs({ "left_key", "right_key" }) do
    if type(opts[name]) ~= "function" then
      error("join: " .. name .. " must be a function(record) -> key", 2)
    end
  end
  if opts.apply ~= nil and type(opts.apply) ~= "function" then
    error("join: apply must be a function(l, r)", 2)
  end
  local w = opts.window
  if type(w) ~= "table" or (w.kind ~= "tumbling" and w.kind ~= "sliding") then
    error("join: window must be weir.tumbling(ms) or weir.sliding(ms, ms)",
      2)
  end
  local p = self.pipeline
  local left = p:add("key_by", { self.node }, { fn = opts.left_key })
  local right = p:add("key_by", { other.node }, { fn = opts.right_key })
  return stream(p, p:add("window_join", { left, right },
    { assigner = w, apply = opts.apply }))
end

-- -- Readable values (the REPL prints them) ---------------------------------

local function describe(what)
  return function(s)
    local node = s.node or s.keyed and s.keyed.node or s.left
    return string.format("<weir %s: %s '%s' (%s)>", what, node.kind,
      node.uid, node.defined_at)
  end
end
Stream.__tostring, KeyedStream.__tostring = describe("stream"),
  describe("keyed stream")
Sink.__tostring, WindowedStream.__tostring = describe("sink"),
  describe("windowed stream")
ConnectedStreams.__tostring = describe("connected streams")
function Pipeline.__tostring(p)
  return string.format("<weir pipeline '%s', %d operators>", p.options.name,
    #p.nodes)
end

M.Stream, M.KeyedStream, M.Pipeline = Stream, KeyedStream, Pipeline
M.ConnectedStreams = ConnectedStreams
M.WindowedStream, M.Sink = WindowedStream, Sink
Sink.parallelism = Stream.parallelism
return M
