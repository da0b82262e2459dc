--- Runtime instances of the transforming operators (sources and sinks live
-- in weir.sources and weir.sinks).
--
-- make(node, emit, env) returns an instance:
--   push(record [, key])  receives a record (keyed operators get the key)
--   snapshot(id) -> state  the synchronous part of a checkpoint (optional)
--   restore(state)         replaces the state with a snapshot's (optional)
--   finish()               bounded input ended (optional)
-- `emit` passes a record downstream. Wrappers keep the record in a local
-- named `record` so weir.errors can show it when user code fails.
local errors = require "weir.errors"
local State = require "weir.state"

local M = {}

local register = errors.register

function M.map(node, emit)
  local fn = register(node.fn, node)
  return { push = register(function(record)
    local v = fn(record)
    if v == nil then error(errors.messages.map_nil, 0) end
    emit(v)
  end, node) }
end

function M.filter(node, emit)
  local fn = register(node.fn, node)
  return { push = register(function(record)
    if fn(record) then emit(record) end
  end, node) }
end

function M.flat_map(node, emit)
  local fn = register(node.fn, node)
  return { push = register(function(record)
    fn(record, emit)
  end, node) }
end

-- key_by evaluates the key and hands (record, key) to the keyed operator.
function M.key_by(node, emit)
  local fn = register(node.fn, node)
  return { push = register(function(record)
    emit(record, fn(record))
  end, node) }
end

function M.union(node, emit)
  return { push = emit }
end

-- Shared by the keyed operators: snapshot and restore of keyed state plus
-- whether finish already ran (a restored finished operator must not emit
-- its final results twice).
local function keyed(inst, state)
  inst.state = state
  function inst.snapshot()
    return { key_groups = state:snapshot(), finished = inst.finished }
  end
  function inst.restore(s)
    state:restore(s.key_groups)
    inst.finished = s.finished
  end
  return inst
end

function M.reduce(node, emit, env)
  local fn = register(node.fn, node)
  local state = State.new(env.max_parallelism)
  local entries = state.entries
  return keyed({ push = register(function(record, key)
    local e = entries[key] or state:entry(key)
    local acc = e.state
    if acc == nil then acc = record else acc = fn(acc, record) end
    e.state = acc
    emit(acc)
  end, node) }, state)
end

function M.process(node, emit, env)
  local fn = register(node.fn, node)
  local finish = register(node.finish, node)
  local state = State.new(env.max_parallelism, function() return {} end)
  local entries = state.entries
  local ctx = { emit = function(_, v) emit(v) end }
  local inst = keyed({ push = register(function(record, key)
    local e = entries[key] or state:entry(key)
    ctx.key, ctx.state = e.key, e.state
    fn(ctx, record)
  end, node) }, state)
  function inst.finish()
    if inst.finished then return end
    inst.finished = true
    if not finish then return end
    state:each(function(e)
      local key = e.key
      if next(e.state) ~= nil then
        ctx.key, ctx.state = key, e.state
        finish(ctx)
      end
    end)
  end
  return inst
end

return M
