--- Building a host's tasks (weir.host): the operator instances of each
-- task's chain, wired to their consumers (direct calls within a chain,
-- routers and channels between chains), and each task's input channels.
-- M.install adds these methods to weir.host's Host.
local channel = require "weir.channel"
local core = require "weir.core"
local errors = require "weir.errors"
local kinds = require "weir.kinds"
local operators = require "weir.operators"
local plan = require "weir.plan"
local replay = require "weir.replay"
local router = require "weir.router"
local sources = require "weir.sources"
local sinks = require "weir.sinks"
local windows = require "weir.windows"
local redis_streams = require "weir.redis_streams"
local kafka = require "weir.kafka"
local socket_source = require "weir.socket_source"

local M = {}

local fan_out = router.fan_out
local SOURCES = kinds.with("source")

local Host = {}

local function factory(kind)
  return operators[kind] or sources[kind] or sinks[kind] or windows[kind]
    or redis_streams[kind] or kafka[kind] or socket_source[kind]
    or error("no runtime for operator kind " .. kind)
end

-- The writer of channel cid to consumer subtask j: in memory when the
-- consumer runs here, else over the network (self.remote_writer, set by
-- weir.worker).
function Host:writer(edge, i, j)
  local cid = channel.id(edge, i, j)
  if self:worker_of(j) == self.worker then
    self.channels[cid] = self.channels[cid] or channel.new()
    return channel.local_writer(self.channels[cid])
  end
  return self.remote_writer(cid, self:worker_of(j))
end

--- Instantiates the operators of this worker's tasks, wiring each to its
-- consumers: direct calls within a task, channels between tasks.
function Host:build()
  for _, t in ipairs(self.plan.tasks) do
    if self:worker_of(t.subtask) == self.worker then
      self:build_task(t)
    end
  end
  for _, task in ipairs(self.tasks) do self:connect_inputs(task) end
end

-- The push and watermark of consumer c of node in task: a direct call
-- within the chain, else the router of the edge to c's chain (its
-- writers become the task's outputs).
function Host:consumer_push(task, node, c)
  if c.chain == task.chain then
    return task.insts[c.id].push, task.insts[c.id].watermark
  end
  local push, watermark
  for _, edge in ipairs(c.chain.inputs) do
    if edge.from == node and edge.to == c then
      local ws
      push, watermark, ws = router.new(edge, task.subtask,
        function(j) return self:writer(edge, task.subtask, j) end,
        self.options.max_parallelism)
      for _, w in ipairs(ws) do task.outputs[#task.outputs + 1] = w end
    end
  end
  return push, watermark
end

-- Instantiates node of task, wired to its consumers (built before it).
function Host:build_node(task, node, is_head, prefix)
  local targets, watermarks, sides = {}, {}, {}
  for _, c in ipairs(node.consumers) do
    local push, watermark = self:consumer_push(task, node, c)
    if prefix and prefix[node] and not prefix[c] then
      push = replay.boundary(task, push, c.chain == task.chain)
    end
    if c.side then
      sides[c.side] = sides[c.side] or {}
      table.insert(sides[c.side], push)
    else
      targets[#targets + 1] = push
    end
    watermarks[#watermarks + 1] = watermark
  end
  for side, pushes in pairs(sides) do sides[side] = fan_out(pushes) end
  local env = { max_parallelism = self.options.max_parallelism,
    subtask = task.subtask, parallelism = task.chain.parallelism,
    emit_watermark = fan_out(watermarks), side = sides, stats = self.stats,
    now_ms = core.monotonic_ms, wall_ms = core.time_ms, clock = self.clock,
    state_backend = self.state_backend, task_id = task.id,
    job_name = self.job.name, job_dir = self.job.job_dir,
    options = self.options, wake = function() self:wake() end,
    between_timers = function() self.checkpoints:between_timers(task) end }
  local emit = fan_out(targets)
  if is_head and prefix then
    emit = replay.source_emit(task, emit)
    env.skip_outputs = replay.skip_outputs(task)
  end
  local inst = operators.skip_failures(factory(node.kind)(node, emit, env),
    node, env)
  inst.node = node
  inst.watermark = inst.watermark or env.emit_watermark
  if inst.periodic then self.periodic[#self.periodic + 1] = inst end
  if inst.notify_complete then self.sinks[#self.sinks + 1] = inst end
  task.insts[node.id] = inst
end

-- What receives the records of each input edge of task: the head's push
-- (an operator with several distinct inputs, like connect, has one per
-- input); the key of a record from key_by is computed again here.
local function edge_pushes(task)
  local head = task.insts[task.chain.head.id]
  task.edge_push, task.edge_direct = {}, {}
  for _, edge in ipairs(task.chain.inputs) do
    local push = head.inputs and head.inputs[edge.input] or head.push
    -- A record handed over directly from key_by comes with its key.
    task.edge_direct[edge.id] = push
    if edge.from.kind == "key_by" then
      local keyed_push, keyfn = push, edge.from.fn
      push = errors.register(function(record, ts)
        keyed_push(record, ts, keyfn(record))
      end, edge.from)
    end
    task.edge_push[edge.id] = push
  end
end

--- Builds the task of plan task t (weir.plan): its chain's operators,
-- last first, so each is wired to consumers that exist.
function Host:build_task(t)
  local chain = t.chain
  local task = { id = t.id, chain = chain, subtask = t.subtask, insts = {},
    outputs = {}, acked = 0, records_in = 0, backpressured_ms = 0,
    alignment_ms = 0, entered = 0, suspended = false, hold = 0,
    source = SOURCES[chain.head.kind] or false }
  -- A source's task counts the records that leave its replay prefix.
  local prefix = task.source and replay.prefix(chain)
  if prefix then task.counter = replay.new_counter() end
  local nodes = chain.nodes
  for n = #nodes, 1, -1 do
    self:build_node(task, nodes[n], n == 1, prefix)
  end
  edge_pushes(task)
  task.head_watermark = task.insts[chain.head.id].watermark
  self.tasks[#self.tasks + 1] = task
end

-- The input channels of a task: per input edge, one per producer subtask.
function Host:connect_inputs(task)
  task.channels, task.channel_push, task.blocked = {}, {}, {}
  for _, edge in ipairs(task.chain.inputs) do
    for _, i in ipairs(plan.producers(edge, task.subtask)) do
      local cid = channel.id(edge, i, task.subtask)
      local ch = self.channels[cid] or channel.new()
      self.channels[cid] = ch
      task.channels[#task.channels + 1] = ch
      task.channel_push[#task.channels] = task.edge_push[edge.id]
      if self:worker_of(i) == self.worker then
        ch.direct = self:direct_push(task, #task.channels,
          task.edge_direct[edge.id], edge.from.kind == "key_by")
      end
    end
  end
  local n = #task.channels
  if n > 0 then
    task.handler = core.barrier_handler(n, self.options.mode)
  end
  task.watermarks, task.idle = {}, {}
  for c = 1, n do task.watermarks[c] = -math.huge end
  task.watermark = -math.huge
end


--- Adds the methods above to host_mt (weir.host's Host).
function M.install(host_mt)
  for name, f in pairs(Host) do host_mt[name] = f end
end

return M
