--- Kafka: the source read_kafka and the sink write_kafka (runtime
-- instances, see weir.sources and weir.sinks for their shapes), on
-- librdkafka (bound as core.kafka_consumer / core.kafka_producer).
--
-- The source keeps the next offset of every partition it reads in its
-- checkpoints (Flink's Kafka source keeps offsets in its state, not in the
-- broker); partition k of all the topics' partitions, in (topic,
-- partition) order, is read by subtask (k - 1) % parallelism. Bounded, it
-- reads up to the end each partition had when the job first started (kept
-- in checkpoints, so a restored run ends at the same offsets).
--
-- The sink writes each checkpoint's records in a Kafka transaction of its
-- own (Flink's KafkaSink with exactly-once delivery): records go into the
-- open transaction; at the barrier it is flushed (pre-commit) and a
-- producer of a small pool opens the next; when the checkpoint completes
-- its transaction commits. librdkafka cannot resume a transaction another
-- process left open, so the records of a pre-committed transaction are
-- kept in the checkpoint too: a restore aborts what the crashed run left
-- open (init_transactions fences it) and writes them again in a new
-- transaction. Without transactional, records are flushed at every
-- barrier (at-least-once).
local core = require "weir.core"
local errors = require "weir.errors"
local replay = require "weir.replay"
local options = require "weir.options"
local split_watermarks = require "weir.split_watermarks"

local M = {}

local resume_skip = replay.resume_skip

M.TIMEOUT_MS = 10000   -- metadata, offsets and transaction calls, at most
M.POOL = 3             -- producers per sink subtask: transactions in flight

local OFFSET_BEGINNING = -2

local fail = errors.fail

--- Whether weir was built with librdkafka (librdkafka-dev).
function M.available() return core.kafka_consumer ~= nil end

local check_known = options.check_known

-- librdkafka properties: { [name] = string }, raising on other shapes.
local function check_properties(method, props)
  if props == nil then return {} end
  if type(props) ~= "table" then
    error(method .. ": option 'properties' must be a table of librdkafka "
      .. "properties", 3)
  end
  local out = {}
  for k, v in pairs(props) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number"
        and type(v) ~= "boolean") then
      error(method .. ": property " .. tostring(k) .. " must be a string, "
        .. "number or boolean", 3)
    end
    out[k] = tostring(v)
  end
  return out
end

local function check_brokers(method, brokers)
  if type(brokers) ~= "string" or brokers == "" then
    error(method .. ": option 'brokers' must be \"HOST:PORT[,...]\"", 3)
  end
  return brokers
end

-- The watermarks option: nil, or { timestamp = fn or nil, ooo, idle }.
local function check_watermarks(method, w)
  if w == nil then return nil end
  if w == true then w = {} end
  if type(w) ~= "table" then
    error(method .. ": option 'watermarks' must be a table { timestamp, "
      .. "max_out_of_orderness, idle_timeout } or true", 3)
  end
  check_known(method .. " watermarks", w, { timestamp = true,
    max_out_of_orderness = true, idle_timeout = true })
  if w.timestamp ~= nil and type(w.timestamp) ~= "function" then
    error(method .. ": watermarks.timestamp must be a function(record) -> "
      .. "ms", 3)
  end
  local ooo, idle = w.max_out_of_orderness or 0, w.idle_timeout
  if type(ooo) ~= "number" or ooo < 0 then
    error(method .. ": watermarks.max_out_of_orderness must be a number of "
      .. "ms >= 0", 3)
  end
  if idle ~= nil and (type(idle) ~= "number" or idle <= 0) then
    error(method .. ": watermarks.idle_timeout must be a number of ms > 0", 3)
  end
  return { timestamp = w.timestamp, max_out_of_orderness = ooo,
    idle_timeout = idle }
end

