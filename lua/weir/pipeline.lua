--- The pipeline builder: the graph a script describes.
-- Nodes are numbered in construction order, so every run of the same
-- script builds the same graph and derives the same operator uids
-- ("<kind>-<number>"), which name operator state in snapshots.
local M = {}

local Pipeline, Stream, KeyedStream = {}, {}, {}
Pipeline.__index, Stream.__index, KeyedStream.__index = Pipeline, Stream, KeyedStream

--- Pipeline options: name -> { default, expected type, description }.
M.options = {
  name = { "job", "string", "job name; names its checkpoint directory" },
  checkpoint_interval = { 1000, "number",
    "ms between checkpoints; 0 turns checkpoints off" },
  checkpoint_dir = { "checkpoints", "string",
    "directory holding <name>/chk-<n> checkpoints" },
  retain = { 3, "number", "complete checkpoints kept" },
  max_parallelism = { 128, "number", "number of key groups" },
  mode = { "exactly_once", "string",
    "exactly_once (aligned barriers) or at_least_once" },
  restore = { false, "string",
    "\"latest\" or the path of a checkpoint to restore from" },
}

--- Options set on the command line; they override the script's.
M.overrides = {}

local function check_options(opts)
  for k, v in pairs(opts) do
    local spec = M.options[k]
    if not spec then
      local names = {}
      for name in pairs(M.options) do names[#names + 1] = name end
      table.sort(names)
      error(string.format("weir.pipeline: unknown option '%s' (known: %s)",
        tostring(k), table.concat(names, ", ")), 3)
    end
    if type(v) ~= spec[2] and not (k == "restore" and v == false) then
      error(string.format("weir.pipeline: option '%s' must be a %s, got %s",
        k, spec[2], type(v)), 3)
    end
  end
  local o = {}
  for k, spec in pairs(M.options) do
    if M.overrides[k] ~= nil then o[k] = M.overrides[k]
    elseif opts[k] ~= nil then o[k] = opts[k]
    else o[k] = spec[1] end
  end
  if o.checkpoint_interval < 0 then
    error("weir.pipeline: checkpoint_interval must be >= 0 ms", 3)
  end
  if o.retain < 1 or o.retain % 1 ~= 0 then
    error("weir.pipeline: retain must be an integer >= 1", 3)
  end
  if o.max_parallelism < 1 or o.max_parallelism > 32768
      or o.max_parallelism % 1 ~= 0 then
    error("weir.pipeline: max_parallelism must be an integer in 1..32768", 3)
  end
  if o.mode ~= "exactly_once" and o.mode ~= "at_least_once" then
    error("weir.pipeline: mode must be \"exactly_once\" or "
      .. "\"at_least_once\"", 3)
  end
  if not o.name:match("^[%w_.-]+$") then
    error("weir.pipeline: name may hold only letters, digits, '_', '.' "
      .. "and '-'", 3)
  end
  return o
end

--- Creates an empty pipeline.
-- @param opts table of options (see M.options); command-line flags override
-- @return Pipeline; raises on unknown or mistyped options
function M.pipeline(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("weir.pipeline: expected a table of options", 2)
  end
  return setmetatable({ options = check_options(opts or {}), nodes = {} },
                      Pipeline)
end

-- Where the script called a builder method (level 3 from here).
local function call_site()
  local info = debug.getinfo(4, "Sl")
  if not info then return "?" end
  return info.short_src .. ":" .. (info.currentline or 0)
end

local function check_fn(method, fn, i)
  if type(fn) ~= "function" then
    error(string.format("%s: argument %d must be a function, got %s",
      method, i or 1, type(fn)), 3)
  end
end

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

--- Source: the lines of a text file, without their newline; its position
-- in a checkpoint is a byte offset. Bounded: when it ends the job takes a
-- final checkpoint and finishes.
-- @param path string
-- @return Stream of strings
function Pipeline:read_lines(path)
  if type(path) ~= "string" then
    error("read_lines: expected a file path, got " .. type(path), 2)
  end
  return stream(self, self:add("read_lines", {}, { path = path }))
end

--- Source: the integers first, first+1, ..., last (for tests and
-- benchmarks); its position is the next integer.
function Pipeline:sequence(first, last)
  if type(first) ~= "number" or type(last) ~= "number" then
    error("sequence: expected two numbers (first, last)", 2)
  end
  return stream(self, self:add("sequence", {},
    { first = first, last = last }))
end

--- Runs the pipeline to completion in this process (see weir.job.run).
function Pipeline:run()
  return require("weir.job").run(self)
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

--- Sink, exactly-once by two-phase commit: writes one line per record
-- (format_fn(record), or the record if it is a string or number) into
-- dir/part-<subtask>-<seq>; files not yet committed are named ".part-...".
function Stream:write_lines(dir, format_fn)
  if type(dir) ~= "string" then
    error("write_lines: expected an output directory, got " .. type(dir), 2)
  end
  if format_fn ~= nil then check_fn("write_lines", format_fn, 2) end
  self.pipeline:add("write_lines", { self.node },
    { dir = dir, fn = format_fn })
end

--- Sink for specs: returns a table that holds every record once the
-- pipeline ran (in-process only; not part of checkpoints).
function Stream:collect()
  local out = {}
  self.pipeline:add("collect", { self.node }, { out = out })
  return out
end

--- Sink for demos: writes each record to stdout (at-least-once).
function Stream:print()
  self.pipeline:add("print", { self.node })
end

--- Keyed: emits fn(acc, record) for each record, acc being the key's
-- previous result (the first record of a key is emitted as is).
function KeyedStream:reduce(fn)
  check_fn("reduce", fn)
  return stream(self.pipeline, self.pipeline:add("reduce", { self.node },
    { fn = fn }))
end

--- Keyed: calls fn(ctx, record) with ctx.key, ctx.state (the key's own
-- table, kept in every checkpoint) and ctx:emit(v). opts.finish(ctx) runs
-- once per key with non-empty state when bounded input ends.
function KeyedStream:process(fn, opts)
  check_fn("process", fn)
  if opts ~= nil and type(opts) ~= "table" then
    error("process: argument 2 must be a table of options", 2)
  end
  opts = opts or {}
  if opts.finish ~= nil then check_fn("process", opts.finish, 2) end
  return stream(self.pipeline, self.pipeline:add("process", { self.node },
    { fn = fn, finish = opts.finish }))
end

M.Stream, M.KeyedStream, M.Pipeline = Stream, KeyedStream, Pipeline
return M
