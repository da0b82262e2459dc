-- Channels to other workers with credit-based flow control, driven by
-- hand: a fake host, fake connections and a fake frame sender. No process,
-- no socket, no loop.
local buffer = require "string.buffer"
local ffi = require "ffi"
local channel = require "weir.channel"
local transport = require "weir.transport"

-- A transport of worker 0 of 2 whose sent frames are decoded into sent
-- ({ cid, item } each); host.woken counts wake-ups.
local function transport_of(sent, host)
  host = host or { channels = {}, woken = 0 }
  function host.wake(self) self.woken = self.woken + 1 end
  local t = transport.new(host, { worker = 0, workers = 2, plan = {
    edges = {} }, send_raw = function(handle, ptr, len)
      local b = buffer.new():set(ffi.string(ptr, len))
      sent[#sent + 1] = { handle = handle, cid = b:decode(), item = b:decode() }
      return 0
    end })
  return t, host
end

local function fake_conn(name)
  local conn = { frames = {} }
  function conn:handle() return name end
  function conn:send(bytes) self.frames[#self.frames + 1] = bytes end
  function conn:close() self.closed = true end
  return conn
end

-- Writes one full batch of records on writer w.
local function write_batch(w, first)
  for i = 1, channel.BATCH_RECORDS do w.push(first + i, 0) end
end

-- Delivers frame bytes (a string) to t as if received.
local function receive(t, bytes)
  t:on_data(ffi.cast("const uint8_t *", bytes), #bytes)
end

describe("weir.transport", function()
  it("queues batches until the peer is connected, then sends as many as "
    .. "it has credits for, and one more per credit returned", function()
    local sent = {}
    local t = transport_of(sent)
    local cid = 4242
    local w = t:remote_writer(cid, 1)
    local batches = transport.CREDITS + 2
    for b = 1, batches do write_batch(w, b * 10000) end
    assert.are.equal(0, #sent)
    assert.is_true(w.blocked())
    t:add_peer(1, fake_conn("peer-1"))
    assert.are.equal(transport.CREDITS, #sent)
    assert.are.equal(cid, sent[1].cid)
    assert.are.equal("peer-1", sent[1].handle)
    assert.are.equal(channel.BATCH_RECORDS, sent[1].item.n)
    assert.are.equal(10001, sent[1].item[1])
    assert.is_true(w.blocked())
    receive(t, buffer.encode(-cid))
    assert.are.equal(transport.CREDITS + 1, #sent)
    receive(t, buffer.encode(-cid))
    assert.are.equal(batches, #sent)
    assert.is_false(w.blocked())
    assert.are.equal(batches * 10000 + 1, sent[batches].item[1])
  end)

  it("sends events without credit, but never ahead of the batches before "
    .. "them", function()
    local sent = {}
    local t = transport_of(sent)
    local w = t:remote_writer(7, 1)
    t:add_peer(1, fake_conn("peer-1"))
    for b = 1, transport.CREDITS + 1 do write_batch(w, b) end
    w.event({ barrier = 3 })
    -- Out of credit: the last batch and the barrier behind it wait.
    assert.are.equal(transport.CREDITS, #sent)
    receive(t, buffer.encode(-7))
    assert.are.equal(transport.CREDITS + 2, #sent)
    assert.are.equal(3, sent[#sent].item.barrier)
    w.event({ barrier = 4 })
    assert.are.equal(4, sent[#sent].item.barrier)
  end)

  it("puts a received batch into its channel's queue and wakes the host",
    function()
    local t, host = transport_of({})
    local ch = channel.new()
    host.channels[99] = ch
    local b = buffer.new()
    b:encode(99)
    b:encode({ n = 2, ts = { 0, 0 }, "a", "b" })
    receive(t, b:tostring())
    assert.are.equal(1, ch:size())
    local batch = ch:take()
    assert.same({ "a", "b" }, { batch[1], batch[2] })
    assert.are.equal(1, host.woken)
  end)

  it("returns a credit to the producer for every batch its consumer takes",
    function()
    local edge = { id = 3, from = {}, kind = "forward" }
    local ch = channel.new()
    local host = { channels = {}, woken = 0,
      tasks = { { subtask = 0, channels = { ch },
        chain = { inputs = { edge } } } } }
    -- Subtask 0's producer, subtask 0, runs on worker 1.
    function host.worker_of(_, i) return 1 end
    local t = transport_of({}, host)
    local conn = fake_conn("peer-1")
    t:add_peer(1, conn)
    t:grant_credits()
    ch:put({ n = 1, ts = { 0 }, "x" })
    ch:put({ watermark = 5 })
    ch:take()
    ch:take()
    assert.are.equal(1, #conn.frames)
    assert.are.equal(-channel.id(edge, 0, 0), buffer.decode(conn.frames[1]))
  end)

  it("runs on_connected once a connection to every peer is up", function()
    local t = transport_of({})
    local connected = 0
    t.on_connected = function() connected = connected + 1 end
    assert.is_false(t:all_connected())
    t:add_peer(1, fake_conn("peer-1"))
    assert.is_true(t:all_connected())
    assert.are.equal(1, connected)
  end)
end)
