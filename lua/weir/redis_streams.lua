--- Redis Streams: the source read_redis_stream and the exactly-once sink
-- write_redis_stream (runtime instances, see weir.sources and weir.sinks
-- for their shapes), on weir.redis's client.
--
-- The source keeps the id of the last entry it emitted per stream in its
-- checkpoints (as Flink's Kafka source keeps offsets in its state, not in
-- the broker) and reads on from there with XREAD; stream k of the list is
-- read by subtask (k - 1) % parallelism. Bounded, it reads up to the last
-- entry each stream had when the job first started (kept in checkpoints,
-- so a restored run ends at the same entry).
--
-- The sink is a two-phase commit (Flink's TwoPhaseCommitSinkFunction): the
-- entries of a checkpoint are pre-committed at its barrier (kept in the
-- checkpoint itself) and added when the checkpoint completes, by a Lua
-- script that first sets a commit marker (SET NX, kept 7 days) named by
-- the job, the sink's uid, the subtask, the checkpoint and the run that
-- pre-committed them: a commit replayed after a crash (from the restored
-- checkpoint) finds its marker and adds nothing.
local core = require "weir.core"
local redis = require "weir.redis"
local errors = require "weir.errors"
local replay = require "weir.replay"
local options = require "weir.options"
local redis_commit = require "weir.redis_commit"

local M = {}

local resume_skip = replay.resume_skip

M.BLOCK_MS = 100              -- how long one XREAD waits for entries
M.MARKER_TTL_MS = 7 * 86400000
M.COMMIT_IN_FLIGHT = 2        -- commit scripts sent ahead of their reply
M.STOP_TIMEOUT_MS = 30000     -- how long a stopping sink waits to commit

local fail = errors.fail

local DEFAULT_URL = "redis://127.0.0.1:6379"

local check_known = options.check_known

local function check_url(method, url)
  if url == nil then return DEFAULT_URL end
  local ok, why = redis.parse_url(url)
  if not ok then
    error(string.format("%s: bad url %s: %s", method, tostring(url), why), 4)
  end
  return url
end

--- The node fields of p:read_redis_stream(opts) (see weir.pipeline_io);
-- raises naming the option that is wrong.
function M.source_options(opts)
  local m = "read_redis_stream"
  check_known(m, opts, { url = true, stream = true, start = true,
    bounded = true, batch = true })
  local streams = opts.stream
  if type(streams) == "string" then streams = { streams } end
  if type(streams) ~= "table" or #streams == 0 then
    error(m .. ": option 'stream' must be a stream name or a list of them",
      3)
  end
  local seen = {}
  for i, name in ipairs(streams) do
    if type(name) ~= "string" or name == "" or seen[name] then
      error(string.format("%s: stream %d of the list must be a name given "
        .. "once, got %s", m, i, tostring(name)), 3)
    end
    seen[name] = true
  end
  local start = opts.start or "0"
  if start ~= "0" and start ~= "$" and not tostring(start):match(
      "^%d+%-%d+$") then
    error(m .. ": option 'start' must be \"0\" (the first entry), \"$\" "
      .. "(entries added after the job first starts) or an entry id, got "
      .. tostring(start), 3)
  end
  if opts.bounded ~= nil and type(opts.bounded) ~= "boolean" then
    error(m .. ": option 'bounded' must be a boolean", 3)
  end
  local batch = opts.batch or 1000
  if type(batch) ~= "number" or batch < 1 or batch % 1 ~= 0 then
    error(m .. ": option 'batch' must be a whole number of entries >= 1", 3)
  end
  return { url = check_url(m, opts.url), streams = streams, start = start,
    bounded = opts.bounded == true, batch = batch }
end

--- The node fields of stream:write_redis_stream(opts); raises naming
-- the option that is wrong.
function M.sink_options(opts)
  local m = "write_redis_stream"
  check_known(m, opts, { url = true, stream = true, fields = true,
    delivery = true })
  if type(opts.stream) ~= "string" or opts.stream == "" then
    error(m .. ": option 'stream' must be the name of a stream", 3)
  end
  if opts.fields ~= nil and type(opts.fields) ~= "function" then
    error(m .. ": option 'fields' must be a function(record) -> table", 3)
  end
  local delivery = opts.delivery or "exactly_once"
  if delivery ~= "exactly_once" and delivery ~= "at_least_once" then
    error(m .. ": option 'delivery' must be \"exactly_once\" or "
      .. "\"at_least_once\"", 3)
  end
  return { url = check_url(m, opts.url), stream = opts.stream,
    fields = opts.fields, delivery = delivery }
end

-- The two numbers of a stream entry id "<ms>-<seq>".
local function id_parts(id)
  local ms, seq = id:match("^(%d+)%-(%d+)$")
  return tonumber(ms), tonumber(seq)
end

-- Whether entry id a comes after id b.
local function after(a, b)
  local am, as = id_parts(a)
  local bm, bs = id_parts(b)
  return am > bm or (am == bm and as > bs)
end

-- The streams of node that subtask i of p reads.
local function streams_of(node, i, p)
  local mine = {}
  for k, name in ipairs(node.streams) do
    if (k - 1) % p == i then mine[#mine + 1] = name end
  end
  return mine
end

-- The record of entry e ({ id, { field, value, ... } }) of stream name.
local function record_of(name, e)
  local fields, flat = {}, e[2]
  if type(flat) == "table" then
    for j = 1, #flat - 1, 2 do fields[flat[j]] = flat[j + 1] end
  end
  return { stream = name, id = e[1], fields = fields }
end

-- -- read_redis_stream ---------------------------------------------------

local Reader = {}
Reader.__index = Reader

-- A bounded stream is done once its end entry was emitted (or it had
-- none).
local function check_done(p)
  if p.end_id and (p.end_id == "0-0" or not after(p.end_id, p.last)) then
    p.done = true
  end
end

-- Reads the next entries of the streams not done (one XREAD at a time,
-- once what the last one gave was emitted).
function Reader:read()
  if self.reading or not self.ready or self.closed then return end
  local args, ids = { "XREAD", "COUNT", self.node.batch, "BLOCK",
    M.BLOCK_MS, "STREAMS" }, {}
  for _, name in ipairs(self.mine) do
    local p = self.pos[name]
    if not p.done and not p.fetched_all then
      args[#args + 1] = name
      ids[#ids + 1] = p.fetched
    end
  end
  if #ids == 0 then return end
  for _, id in ipairs(ids) do args[#args + 1] = id end
  self.reading = true
  self.client:call(args, function(reply, err) self:on_read(reply, err) end)
end

-- Reads ahead while fewer than two batches wait to be emitted, so the
-- next entries are on their way while these go through the job.
function Reader:prefetch()
  if self.tail - self.head + 1 < 2 * self.node.batch then self:read() end
end

-- XREAD's reply: { { stream, { { id, { field, value, ... } } } } }, or
-- false when BLOCK_MS passed without an entry.
function Reader:on_read(reply, err)
  self.reading = false
  if self.closed then return end
  local node = self.node
  if err then fail(node, "XREAD from %s failed: %s", node.url, err) end
  for _, s in ipairs(reply or {}) do
    local name, p = s[1], self.pos[s[1]]
    for _, e in ipairs(s[2]) do
      if p.end_id and after(e[1], p.end_id) then
        p.fetched_all = true
        break
      end
      self.tail = self.tail + 1
      self.buffer[self.tail] = record_of(name, e)
      p.fetched = e[1]
    end
    if p.end_id and p.fetched == p.end_id then p.fetched_all = true end
  end
  self:prefetch()
  self.env.wake()
end

-- Before reading: "$" becomes the id of each stream's last entry, and a
-- bounded read that does not know where it ends yet (a fresh start) asks.
function Reader:resolve()
  local waiting, node = 1, self.node
  local function settled()
    waiting = waiting - 1
    if waiting > 0 then return end
    for _, name in ipairs(self.mine) do check_done(self.pos[name]) end
    self.ready = true
    self:read()
    self.env.wake()
  end
  for _, name in ipairs(self.mine) do
    local p = self.pos[name]
    if (node.bounded and not p.end_id) or p.last == "$" then
      waiting = waiting + 1
      self.client:call({ "XREVRANGE", name, "+", "-", "COUNT", 1 },
        function(reply, err)
          if err then fail(node, "cannot read stream %s at %s: %s", name,
            node.url, err) end
          local last = reply and reply[1] and reply[1][1] or "0-0"
          if p.last == "$" then p.last, p.fetched = last, last end
          if node.bounded then p.end_id = last end
          settled()
        end)
    end
  end
  settled()
end

function Reader:open()
  local node = self.node
  self.client = redis.client(node.url, errors.describe(node))
  local start = node.start == "0" and "0-0" or node.start
  for _, name in ipairs(self.mine) do
    local p = self.pos[name]
    if not p then  -- fresh, or a stream the checkpoint did not read
      p = { last = start }
      self.pos[name] = p
    end
    p.fetched = p.last
  end
  self:resolve()
end

function Reader:produce(n)
  if #self.mine == 0 and not self.idle then
    -- Nothing to read here: idle, so event time downstream goes on.
    self.idle = true
    self.env.emit_watermark(-math.huge, "idle")
  end
  if not self.ready then return false, 0, true end
  local buffer, pos, emit, env = self.buffer, self.pos, self.emit, self.env
  local count, head = 0, self.head
  while count < n and head <= self.tail do
    local r = buffer[head]
    buffer[head] = nil
    head = head + 1
    self.head = head
    local p = pos[r.stream]
    resume_skip(p, env)
    self.current = r.stream
    emit(r)
    self.current = nil
    p.last = r.id
    check_done(p)
    count = count + 1
  end
  if head <= self.tail then
    self:prefetch()
    return false, count
  end
  self.buffer, self.head, self.tail = {}, 1, 0
  if self.node.bounded then
    local all_done = true
    for _, name in ipairs(self.mine) do
      if not pos[name].done then all_done = false end
    end
    if all_done then return true, count end
  end
  self:read()
  return false, count, count == 0
end

-- While emit runs, the position is that of the record being emitted,
-- and skip (weir.replay) goes with its stream.
function Reader:snapshot(skip)
  local st = {}
  for name, p in pairs(self.pos) do
    st[name] = { last = p.last, end_id = p.end_id, skip = p.skip }
  end
  if skip and skip > 0 and self.current then st[self.current].skip = skip end
  return { streams = st }
end

-- Every stream this subtask reads, from the old subtask that read it.
function Reader:restore(olds)
  local want = {}
  for _, name in ipairs(self.mine) do want[name] = true end
  for _, o in ipairs(olds) do
    for name, s in pairs(o.state.streams or {}) do
      if want[name] then
        self.pos[name] = { last = s.last, end_id = s.end_id, skip = s.skip }
      end
    end
  end
end

function Reader:stop()
  self.closed = true
  if self.client then self.client:close() end
end

--- read_redis_stream: records { stream, id, fields = { field = value } }.
-- Per stream it keeps last (the id emitted last), fetched (read last),
-- end_id (bounded: the last entry to read), skip (weir.replay) and done.
function M.read_redis_stream(node, emit, env)
  local r = setmetatable({ node = node, emit = emit, env = env,
    mine = streams_of(node, env.subtask, env.parallelism), pos = {},
    buffer = {}, head = 1, tail = 0, reading = false, ready = false,
    closed = false }, Reader)
  return { open = function() r:open() end,
    produce = function(n) return r:produce(n) end,
    snapshot = function(_, skip) return r:snapshot(skip) end,
    restore = function(olds) r:restore(olds) end,
    stop = function() r:stop() end, close = function() r:stop() end }
end

-- -- write_redis_stream --------------------------------------------------

-- A token no other run of the job has: this process's pid and start time.
local RUN = string.format("%d.%d", core.getpid(), core.time_ms())

local Writer = {}
Writer.__index = Writer

-- Adds the fields of record (or of fields(record)) to batch out (see
-- weir.redis_commit), by name.
function Writer:add(out, record)
  local node, f = self.node, record
  if node.fields then f = node.fields(record) end
  if type(f) ~= "table" then
    fail(node, "fields must give a table of fields, got a %s", type(f))
  end
  local names = {}
  for k, v in pairs(f) do
    local tv = type(v)
    if type(k) ~= "string" or (tv ~= "string" and tv ~= "number") then
      fail(node, "field %s = %s: an entry's fields are strings with "
        .. "string or number values", tostring(k), tostring(v))
    end
    names[#names + 1] = k
  end
  if #names == 0 then fail(node, "a record has no fields to add") end
  table.sort(names)
  out:add(names, f)
end

-- Whether a pre-committed txn's checkpoint completed (it is due).
function Writer:due()
  for _, t in ipairs(self.txns) do if t.ready then return true end end
  return false
end

-- Sends txn's scripts, one per chunk (weir.redis_commit), at most
-- COMMIT_IN_FLIGHT at a time on the connection (Redis runs them in order,
-- so the entries keep theirs, and the source's reads get their turn in
-- between); once every one is acknowledged, the next txn.
function Writer:commit_txn(txn)
  local node, cmds, sent, waiting = self.node, {}, 0, 0
  redis_commit.each_command(txn.batch, node.stream, txn.token,
    M.MARKER_TTL_MS, function(k, bytes) cmds[k] = bytes end)
  local send
  local function done(_, err)
    if err then
      fail(node, "cannot commit checkpoint %d's entries to %s at %s: %s "
        .. "(they stay in the checkpoint; a restore commits them)",
        txn.id, node.stream, node.url, err)
    end
    waiting = waiting - 1
    if sent < #cmds then return send() end
    if waiting == 0 then
      table.remove(self.txns, 1)
      self.committing = false
      self:commit_next()
    end
  end
  function send()
    while sent < #cmds and waiting < M.COMMIT_IN_FLIGHT do
      sent, waiting = sent + 1, waiting + 1
      local bytes = cmds[sent]
      cmds[sent] = false
      self.client:call_raw(bytes, done)
    end
  end
  if #cmds == 0 then
    waiting = 1
    return done()
  end
  send()
end

-- Commits the oldest due txn, one at a time, in order; a stopping sink
-- closes its connection when none is due. At least once, what came since
-- the last write goes as soon as the one before is acknowledged (so
-- records batch up while a write is in flight).
function Writer:commit_next()
  if self.committing then return end
  if self.node.delivery == "at_least_once" and self.current.n > 0
      and not self.txns[1] and self.client then
    self:seal(true)
  end
  local txn = self.txns[1]
  if txn and txn.ready then
    self.committing = true
    return self:commit_txn(txn)
  end
  if self.closing then
    if self.stop_timer then self.stop_timer:close() self.stop_timer = nil end
    self.client:close()
  end
end

function Writer:open()
  self.client = redis.client(self.node.url, errors.describe(self.node))
  self:commit_next()  -- what a restore handed over
end

-- The entries since the last txn become one (for checkpoint id, or, at
-- least once, the next write, due at once).
function Writer:seal(id)
  self.seq = self.seq + 1
  local batch = self.current:seal()
  if id == true then
    self.txns[#self.txns + 1] = { id = 0, ready = true, batch = batch,
      token = self.prefix .. "w" .. self.seq .. ":" .. RUN }
  else
    self.txns[#self.txns + 1] = { id = id, token = self.prefix .. id .. ":"
      .. RUN, batch = batch }
  end
  self.current = redis_commit.new()
end

-- Pre-commit at the barrier of checkpoint id: the entries since the last
-- one become a txn, kept (with those not committed yet) in the snapshot.
-- At least once, the snapshot keeps the writes not acknowledged yet.
function Writer:snapshot(id)
  if self.current.n > 0 then
    self:seal(self.node.delivery == "at_least_once" or id)
    self:commit_next()
  end
  local st = {}
  for k, t in ipairs(self.txns) do
    st[k] = { id = t.id, token = t.token, batch = t.batch }
  end
  return { txns = st }
end

function Writer:notify_complete(id)
  for _, t in ipairs(self.txns) do
    if t.id <= id then t.ready = true end
  end
  self:commit_next()
end

-- The restored checkpoint is complete: what its subtasks pre-committed
-- is committed again (a marker makes a replay add nothing).
function Writer:restore(olds)
  local env = self.env
  for _, o in ipairs(olds) do
    if o.subtask % env.parallelism == env.subtask then
      for _, t in ipairs(o.state.txns or {}) do
        -- Checkpoints of earlier versions hold a flat list of entries.
        self.txns[#self.txns + 1] = { id = t.id, token = t.token,
          batch = t.batch or redis_commit.from_entries(t.entries or {}),
          ready = true }
      end
    end
  end
  table.sort(self.txns, function(a, b) return a.id < b.id end)
end

-- Checkpoints are off and the job ended: everything is committed now.
function Writer:commit()
  if self.current.n > 0 then
    self.txns[#self.txns + 1] = { id = math.huge, token = self.prefix
      .. "end:" .. RUN, batch = self.current:seal(), ready = true }
    self.current = redis_commit.new()
  end
  self:commit_next()
end

-- The job stops: the connection closes once the commits due are done,
-- or after M.STOP_TIMEOUT_MS (then they stay in the checkpoint, which a
-- restore commits).
function Writer:stop()
  if self.closing then return end
  self.closing = true
  if not self.client then return end
  if not self.committing and not self:due() then
    return self.client:close()
  end
  local timer
  timer = core.timer(function()
    timer:close()
    self.stop_timer = nil
    if self:due() then
      errors.warn(string.format("%s: could not commit checkpoint "
        .. "%s's entries to %s within %d ms; they stay in the checkpoint: "
        .. "restore it (--restore) to commit them",
        errors.describe(self.node), tostring(self.txns[1].id), self.node.url,
        M.STOP_TIMEOUT_MS))
    end
    self.client:close()
  end)
  timer:start(M.STOP_TIMEOUT_MS, 0)
  self.stop_timer = timer
end

--- write_redis_stream: exactly-once by two-phase commit (see the header).
-- current: the batch of entries since the last barrier
-- (weir.redis_commit); txns: pre-committed { id, token, batch (sealed),
-- ready }, oldest first.
function M.write_redis_stream(node, _, env)
  local w = setmetatable({ node = node, env = env,
    current = redis_commit.new(), txns = {},
    committing = false, closing = false, seq = 0,
    prefix = string.format("weir:commit:%s:%s:%d:", env.job_name or "job",
      node.uid, env.subtask) }, Writer)
  local eager = node.delivery == "at_least_once"
  return { open = function() w:open() end,
    push = function(record)
      w:add(w.current, record)
      if eager and not w.committing then w:commit_next() end
    end,
    snapshot = function(id) return w:snapshot(id) end,
    notify_complete = function(id) w:notify_complete(id) end,
    restore = function(olds) w:restore(olds) end,
    commit = function() w:commit() end,
    stop = function() w:stop() end, close = function() w:stop() end }
end

return M