--- The node fields of p:read_kafka(opts) (see weir.pipeline_io); raises
-- naming the option that is wrong.
function M.source_options(opts)
  local m = "read_kafka"
  check_known(m, opts, { brokers = true, topic = true, topics = true,
    start = true, bounded = true, properties = true, watermarks = true })
  local topics = opts.topics or (opts.topic and { opts.topic })
  if opts.topic and opts.topics then
    error(m .. ": give 'topic' or 'topics', not both", 3)
  end
  if type(topics) ~= "table" or #topics == 0 then
    error(m .. ": option 'topic' (a name) or 'topics' (a list) is needed", 3)
  end
  for i, t in ipairs(topics) do
    if type(t) ~= "string" or t == "" then
      error(string.format("%s: topic %d must be a name", m, i), 3)
    end
  end
  local start = opts.start or "earliest"
  if start ~= "earliest" and start ~= "latest" then
    error(m .. ": option 'start' must be \"earliest\" or \"latest\"", 3)
  end
  if opts.bounded ~= nil and type(opts.bounded) ~= "boolean" then
    error(m .. ": option 'bounded' must be a boolean", 3)
  end
  return { brokers = check_brokers(m, opts.brokers), topics = topics,
    start = start, bounded = opts.bounded == true,
    properties = check_properties(m, opts.properties),
    watermarks = check_watermarks(m, opts.watermarks) }
end

--- The node fields of stream:write_kafka(opts); raises naming the option
-- that is wrong.
function M.sink_options(opts)
  local m = "write_kafka"
  check_known(m, opts, { brokers = true, topic = true, key = true,
    value = true, transactional = true, properties = true })
  if type(opts.topic) ~= "string" or opts.topic == "" then
    error(m .. ": option 'topic' must be a topic name", 3)
  end
  for _, f in ipairs({ "key", "value" }) do
    if opts[f] ~= nil and type(opts[f]) ~= "function" then
      error(m .. ": option '" .. f .. "' must be a function(record) -> "
        .. "string", 3)
    end
  end
  if opts.transactional ~= nil and type(opts.transactional) ~= "boolean" then
    error(m .. ": option 'transactional' must be a boolean", 3)
  end
  return { brokers = check_brokers(m, opts.brokers), topic = opts.topic,
    key = opts.key, value = opts.value,
    transactional = opts.transactional ~= false,
    properties = check_properties(m, opts.properties) }
end

-- -- read_kafka ------------------------------------------------------------

local Reader = {}
Reader.__index = Reader

local function tp_key(topic, partition) return topic .. ":" .. partition end

-- Properties with the brokers, and extra on top.
local function properties(node, extra)
  local out = {}
  for k, v in pairs(node.properties) do out[k] = v end
  out["bootstrap.servers"] = node.brokers
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

