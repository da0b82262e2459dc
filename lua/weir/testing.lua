--- weir.testing: testing a pipeline's logic from busted, as Flink's test
-- harnesses do (KeyedOneInputStreamOperatorTestHarness and its kin, and a
-- job run over in-memory sources).
--
-- M.harness drives one keyed operator by hand — process, reduce, a
-- window's aggregate or apply, connect(...):process, join — in this
-- process, without a job: push records with their timestamps, advance
-- the watermark and the processing time, read what it emitted and which
-- timers fired, snapshot it and restore the snapshot into a fresh
-- harness. Nothing reads the wall clock: processing time is the
-- harness's own (0 until set).
--
-- M.run runs a whole pipeline in this process over in-memory inputs and
-- returns the records every output received.
local buffer = require "string.buffer"
local operators = require "weir.operators"
local windows = require "weir.windows"
local pipeline = require("weir.pipeline").pipeline

local M = {}

local MAX_PARALLELISM = 128

local Harness = {}
Harness.__index = Harness

-- The keyed operator kinds a harness drives, and their number of inputs.
local INPUTS = { process = 1, reduce = 1, window = 1, co_process = 2,
  window_join = 2 }

--- A harness around the operator that build adds last.
-- @param build fn(input [, input2]) -> stream: input (and input2, for an
--   operator with two inputs) a stream the harness feeds; build keys it
--   and adds the operator, e.g. `function(s) return s:key_by(f):process(g)
--   end`, or `function(a, b) return a:key_by(f):connect(b:key_by(g))
--   :process{...} end`
-- @param opts { max_parallelism = 128 } (optional)
-- @return a Harness; raises when build's last operator is not keyed
function M.harness(build, opts)
  opts = opts or {}
  local p = pipeline { name = "harness" }
  local a = p:sequence(1, 1):uid("harness-input-1")
  local b = p:sequence(1, 1):uid("harness-input-2")
  local s = build(a, b)
  local node = type(s) == "table" and s.node
  if not node or not INPUTS[node.kind] then
    error("weir.testing.harness: build must return the stream of a keyed "
      .. "operator (process, reduce, window aggregate or apply, "
      .. "connect(...):process, join), got "
      .. (node and node.kind or tostring(s)), 2)
  end
  local t = setmetatable({ node = node, records = {}, watermarks = {},
    fired = {}, side = {}, now = 0,
    stats = { late_records = 0, failed_records = 0 },
    max_parallelism = opts.max_parallelism or MAX_PARALLELISM }, Harness)
  t:instantiate()
  return t
end

