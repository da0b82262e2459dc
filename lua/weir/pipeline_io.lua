--- The pipeline builder's sources (methods of a Pipeline) and sinks
-- (methods of a Stream), apart from weir.pipeline's transformations;
-- weir.pipeline installs them into its classes.
local M = {}

local Sources, Sinks = {}, {}
local stream, check_fn, Sink  -- weir.pipeline's, given to M.install

--- Source: the lines of text files, without their newline; its position
-- in a checkpoint is a byte offset per file. A line is the bytes up to
-- "\n" (NUL bytes included; the last line needs no "\n"), and one "\r"
-- before the "\n" is stripped unless opts.keep_cr (see weir.line_reader).
-- Subtasks read equal shares of all the bytes, cut at line boundaries.
-- Bounded: when it ends the job takes a final checkpoint and finishes.
-- @param path a file, a list of files, or a glob (glob(3): *, ? and [...]
--   in any component, "logs/*/*.log"; never matching names that start
--   with ".", such as uncommitted ".part-*" output), expanded in name
--   order when the job starts (no match is an error; a directory is an
--   error)
-- @param opts { keep_cr = true to keep the "\r" of "\r\n" line ends,
--   follow = true to keep reading the files as they grow and to pick up
--   new ones the glob matches (unbounded; positions per inode, rotation
--   and truncation handled; a last line waits for its "\n"; see
--   weir.follow) } (optional); raises on an unknown option or a mistyped
--   one
-- @return Stream of strings
function Sources:read_lines(path, opts)
  if type(path) == "table" then
    if #path == 0 then error("read_lines: the list of files is empty", 2) end
    for i, v in ipairs(path) do
      if type(v) ~= "string" then
        error("read_lines: file " .. i .. " of the list is a " .. type(v)
          .. ", not a path", 2)
      end
    end
  elseif type(path) ~= "string" then
    error("read_lines: expected a file path, a list of them or a glob, got "
      .. type(path), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("read_lines: argument 2 must be a table of options, got "
      .. type(opts), 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "keep_cr" and k ~= "follow" then
      error(string.format("read_lines: unknown option '%s' (known: "
        .. "follow, keep_cr)", tostring(k)), 2)
    end
  end
  for _, k in ipairs({ "keep_cr", "follow" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then
      error("read_lines: option '" .. k .. "' must be a boolean, got "
        .. type(opts[k]), 2)
    end
  end
  return stream(self, self:add("read_lines", {},
    { path = path, keep_cr = opts.keep_cr == true,
      follow = opts.follow == true }))
end

--- Source: the entries of Redis streams (weir.redis_streams), records
-- { stream = name, id = "<ms>-<seq>", fields = { field = value, ... } };
-- its position is the last id read per stream. Stream k of the list is
-- read by subtask (k - 1) % parallelism.
-- @param opts { url = "redis://HOST[:PORT][/DB]" (default
--   redis://127.0.0.1:6379), stream = name | { names }, start = "0" (the
--   first entry, default) | "$" (what is added after the job first
--   starts) | an entry id to read after, bounded = true to end at the last
--   entry present when the job first started (default false), batch =
--   entries per read (default 1000) }; raises on an unknown option
-- @return Stream of records
function Sources:read_redis_stream(opts)
  return stream(self, self:add("read_redis_stream", {},
    require("weir.redis_streams").source_options(opts)))
end

--- Source: the messages of Kafka topics (weir.kafka), records { topic,
-- partition, offset, key, value, timestamp } (key/value false when
-- absent, timestamp in ms); its position is the next offset of each
-- partition. Partition k of all of them, in (topic, partition) order, is
-- read by subtask (k - 1) % parallelism.
-- @param opts { brokers = "HOST:PORT[,...]", topic = name | topics = {
--   names }, start = "earliest" (default) | "latest" (when the job first
--   starts), bounded = true to end at the offsets the partitions had then
--   (default false), properties = { librdkafka property = value },
--   watermarks = { timestamp = function(record) -> ms (default: the
--   message's timestamp), max_out_of_orderness = ms (default 0),
--   idle_timeout = ms (a partition without a message that long holds no
--   watermark back) } or true: records carry event time, with a watermark
--   per partition, the subtask's the smallest of its partitions that are
--   not idle (weir.split_watermarks; no with_timestamps needed) };
--   raises on an unknown option
-- @return Stream of records
function Sources:read_kafka(opts)
  return stream(self, self:add("read_kafka", {},
    require("weir.kafka").source_options(opts)))
end

--- Source: newline-delimited records from any number of TCP clients
-- (weir.socket_source), at parallelism 1; records are the lines, without
-- "\n" (and one "\r" before it unless keep_cr).
-- @param opts { listen = "HOST:PORT" (needed; port 0: one the system
--   picks, announced on stderr), wal = true to put every line through a
--   write-ahead log under the checkpoint directory before it enters the
--   job and acknowledge it with "ok <n>\n" once durable (exactly-once;
--   needs checkpoints), false (default: nothing acknowledged, what was
--   received since the last checkpoint is lost on a failure:
--   at-most-once), keep_cr = true to keep the "\r" of "\r\n",
--   max_line_bytes = longest line (default 1 MiB; a longer one closes its
--   connection), segment_bytes = size of the log's segment files
--   (default 64 MiB) }; raises on an unknown option or a mistyped one
-- @return Stream of strings
function Sources:read_socket(opts)
  return stream(self, self:add("read_socket", {},
    require("weir.socket_source").options(opts)))
end

--- Source: the integers first, first+1, ..., last (for tests and
-- benchmarks); its position is the next integer.
function Sources:sequence(first, last)
  if type(first) ~= "number" or type(last) ~= "number" then
    error("sequence: expected two numbers (first, last)", 2)
  end
  return stream(self, self:add("sequence", {},
    { first = first, last = last }))
end

--- Source: the events of the Nexmark benchmark's generator (see
-- weir.nexmark for the person, auction and bid tables). Subtask i of p is
-- generator instance i of p; its position is the number of events it
-- emitted, and a restore at another parallelism hands the rest of each old
-- instance on, so the job emits exactly the events of the first run's
-- instances. Bounded unless events is 0.
-- @param opts { events = total over all subtasks (default 0: unbounded),
--   rate = events per second of event time over all subtasks (default
--   10000), seed = integer (default 0), base_time = ms of the first event
--   (default 1436918400000, 2015-07-15T00:00:00Z) }
-- @return Stream of event tables; raises on an unknown option or a bad
--   value
function Sources:nexmark(opts)
  local generator, err = require("weir.nexmark").options(opts)
  if not generator then error("nexmark: " .. err, 2) end
  return stream(self, self:add("nexmark", {}, { generator = generator }))
end

--- Sink, exactly-once by two-phase commit: writes one line per record
-- (format_fn(record), or the record if it is a string or number) into
-- dir/part-<subtask>-<seq>; files not yet committed are named ".part-...".
function Sinks:write_lines(dir, format_fn)
  if type(dir) ~= "string" then
    error("write_lines: expected an output directory, got " .. type(dir), 2)
  end
  if format_fn ~= nil then check_fn("write_lines", format_fn, 2) end
  return stream(self.pipeline, self.pipeline:add("write_lines", { self.node },
    { dir = dir, fn = format_fn }), Sink)
end

--- Sink, exactly-once by two-phase commit: adds one entry per record to
-- a Redis stream when the checkpoint after it completes (a commit
-- replayed after a crash adds nothing; see weir.redis_streams).
-- @param opts { url = "redis://HOST[:PORT][/DB]" (default
--   redis://127.0.0.1:6379), stream = name, fields = function(record) ->
--   { field = string or number } (default: the record itself), delivery
--   = "exactly_once" (default) | "at_least_once" (entries added as records
--   come; a restore writes again what was not acknowledged) }
function Sinks:write_redis_stream(opts)
  return stream(self.pipeline, self.pipeline:add("write_redis_stream",
    { self.node }, require("weir.redis_streams").sink_options(opts)), Sink)
end

--- Sink: writes each record to a Kafka topic, exactly once through a
-- Kafka transaction per checkpoint (committed when it completes; consumers
-- with isolation.level=read_committed see each record once), or
-- at-least-once with transactional = false (see weir.kafka).
-- @param opts { brokers = "HOST:PORT[,...]", topic = name, key =
--   function(record) -> string (default: no key), value =
--   function(record) -> string (default: the record, a string),
--   transactional = true (default) | false, properties = { librdkafka
--   property = value } }
function Sinks:write_kafka(opts)
  return stream(self.pipeline, self.pipeline:add("write_kafka",
    { self.node }, require("weir.kafka").sink_options(opts)), Sink)
end

--- Sink for specs: returns a table that holds every record once the
-- pipeline ran (in-process only; not part of checkpoints).
function Sinks:collect()
  local out = {}
  self.pipeline:add("collect", { self.node }, { out = out,
    fixed_parallelism = 1 })
  return out
end

--- Sink for benchmarks: drops every record (as Flink's blackhole
-- connector), so a pipeline's cost is its operators' alone.
function Sinks:discard()
  return stream(self.pipeline, self.pipeline:add("discard", { self.node }),
    Sink)
end

--- Sink for demos: writes each record to stdout (at-least-once).
function Sinks:print()
  return stream(self.pipeline, self.pipeline:add("print", { self.node }),
    Sink)
end

--- Adds the sources to Pipeline and the sinks to Stream.
-- @param pipeline_mt, stream_mt weir.pipeline's Pipeline and Stream
-- @param sink_mt the metatable of a sink's stream (only :uid() and the
--   like)
-- @param stream_fn stream(p, node, mt) -> a Stream of node
-- @param check check_fn(method, fn, i): raises unless fn is a function
function M.install(pipeline_mt, stream_mt, sink_mt, stream_fn, check)
  stream, check_fn, Sink = stream_fn, check, sink_mt
  for name, f in pairs(Sources) do pipeline_mt[name] = f end
  for name, f in pairs(Sinks) do stream_mt[name] = f end
end

return M