-- This subtask's partitions: { { topic, partition } }, asked of the
-- cluster (blocks up to M.TIMEOUT_MS).
function Reader:discover()
  local node, env, all = self.node, self.env, {}
  for _, topic in ipairs(node.topics) do
    local parts, err = self.consumer:partitions(topic, M.TIMEOUT_MS)
    if not parts then
      fail(node, "cannot list the partitions of topic %s at %s: %s", topic,
        node.brokers, err)
    end
    table.sort(parts)
    for _, p in ipairs(parts) do all[#all + 1] = { topic, p } end
  end
  local mine = {}
  for k, tp in ipairs(all) do
    if (k - 1) % env.parallelism == env.subtask then mine[#mine + 1] = tp end
  end
  return mine
end

function Reader:open()
  local node = self.node
  local consumer, err = core.kafka_consumer(properties(node), function()
    self.env.wake()
  end)
  if not consumer then fail(node, "cannot create a consumer: %s", err) end
  self.consumer = consumer
  local assign = {}
  for _, tp in ipairs(self:discover()) do
    local key = tp_key(tp[1], tp[2])
    local p = self.pos[key]
    if not p or (node.bounded and not p.end_offset) then
      local low, high = consumer:watermarks(tp[1], tp[2], M.TIMEOUT_MS)
      if not low then
        fail(node, "cannot read the offsets of %s at %s: %s", key,
          node.brokers, high)
      end
      p = p or { next = node.start == "latest" and high or low }
      if node.bounded then p.end_offset = p.end_offset or high end
      self.pos[key] = p
    end
    p.topic, p.partition = tp[1], tp[2]
    self.mine[#self.mine + 1] = key
    if not (p.end_offset and p.next >= p.end_offset) then
      assign[#assign + 1] = { tp[1], tp[2], p.next }
    end
  end
  local ok, aerr = consumer:assign(assign)
  if not ok then fail(node, "cannot assign partitions: %s", aerr) end
  if node.watermarks then
    local w = node.watermarks
    self.wm = split_watermarks.new(self.env.emit_watermark, {
      max_out_of_orderness = w.max_out_of_orderness,
      idle_timeout = w.idle_timeout, now_ms = self.env.now_ms })
    for _, key in ipairs(self.mine) do self.wm:add(key, self.pos[key].max_ts) end
  end
end

function Reader:done()
  for _, key in ipairs(self.mine) do
    local p = self.pos[key]
    if not (p.end_offset and p.next >= p.end_offset) then return false end
  end
  return true
end

function Reader:produce(n)
  local node, pos, emit, env = self.node, self.pos, self.emit, self.env
  if #self.mine == 0 and not self.idle then
    -- Nothing to read here: idle, so event time downstream goes on.
    self.idle = true
    env.emit_watermark(-math.huge, "idle")
  end
  if node.bounded and self:done() then return true, 0 end
  local wm = self.wm
  if wm then wm:check() end
  local msgs, err = self.consumer:poll(math.min(n, 4096))
  if not msgs then fail(node, "reading from %s failed: %s", node.brokers, err) end
  local count = 0
  for i = 1, #msgs do
    local m = msgs[i]
    local key = tp_key(m.topic, m.partition)
    local p = pos[key]
    if p and m.offset >= p.next and not (p.end_offset
        and m.offset >= p.end_offset) then
      resume_skip(p, env)
      self.current = key
      if wm then
        local ts = self:timestamp(m)
        emit(m, ts)
        wm:record(key, ts)
      else
        emit(m)
      end
      self.current = nil
      p.next = m.offset + 1
      count = count + 1
    end
  end
  if node.bounded and self:done() then return true, count end
  if #msgs == 0 and wm then self:wake_for_idleness() end
  return false, count, #msgs == 0
end

-- Nothing came: the host sleeps until a message wakes it, or, for a
-- partition to turn idle, idle_timeout ms from now.
function Reader:wake_for_idleness()
  local idle = self.node.watermarks.idle_timeout
  if not idle or self.idle_armed then return end
  if not self.idle_timer then
    self.idle_timer = core.timer(function()
      self.idle_armed = false
      self.env.wake()
    end)
  end
  self.idle_armed = true
  self.idle_timer:start(idle, 0)
end

-- The event time of message m: watermarks.timestamp(m), or the
-- message's own timestamp; raises on anything but a number.
function Reader:timestamp(m)
  local fn = self.node.watermarks.timestamp
  local ts = m.timestamp
  if fn then ts = fn(m) end
  if type(ts) ~= "number" or ts ~= ts then
    fail(self.node, "the timestamp of %s offset %d is %s, not a number of "
      .. "ms", tp_key(m.topic, m.partition), m.offset,
      ts ~= ts and "NaN" or type(ts))
  end
  return ts
end

function Reader:snapshot(skip)
  local st = {}
  for _, key in ipairs(self.mine) do
    local p = self.pos[key]
    st[key] = { next = p.next, end_offset = p.end_offset, skip = p.skip,
      max_ts = self.wm and self.wm:max_ts(key) }
  end
  if skip and skip > 0 and self.current then st[self.current].skip = skip end
  return { partitions = st }
end

-- Every partition's position, from whichever old subtask read it; open()
-- keeps those of this subtask's partitions.
function Reader:restore(olds)
  for _, o in ipairs(olds) do
    for key, s in pairs(o.state.partitions or {}) do
      self.pos[key] = { next = s.next, end_offset = s.end_offset,
        skip = s.skip, max_ts = s.max_ts }
    end
  end
end

function Reader:stop()
  if self.idle_timer then self.idle_timer:close() self.idle_timer = nil end
  if self.consumer then self.consumer:close() self.consumer = nil end
end

--- read_kafka: records { topic, partition, offset, key, value, timestamp
-- } (key and value false when absent, timestamp in ms).
function M.read_kafka(node, emit, env)
  local r = setmetatable({ node = node, emit = emit, env = env, pos = {},
    mine = {} }, Reader)
  return { open = function() r:open() end,
    produce = function(n) return r:produce(n) end,
    snapshot = function(_, skip) return r:snapshot(skip) end,
    restore = function(olds) r:restore(olds) end,
    stop = function() r:stop() end, close = function() r:stop() end }
end

-- -- write_kafka -----------------------------------------------------------

local Writer = {}
Writer.__index = Writer

-- The result of a transaction call, or raises naming what failed.
function Writer:check(what, ok, err)
  if not ok then
    fail(self.node, "%s failed at %s: %s", what, self.node.brokers,
      tostring(err))
  end
end

-- Producer k of the pool (transactional.id <base>-k), created and
-- initialized (which aborts what an earlier run left open under that id).
function Writer:producer(k)
  local p = self.pool[k]
  if p then return p end
  local node, extra = self.node, {}
  if node.transactional then
    extra["transactional.id"] = self.tid .. "-" .. k
  end
  local err
  p, err = core.kafka_producer(properties(node, extra))
  if not p then fail(node, "cannot create a producer: %s", err) end
  if node.transactional then
    self:check("init_transactions", p:init_transactions(M.TIMEOUT_MS))
  end
  self.pool[k] = p
  return p
end

-- Opens the next transaction on a producer no pending one holds.
function Writer:begin()
  local busy = {}
  for _, t in ipairs(self.pending) do busy[t.k] = true end
  local k = 1
  while busy[k] do k = k + 1 end
  self.k = k
  local p = self:producer(k)
  if self.node.transactional then self:check("begin_transaction", p:begin()) end
end

-- Commits the transaction of checkpoint id on producer p, with the
-- marker: the sink's group commits offset id on partition 0 of the topic
-- in the same transaction.
function Writer:commit_on(p, id)
  local node = self.node
  self:check("flush", p:flush(M.TIMEOUT_MS))
  if id then
    self:check("send_offsets_to_transaction", p:send_offsets(self.tid,
      node.topic, 0, id, M.TIMEOUT_MS))
  end
  self:check("commit_transaction", p:commit(M.TIMEOUT_MS))
end

-- The checkpoint id whose transaction committed last (the marker), or -1.
function Writer:marker()
  local node = self.node
  local c, err = core.kafka_consumer(properties(node, { ["group.id"] =
    self.tid }), function() end)
  if not c then fail(node, "cannot create a consumer: %s", err) end
  local id, cerr = c:committed(node.topic, 0, M.TIMEOUT_MS)
  c:close()
  if id == nil then
    fail(node, "cannot read the commit marker of %s at %s: %s", self.tid,
      node.brokers, cerr)
  end
  return id or -1
end

function Writer:open()
  local node = self.node
  if node.transactional then
    -- Fence every producer id an earlier run may have used, then write
    -- again what the restored checkpoint pre-committed and the marker
    -- says did not commit.
    for k = 1, math.max(self.restored_pool or 0, M.POOL) do self:producer(k) end
    local marker = #self.restored > 0 and self:marker() or -1
    for _, t in ipairs(self.restored) do
      if t.id > marker then
        local p = self.pool[1]
        self:check("begin_transaction", p:begin())
        for _, r in ipairs(t.records) do
          self:check("produce", p:produce(node.topic, r[1] or nil, r[2]))
        end
        self:commit_on(p, t.id)
        self.recommitted = (self.recommitted or 0) + 1
      end
    end
    self.restored = {}
  end
  self:begin()
end

function Writer:push(record)
  local node = self.node
  local key = node.key and node.key(record)
  local value = record
  if node.value then value = node.value(record) end
  if type(value) ~= "string" and type(value) ~= "number" then
    fail(node, "a record's value must be a string (give value = "
      .. "function(record) -> string), got a %s", type(value))
  end
  if key ~= nil and type(key) ~= "string" and type(key) ~= "number" then
    fail(node, "a record's key must be a string, got a %s", type(key))
  end
  value = tostring(value)
  self:check("produce", self.pool[self.k]:produce(node.topic,
    key and tostring(key), value))
  if node.transactional then
    local recs = self.records
    recs[#recs + 1] = { key and tostring(key) or false, value }
  end
end

-- Pre-commit at the barrier of checkpoint id: the open transaction is
-- flushed and waits for the checkpoint; the next one opens.
function Writer:snapshot(id)
  local p = self.pool[self.k]
  self:check("flush", p:flush(M.TIMEOUT_MS))
  if not self.node.transactional then return {} end
  self.pending[#self.pending + 1] = { id = id, k = self.k,
    records = self.records }
  self.records = {}
  self:begin()
  local st = {}
  for i, t in ipairs(self.pending) do
    st[i] = { id = t.id, records = t.records }
  end
  return { txns = st, pool = #self.pool }
end

function Writer:notify_complete(id)
  while self.pending[1] and self.pending[1].id <= id do
    local t = table.remove(self.pending, 1)
    self:commit_on(self.pool[t.k], t.id)
  end
end

function Writer:restore(olds)
  local env = self.env
  for _, o in ipairs(olds) do
    if o.subtask % env.parallelism == env.subtask then
      for _, t in ipairs(o.state.txns or {}) do
        self.restored[#self.restored + 1] = t
      end
      self.restored_pool = math.max(self.restored_pool or 0,
        o.state.pool or 0)
    end
  end
  table.sort(self.restored, function(a, b) return a.id < b.id end)
end

-- Checkpoints are off and the job ended: the open transaction commits.
function Writer:commit()
  local p = self.pool[self.k]
  if self.node.transactional then self:commit_on(p, nil)
  else self:check("flush", p:flush(M.TIMEOUT_MS)) end
end

-- The job stops: what is open and not pre-committed is aborted (it holds
-- no record of a completed checkpoint), and the producers close.
function Writer:stop()
  if self.stopped then return end
  self.stopped = true
  local p = self.k and self.pool[self.k]
  if p and self.node.transactional then p:abort(M.TIMEOUT_MS) end
  for _, q in pairs(self.pool) do q:close(M.TIMEOUT_MS) end
end

--- write_kafka: exactly-once through Kafka transactions, or
-- at-least-once (transactional = false); see the header.
function M.write_kafka(node, _, env)
  local w = setmetatable({ node = node, env = env, pool = {}, pending = {},
    records = {}, restored = {},
    tid = string.format("weir-%s-%s-%d", env.job_name or "job", node.uid,
      env.subtask) }, Writer)
  return { open = function() w:open() end,
    push = function(record) w:push(record) end,
    snapshot = function(id) return w:snapshot(id) end,
    notify_complete = function(id) w:notify_complete(id) end,
    restore = function(olds) w:restore(olds) end,
    commit = function() w:commit() end,
    stop = function() w:stop() end, close = function() w:stop() end,
    writer = w }
end

return M
