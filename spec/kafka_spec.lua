-- Kafka, against librdkafka's mock cluster (real Kafka protocol on
-- loopback; no broker is packaged): read_kafka keeps its offsets in
-- checkpoints and gives exactly a plain computation's output after kill
-- -9; write_kafka writes a transaction per checkpoint, commits it when
-- the checkpoint completes, and after a commit fails (an error the mock
-- injects) a restore fences the failed producer and writes the
-- checkpoint's records again in a new transaction. The mock of Debian's
-- librdkafka 2.0.2 writes no commit or abort markers and keeps no
-- transactional offset commits, so what read_committed consumers see, and
-- the commit marker a restore checks, are not proven here.
local weir = require "weir"
local core = require "weir.core"
local h = require "helpers"
local kh = require "kafka_helper"
local kafka = require "weir.kafka"

local END_TXN = 26                 -- Kafka's EndTxn request
local INVALID_TXN_STATE = 48

describe("read_kafka and write_kafka", function()
  it("refuse unknown or mistyped options, naming them", function()
    local p = weir.pipeline { name = "opts" }
    assert.has_error(function()
      p:read_kafka { brokers = "b:1", topic = "t", group = "g" }
    end, "read_kafka: unknown option 'group' (known: bounded, brokers, "
      .. "properties, start, topic, topics, watermarks)")
    assert.has_error(function() p:read_kafka { brokers = "b:1" } end,
      "read_kafka: option 'topic' (a name) or 'topics' (a list) is needed")
    assert.has_error(function() p:read_kafka { brokers = "b:1",
      topic = "t", start = "now" } end,
      "read_kafka: option 'start' must be \"earliest\" or \"latest\"")
    assert.has_error(function() p:sequence(1, 2):write_kafka {
      brokers = "b:1", topic = "t", value = "v" } end,
      "write_kafka: option 'value' must be a function(record) -> string")
  end)

  if not kh.available() then
    pending("weir was built without librdkafka (librdkafka-dev): skipped")
    return
  end

  local cluster, dir
  before_each(function()
    cluster = kh.start({ ["in"] = 3, out = 2 })
    dir = h.tmpdir()
  end)
  after_each(function()
    kh.stop(cluster)
    h.sh("rm -rf " .. h.quote(dir))
  end)

  -- The values 1..count into topic "in", spread by key over its partitions.
  local function fill(count)
    local msgs = {}
    for i = 1, count do msgs[i] = { "k" .. i, tostring(i) } end
    kh.produce(cluster, "in", msgs)
  end

  it("read every partition of a bounded topic once at parallelism 2 and "
    .. "write each record once", function()
      fill(500)
      local p = weir.pipeline { name = "copy", parallelism = 2,
        checkpoint_interval = 10, checkpoint_dir = dir .. "/ck" }
      local seen = p:read_kafka({ brokers = cluster.brokers, topic = "in",
        bounded = true }):uid("in")
      seen:map(function(m) return m.value end)
        :write_kafka({ brokers = cluster.brokers, topic = "out",
          key = function(v) return "k" .. v end }):uid("out")
      local meta = seen:map(function(m)
        return m.topic .. ":" .. m.partition .. ":" .. m.offset
      end):collect()
      p:run()
      local got = {}
      for _, m in ipairs(kh.read_all(cluster, "out", 2, 500)) do
        assert.are.equal("k" .. m[2], m[1])
        got[#got + 1] = tonumber(m[2])
      end
      table.sort(got)
      assert.are.equal(500, #got)
      for i = 1, 500 do assert.are.equal(i, got[i]) end
      local partitions = {}
      for _, s in ipairs(meta) do partitions[s:match("^in:(%d+)")] = true end
      assert.same({ ["0"] = true, ["1"] = true, ["2"] = true }, partitions)
    end)

  it("keep a watermark per partition, and an idle partition holds none back",
    function()
      -- Partition 0 has an event a second for 60 s, partition 1 five and
      -- then nothing: a subtask reading both runs ahead on partition 0,
      -- yet partition 1's events are not late; once partition 1 is idle
      -- (200 ms) and partition 0 goes on (one more event later),
      -- partition 0's watermark alone fires the windows.
      local msgs = {}
      for t = 1, 60 do msgs[#msgs + 1] = { "a", tostring(t * 1000), 0 } end
      for t = 1, 5 do msgs[#msgs + 1] = { "b", tostring(t * 1000), 1 } end
      kh.produce(cluster, "out", msgs)
      local p = weir.pipeline { name = "kafka_windows", parallelism = 1,
        checkpoint_interval = 0 }
      local counted = p:read_kafka({ brokers = cluster.brokers,
        topic = "out", watermarks = { idle_timeout = 200,
          timestamp = function(m) return tonumber(m.value) end } }):uid("in")
        :key_by(function(m) return m.partition end)
        :window(weir.tumbling(10000))
        :aggregate {
          init = function() return 0 end,
          add = function(n) return n + 1 end,
          result = function(n, ctx)
            return ctx.key .. " " .. ctx.window.start .. " " .. n
          end,
        }
      local out, late = counted:collect(), counted:late():collect()
      local job = p:start()
      local started = core.monotonic_ms()
      local deadline, more = started + 20000, false
      while #out < 7 and core.monotonic_ms() < deadline do
        if not more and core.monotonic_ms() > started + 300 then
          kh.produce(cluster, "out", { { "a", "61000", 0 } })
          more = true
        end
        local t = core.timer(function() end)
        t:start(20, 0)
        core.run_once()
        t:close()
      end
      job:cancel()
      job:wait()
      table.sort(out)
      assert.same({ "0 0 9", "0 10000 10", "0 20000 10", "0 30000 10",
        "0 40000 10", "0 50000 10", "1 0 5" }, out)
      assert.same({}, late)
    end)

  it("give exactly the plain computation's output after kill -9, "
    .. "restoring the offsets at parallelism 2", function()
      -- A source emits up to 1024 records between barriers: at 60 us a
      -- record the job takes some 20 checkpoints.
      local count = 20000
      fill(count)
      local ck = dir .. "/ck"
      local args = { "run", "--parallelism", "2", "--checkpoint-interval",
        "30", "--checkpoint-dir", ck, "--restore", "latest",
        "spec/fixtures/kafka_sums.lua", cluster.brokers, dir .. "/out", "60" }
      local r = h.kill_after_checkpoints(args, ck .. "/kafka_sums", { 2, 2 })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("restored from", r.stderr)
      -- Per key n % 10 the sums run in offset order within a partition,
      -- so compare what the order does not change: each n once, and each
      -- key's largest sum is its total.
      local ns, totals, want = {}, {}, {}
      for _, line in ipairs(h.committed_lines(dir .. "/out")) do
        local n, sum = line:match("^(%d+) (%d+)$")
        n, sum = tonumber(n), tonumber(sum)
        assert.is_nil(ns[n], "record " .. n .. " twice")
        ns[n] = true
        totals[n % 10] = math.max(totals[n % 10] or 0, sum)
      end
      for n = 1, count do
        assert.is_true(ns[n], "record " .. n .. " missing")
        want[n % 10] = (want[n % 10] or 0) + n
      end
      assert.same(want, totals)
    end)
end)

describe("write_kafka's transactions", function()
  if not kh.available() then
    pending("weir was built without librdkafka (librdkafka-dev): skipped")
    return
  end

  it("commit on completion, and after a failed commit a restore writes the "
    .. "checkpoint's records again in a new transaction", function()
      local mock = assert(core.kafka_mock(1))
      assert(mock:create_topic("out", 1))
      local brokers = mock:bootstraps()
      local node = { kind = "write_kafka", uid = "out", defined_at = "spec",
        brokers = brokers, topic = "out", transactional = true,
        properties = {} }
      local env = { subtask = 0, parallelism = 1, job_name = "txns" }
      local sink = kafka.write_kafka(node, nil, env)
      sink.open()
      for i = 1, 5 do sink.push("a" .. i) end
      sink.snapshot(1)
      sink.notify_complete(1)
      for i = 1, 3 do sink.push("b" .. i) end
      local st = sink.snapshot(2)
      assert.same({ 2 }, { st.txns[1].id })  -- only the one not committed
      mock:push_errors(END_TXN, { INVALID_TXN_STATE })
      local ok, err = pcall(sink.notify_complete, 2)
      assert.is_false(ok)
      assert.matches("write_kafka %(spec%): commit_transaction failed at "
        .. brokers:gsub("%p", "%%%0"), err)
      pcall(sink.stop)
      local again = kafka.write_kafka(node, nil, env)
      again.restore({ { subtask = 0, state = st } })
      again.open()
      assert.are.equal(1, again.writer.recommitted)
      again.stop()
      local values = {}
      for _, m in ipairs(kh.read_all({ brokers = brokers }, "out", 1, 11)) do
        values[m[2]] = (values[m[2]] or 0) + 1
      end
      mock:close()
      for i = 1, 5 do assert.are.equal(1, values["a" .. i]) end
      -- The mock shows the failed transaction's records too (it keeps no
      -- abort markers): b1..b3 once from it and once from the new one.
      for i = 1, 3 do assert.are.equal(2, values["b" .. i]) end
    end)
end)
