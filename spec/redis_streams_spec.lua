-- Redis Streams: read_redis_stream keeps its position in checkpoints and
-- write_redis_stream commits each checkpoint's entries once, against a
-- real redis-server the spec starts on a free loopback port: exactly the
-- entries a plain computation gives after kill -9 of the job and after a
-- restart of the server, and a commit replayed after a crash adds nothing.
local weir = require "weir"
local h = require "helpers"
local rh = require "redis_helper"
local redis_streams = require "weir.redis_streams"
local core = require "weir.core"

local available, why = rh.available()

-- Adds the entries { n = 1..count } to stream name in one script.
local function fill(server, name, count)
  rh.call(server, { "EVAL", "for i = 1, tonumber(ARGV[1]) do "
    .. "redis.call('XADD', KEYS[1], '*', 'n', i) end", 1, name, count })
end

-- "n:sum" for every n of 1..count, keyed n % 10 (redis_sums.lua).
local function reference(count)
  local sums, out = {}, {}
  for n = 1, count do
    sums[n % 10] = (sums[n % 10] or 0) + n
    out[#out + 1] = n .. ":" .. sums[n % 10]
  end
  table.sort(out)
  return out
end

-- The entries of stream "out" as sorted "n:sum" strings.
local function sums_out(server)
  local got = {}
  for _, e in ipairs(rh.entries(server, "out")) do
    got[#got + 1] = e.fields.n .. ":" .. e.fields.sum
  end
  table.sort(got)
  return got
end

describe("read_redis_stream and write_redis_stream", function()
  it("refuse unknown or mistyped options, naming them", function()
    local p = weir.pipeline { name = "opts" }
    assert.has_error(function()
      p:read_redis_stream { stream = "s", follow = true }
    end, "read_redis_stream: unknown option 'follow' (known: batch, bounded, "
      .. "start, stream, url)")
    assert.has_error(function() p:read_redis_stream { url = "http://x",
      stream = "s" } end,
      "read_redis_stream: bad url http://x: expected redis://HOST[:PORT][/DB]")
    assert.has_error(function() p:read_redis_stream { stream = {} } end,
      "read_redis_stream: option 'stream' must be a stream name or a list of "
      .. "them")
    assert.has_error(function() p:sequence(1, 2):write_redis_stream {
      stream = "s", fields = 1 } end,
      "write_redis_stream: option 'fields' must be a function(record) -> "
      .. "table")
  end)

  if not available then
    pending("Redis is not available: " .. why .. "; skipped")
    return
  end

  local server, dir
  before_each(function()
    server = rh.start({ appendonly = true })
    dir = h.tmpdir()
  end)
  after_each(function()
    rh.stop(server)
    rh.remove(server)
    h.sh("rm -rf " .. h.quote(dir))
  end)

  for _, parallelism in ipairs({ 1, 2 }) do
    it("read a bounded stream and write each record once at parallelism "
      .. parallelism, function()
      fill(server, "in", 300)
      rh.call(server, { "XADD", "other", "*", "n", "1000" })
      local p = weir.pipeline { name = "copy", parallelism = parallelism,
        checkpoint_interval = 10, checkpoint_dir = dir .. "/ck" }
      p:read_redis_stream({ url = server.url, stream = { "in", "other" },
        bounded = true, batch = 7 }):uid("in")
        :map(function(r)
          return { n = r.fields.n, from = r.stream, id = r.id }
        end)
        :write_redis_stream({ url = server.url, stream = "out" }):uid("out")
      p:run()
      local got, ids = {}, {}
      for _, e in ipairs(rh.entries(server, "out")) do
        got[#got + 1] = e.fields.from .. ":" .. e.fields.n
        ids[e.fields.from .. ":" .. e.fields.n] = e.fields.id
      end
      table.sort(got)
      local want = { "other:1000" }
      for n = 1, 300 do want[#want + 1] = "in:" .. n end
      table.sort(want)
      assert.same(want, got)
      assert.matches("^%d+%-%d+$", ids["in:1"])
    end)
  end

  it("write at least once as records come, with and without checkpoints",
    function()
      fill(server, "in", 5000)
      for _, interval in ipairs({ 0, 10 }) do
        rh.call(server, { "DEL", "out" })
        local p = weir.pipeline { name = "alo" .. interval, parallelism = 1,
          checkpoint_interval = interval, checkpoint_dir = dir .. "/ck" }
        p:read_redis_stream({ url = server.url, stream = "in",
          bounded = true })
          :map(function(r) return { n = r.fields.n } end)
          :write_redis_stream({ url = server.url, stream = "out",
            delivery = "at_least_once" })
        p:run()
        local got = rh.entries(server, "out")
        assert.are.equal(5000, #got)
        for i = 1, 5000 do assert.are.equal(tostring(i), got[i].fields.n) end
      end
    end)

  it("mark a subtask without a stream idle, so event-time windows fire at "
    .. "parallelism 2", function()
      -- One stream: subtask 1 reads none. Entries at event times 0..2999
      -- ms; windows of 1 s; the watermark passes [0, 1000) and [1000,
      -- 2000) once times past 2000 came (from subtask 0 alone).
      for t = 0, 2999, 10 do
        rh.call(server, { "XADD", "in", "*", "t", t })
      end
      local proc = h.spawn_weir({ "run", "--parallelism", "2",
        "--checkpoint-interval", "20", "--checkpoint-dir", dir .. "/ck",
        "spec/fixtures/redis_windows.lua", server.url })
      local ok = pcall(h.wait_until, function()
        return #rh.entries(server, "out") >= 2
      end, 20000, "two windows")
      local r = h.run_weir({ "cancel", "redis_windows", "--checkpoint-dir",
        dir .. "/ck" })
      assert.are.equal(0, r.status, r.stderr)
      r = h.wait_exit(proc)
      assert.is_true(ok, "no window fired: " .. r.stderr)
      local counts = {}
      for _, e in ipairs(rh.entries(server, "out")) do
        counts[tonumber(e.fields.start)] = tonumber(e.fields.count)
      end
      assert.are.equal(100, counts[0])
      assert.are.equal(100, counts[1000])
    end)

  it("start after a given entry id, and the fields a function gives",
    function()
      fill(server, "in", 10)
      local fifth = rh.call(server, { "XRANGE", "in", "-", "+" })[5][1]
      local p = weir.pipeline { name = "after", parallelism = 1,
        checkpoint_interval = 0, checkpoint_dir = dir .. "/ck" }
      p:read_redis_stream({ url = server.url, stream = "in", bounded = true,
        start = fifth })
        :write_redis_stream({ url = server.url, stream = "out",
          fields = function(r) return { twice = r.fields.n * 2 } end })
      p:run()
      local got = {}
      for _, e in ipairs(rh.entries(server, "out")) do
        got[#got + 1] = tonumber(e.fields.twice)
      end
      assert.same({ 12, 14, 16, 18, 20 }, got)
    end)

  it("add nothing when a commit is replayed from a restored checkpoint",
    function()
      local node = { kind = "write_redis_stream", uid = "out", url =
        server.url, stream = "out", defined_at = "spec" }
      local env = { subtask = 0, parallelism = 1, job_name = "replay" }
      local sink = redis_streams.write_redis_stream(node, nil, env)
      sink.open()
      for n = 1, 5 do sink.push({ n = n }) end
      local st = sink.snapshot(1)
      sink.notify_complete(1)
      sink.stop()
      core.drain()
      assert.are.equal(5, #rh.entries(server, "out"))
      -- A crash after the commit: the restored checkpoint holds it again.
      local again = redis_streams.write_redis_stream(node, nil, env)
      again.restore({ { subtask = 0, state = st } })
      again.open()
      again.stop()
      core.drain()
      assert.are.equal(5, #rh.entries(server, "out"))
    end)

  it("give exactly the plain computation's entries after kill -9 of the "
    .. "job at parallelism 2", function()
      local count = 3000
      fill(server, "in", count)
      local ck = dir .. "/ck"
      local args = { "run", "--parallelism", "2", "--checkpoint-interval",
        "30", "--checkpoint-dir", ck, "--restore", "latest",
        "spec/fixtures/redis_sums.lua", server.url, "300" }
      local r = h.kill_after_checkpoints(args, ck .. "/redis_sums", { 2, 2 })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("restored from", r.stderr)
      assert.same(reference(count), sums_out(server))
    end)

  it("run the examples: a log pushed into a stream, counted per status per "
    .. "minute into another, as examples/status_per_minute.lua counts it",
    function()
      local log = "spec/fixtures/apache_logs_slice.log"
      local r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
        "examples/redis_push_lines.lua", log, server.url, "access" })
      assert.are.equal(0, r.status, r.stderr)
      local lines = 0
      for _ in io.lines(log) do lines = lines + 1 end
      assert.are.equal(lines, #rh.entries(server, "access"))
      r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
        "examples/redis_status_per_minute.lua", server.url, "access",
        "bounded" })
      assert.are.equal(0, r.status, r.stderr)
      local got = {}
      for _, e in ipairs(rh.entries(server, "status_per_minute")) do
        got[#got + 1] = e.fields.minute .. "\t" .. e.fields.status .. "\t"
          .. e.fields.count
      end
      table.sort(got)
      r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
        "examples/status_per_minute.lua", log, dir .. "/spm" })
      assert.are.equal(0, r.status, r.stderr)
      local want = h.committed_lines(dir .. "/spm")
      assert.is_true(#want > 10)
      assert.same(want, got)
    end)

  it("reconnect when the server restarts mid-run, losing and duplicating "
    .. "nothing", function()
      local count = 2000
      fill(server, "in", count)
      local ck = dir .. "/ck"
      local proc = h.spawn_weir({ "run", "--parallelism", "1",
        "--checkpoint-interval", "30", "--checkpoint-dir", ck,
        "spec/fixtures/redis_sums.lua", server.url, "400" })
      h.wait_until(function()
        return #h.complete_checkpoints(ck .. "/redis_sums") >= 2
      end, 30000, "two checkpoints")
      rh.stop(server)  -- SIGKILL; with appendfsync always nothing is lost
      local _, status = h.sh("kill -0 " .. proc.pid)
      assert.are.equal(0, status, "the job ended before the server went")
      server = rh.start({ port = server.port, dir = server.dir,
        appendonly = true })
      local r = h.wait_exit(proc, 60000)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("lost redis://127%.0%.0%.1:%d+", r.stderr)
      assert.matches("reconnected to", r.stderr)
      assert.same(reference(count), sums_out(server))
    end)
end)
