--- The kinds of operator: the one list of what each kind is. Every module
-- that asks whether a kind is a source, keeps state, is keyed, is a sink,
-- has two inputs or may run again for the same input asks here, so the
-- answers cannot drift apart.
local M = {}

--- kind -> { source, stateful, keyed, sink, two_input, replayable }
-- (each true or nil):
--   source      starts a chain and produces records (weir.sources)
--   stateful    keeps state in checkpoints
--   keyed       keeps its state per key, after key_by (weir.state)
--   sink        ends a stream (weir.sinks)
--   two_input   takes two keyed inputs (connect, join)
--   replayable  gives the same records for the same input, so a restore
--               may run it again for a record (weir.replay)
M.kinds = {
  read_lines = { source = true, stateful = true },
  sequence = { source = true, stateful = true },
  nexmark = { source = true, stateful = true },
  read_redis_stream = { source = true, stateful = true },
  read_kafka = { source = true, stateful = true },
  read_socket = { source = true, stateful = true },
  map = { replayable = true },
  filter = { replayable = true },
  flat_map = { replayable = true },
  key_by = { replayable = true },
  union = {},
  with_timestamps = { stateful = true },
  late = {},
  failed = {},
  reduce = { stateful = true, keyed = true },
  process = { stateful = true, keyed = true },
  window = { stateful = true, keyed = true },
  co_process = { stateful = true, keyed = true, two_input = true },
  window_join = { stateful = true, keyed = true, two_input = true },
  write_lines = { stateful = true, sink = true },
  write_redis_stream = { stateful = true, sink = true },
  write_kafka = { stateful = true, sink = true },
  collect = { sink = true },
  print = { sink = true },
  discard = { sink = true },
}

--- The set { [kind] = true } of the kinds that have property `name`.
function M.with(name)
  local set = {}
  for kind, props in pairs(M.kinds) do
    if props[name] then set[kind] = true end
  end
  return set
end

--- Whether `kind` has property `name` (see M.kinds); raises for a kind
-- that does not exist.
function M.is(kind, name)
  local props = M.kinds[kind]
  if not props then error("no operator kind " .. tostring(kind), 2) end
  return props[name] == true
end

return M