-- Wraps the user's on_timer to note each timer that fires.
local function noting_timers(t, node)
  local user = node.on_timer
  if not user or node.harness_wrapped then return end
  node.harness_wrapped = true
  node.on_timer = function(ctx, time)
    t.fired[#t.fired + 1] = { key = ctx.key, timestamp = time }
    return user(ctx, time)
  end
end

function Harness:instantiate()
  local node = self.node
  noting_timers(self, node)
  local side = setmetatable({}, { __index = function(s, name)
    local list = {}
    self.side[name] = list
    local function push(v, ts) list[#list + 1] = { value = v, timestamp = ts } end
    rawset(s, name, push)
    return push
  end })
  local env = { max_parallelism = self.max_parallelism, subtask = 0,
    parallelism = 1, side = side, stats = self.stats, task_id = 1,
    emit_watermark = function(w) self.watermarks[#self.watermarks + 1] = w end,
    now_ms = function() return self.now end,
    wall_ms = function() return self.now end,
    clock = { now = self.now }, job_name = "harness", options = {},
    wake = function() end }
  self.env = env
  local make = operators[node.kind] or windows[node.kind]
  self.inst = operators.skip_failures(make(node, function(v, ts)
    self.records[#self.records + 1] = { value = v, timestamp = ts }
  end, env), node, env)
  self.pushes = self.inst.inputs or { self.inst.push }
end

--- Pushes record into input k (1, the default, or 2 for the right side
-- of an operator with two inputs), as event-time ts (ms; nil for none).
-- Its key is computed by the input's key_by. Raises what user code raises.
function Harness:push(record, ts, k)
  k = k or 1
  local input = self.node.inputs[k]
  if not input or not self.pushes[k] then
    error("weir.testing: the operator has no input " .. tostring(k), 2)
  end
  local key = input.kind == "key_by" and input.fn(record) or nil
  self.pushes[k](record, ts, key)
end

--- Advances the watermark to w (ms): event-time timers and windows up to
-- w fire.
function Harness:watermark(w)
  self.inst.watermark(w)
end

--- Sets the processing time to ms (since the epoch, as ctx:processing_time
-- gives it): processing-time timers due by then fire.
function Harness:processing_time(ms)
  self.now = ms
  self.env.clock.now = ms
  if self.inst.periodic then self.inst.periodic() end
end

--- The end of bounded input: finish (process's finish option) runs for
-- every key with state.
function Harness:finish()
  if self.inst.finish then self.inst.finish() end
end

--- The values emitted so far, in order (then cleared with clear = true).
function Harness:output(clear)
  local out = {}
  for i, r in ipairs(self.records) do out[i] = r.value end
  if clear then self.records = {} end
  return out
end

--- The values of side output name ("late" of a window, "failed" of an
-- operator with on_error("skip")) so far; t.stats counts them
-- ({ late_records, failed_records }).
function Harness:side_output(name)
  local out = {}
  for i, r in ipairs(self.side[name] or {}) do out[i] = r.value end
  return out
end

--- The operator's snapshot, as bytes (string.buffer's encoding, as a
-- checkpoint holds it): give it to M.harness's restore.
function Harness:snapshot()
  return buffer.encode(self.inst.snapshot(1))
end

--- Restores a snapshot (Harness:snapshot) taken from a harness of the same
-- operator into this fresh harness.
function Harness:restore(bytes)
  self.inst.restore({ { subtask = 0, state = buffer.decode(bytes) } })
end

--- Runs a pipeline in this process over in-memory inputs and returns what
-- each output received. Checkpoints are off; the job's directory is a
-- temporary one, removed after.
-- @param build fn(p, inputs) -> { name = stream }: p the weir.pipeline,
--   inputs[name] a stream of opts.inputs[name]'s records in order; the
--   streams returned are the outputs
-- @param opts { inputs = { name = { record, ... } }, parallelism = 1,
--   max_parallelism = 128 }
-- @return { name = { record, ... } }, each output's records in the order
--   they came (at parallelism 1, deterministic); raises what the job
--   raises
function M.run(build, opts)
  opts = opts or {}
  local core = require "weir.core"
  -- os.tmpname creates a file no one else has: its name plus ".d" is
  -- this run's directory.
  local file = os.tmpname()
  local dir = file .. ".d"
  assert(core.mkdir(dir))
  local p = pipeline { name = "test", parallelism = opts.parallelism
    or 1, max_parallelism = opts.max_parallelism, checkpoint_dir = dir }
  local inputs = {}
  local names = {}
  for name in pairs(opts.inputs or {}) do names[#names + 1] = name end
  table.sort(names)  -- the same plan, and uids, on every run
  for _, name in ipairs(names) do
    local list = opts.inputs[name]
    inputs[name] = p:sequence(1, #list):uid("input-" .. name)
      :map(function(i) return list[i] end)
  end
  local outputs = build(p, inputs)
  if type(outputs) ~= "table" then
    error("weir.testing.run: build must return { name = stream }", 2)
  end
  local collected, outs = {}, {}
  for name in pairs(outputs) do outs[#outs + 1] = name end
  table.sort(outs)
  for _, name in ipairs(outs) do
    collected[name] = outputs[name]:collect()
  end
  local ok, err = pcall(p.run, p)
  os.execute("rm -rf '" .. dir .. "'")
  os.remove(file)
  if not ok then error(err, 0) end
  return collected
end

return M
