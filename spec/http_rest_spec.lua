-- The REST API of a running job: the job with its plan and subtasks, its
-- checkpoint and exception history, savepoints and cancel by POST, and
-- who may send what (the token, the peer's uid, the Origin header).
local h = require "helpers"
local core = require "weir.core"
local http_auth = require "weir.http_auth"
local json = require "weir.json"

local request, announced = h.http_request, h.http_announced

-- GET path as JSON: the decoded body (asserting 200).
local function get(port, path, headers)
  local status, ctype, body = request(port, path, "GET", nil, headers)
  assert.are.equal(200, status, body)
  assert.are.equal("application/json", ctype)
  return json.decode(body)
end

-- Lines "TIME WORD" for times first..last, the word cycling through 5.
local function lines(first, last)
  local out = {}
  for t = first, last do out[#out + 1] = t .. " w" .. (t % 5) end
  return table.concat(out, "\n") .. "\n"
end

local function sum(list, field, pred)
  local n = 0
  for _, v in ipairs(list) do
    if not pred or pred(v) then n = n + (v[field] or 0) end
  end
  return n
end

describe("weir run's REST API", function()
  local dir
  before_each(function()
    dir = h.tmpdir()
    h.sh("mkdir " .. h.quote(dir .. "/logs"))
  end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- The word-count job over followed files, at parallelism 2, serving
  -- HTTP at a free port (or as extra says): it runs until cancelled.
  local function start(extra)
    return h.spawn_followed("spec/fixtures/follow_count.lua", dir, extra)
  end

  it("describes the job, its plan, subtasks and checkpoints, and takes a "
    .. "savepoint and cancels on POST", function()
    h.write_file(dir .. "/logs/a.log", lines(1001, 1300))
    local port = h.free_port()
    local proc = start({ "--http", "127.0.0.1:" .. port })
    assert.are.equal(port, announced(proc))
    local base = "/api/v1/jobs/follow_count"
    -- Every line read, and a checkpoint since that holds the counts.
    local j
    h.wait_until(function()
      j = get(port, base)
      local counted = false
      for _, s in ipairs(j.subtasks) do
        counted = counted or s.operator == "counts" and s.state_bytes > 0
      end
      -- Both workers reported (one reads the only file: its numbers
      -- alone can satisfy the rest).
      return #j.subtasks == 4 and sum(j.subtasks, "records_in",
        function(s) return s.source end) == 300 and counted
    end, 20000, "every line read, the counts in a checkpoint and both "
      .. "workers' subtasks")
    assert.are.equal("follow_count", j.name)
    assert.are.equal("running", j.state)
    assert.are.equal(proc.pid, j.pid)
    local uids, kinds = {}, {}
    for _, op in ipairs(j.operators) do
      uids[#uids + 1] = op.uid
      kinds[op.uid] = op.kind
    end
    for _, uid in ipairs({ "lines", "times", "words", "counts", "format",
      "out" }) do
      assert.is_truthy(kinds[uid], uid .. " in " .. table.concat(uids, " "))
    end
    assert.are.equal("read_lines", kinds.lines)
    assert.are.equal("reduce", kinds.counts)
    local into_counts
    for _, e in ipairs(j.edges) do
      if e.to == "counts" then into_counts = e end
    end
    assert.are.equal("hash", into_counts.partitioning)
    assert.is_false(into_counts.chained)
    assert.are.equal(2, #j.chains)
    assert.are.same({ "counts", "format", "out" }, j.chains[2].operators)
    assert.are.equal(4, #j.subtasks)
    -- The source chain's watermark: the largest time - 0 - 1.
    local wm
    for _, s in ipairs(j.subtasks) do
      if s.operator == "lines" and s.watermark_ms then
        wm = math.max(wm or 0, s.watermark_ms)
      end
    end
    assert.are.equal(1299, wm)

    -- Rates: more input shows as records per second in from the source.
    h.write_file(dir .. "/logs/b.log", lines(1301, 1600))
    h.wait_until(function()
      j = get(port, base)
      return sum(j.subtasks, "records_in_per_s",
        function(s) return s.operator == "counts" end) > 0
    end, 20000, "a rate of records into the counts")

    local c = get(port, base .. "/checkpoints")
    assert.is_true(c.counts.completed >= 1)
    assert.are.equal(0, c.counts.failed)
    local newest = c.history[1]
    local done
    for _, e in ipairs(c.history) do
      if e.status == "completed" then done = done or e end
    end
    assert.is_true(newest.id >= done.id)
    assert.is_true(done.duration_ms >= 0 and done.size_bytes > 0)
    assert.is_truthy(core.stat(done.path), done.path)
    assert.are.same({ exceptions = {} }, get(port, base .. "/exceptions"))

    -- A savepoint into a directory given, answered once it is complete.
    local status, _, body = request(port, base .. "/savepoints", "POST",
      json.encode({ dir = dir .. "/sp" }))
    assert.are.equal(200, status, body)
    local path = json.decode(body).path
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/sp/savepoint%-"
      .. "follow_count%-%d+$", path)
    assert.is_truthy(core.stat(path .. "/_manifest"), path)
    c = get(port, base .. "/checkpoints")
    local sp
    for _, e in ipairs(c.history) do
      if e.savepoint then sp = e end
    end
    assert.are.equal("completed", sp.status)
    assert.are.equal(path, sp.path)

    -- Refused: a bad body, GET on a POST resource, another job's name,
    -- and a POST a page of another origin makes a browser send.
    status, _, body = request(port, base .. "/savepoints", "POST", "[1,")
    assert.are.equal(400, status)
    assert.matches("must be a JSON object", body)
    assert.are.equal(405, (request(port, base .. "/cancel")))
    status, _, body = request(port, "/api/v1/jobs/other")
    assert.are.equal(404, status)
    assert.matches("no job other here", body)
    status, _, body = request(port, base .. "/cancel", "POST", "",
      { Origin = "http://example.com" })
    assert.are.equal(403, status)
    assert.matches("another origin", body)

    -- Another user of the machine may read, not cancel or savepoint.
    if core.getuid() == 0 and h.sh("command -v curl runuser"):find("runuser")
    then
      local url = "http://127.0.0.1:" .. port .. base
      local out = h.sh("runuser -u nobody -- curl -s " .. h.quote(url))
      assert.are.equal("follow_count", json.decode(out).name)
      out = h.sh("runuser -u nobody -- curl -s -X POST "
        .. h.quote(url .. "/cancel"))
      assert.matches("only the job's own user %(uid 0%)", out)
    end

    -- Cancel: answered once the job stopped; the counts are committed.
    status, _, body = request(port, base .. "/cancel", "POST")
    assert.are.equal(200, status, body)
    assert.are.equal("cancelled", json.decode(body).state)
    local r = h.wait_exit(proc)
    assert.are.equal(0, r.status, r.stderr)
    local counts = {}
    for _, line in ipairs(h.committed_lines(dir .. "/out")) do
      local w, n = line:match("^(%S+) (%d+)$")
      counts[w] = math.max(counts[w] or 0, tonumber(n))
    end
    assert.are.same({ w0 = 120, w1 = 120, w2 = 120, w3 = 120, w4 = 120 },
      counts)
  end)

  it("lists the cause of each restart", function()
    h.write_file(dir .. "/logs/a.log", lines(1, 100))
    local port = h.free_port()
    local proc = start({ "--http", "127.0.0.1:" .. port })
    announced(proc)
    local base = "/api/v1/jobs/follow_count"
    local workers
    h.wait_until(function()
      local j = get(port, base)
      workers = h.workers_of(proc.pid)
      return j.state == "running" and j.checkpoints >= 1 and #workers == 2
    end, 20000, "the job running on its two workers")
    os.execute("kill -KILL " .. workers[2])
    local e
    h.wait_until(function()
      e = get(port, base .. "/exceptions").exceptions[1]
      return e
    end, 20000, "the restart's cause")
    assert.matches("^worker %d was killed by signal 9", e.cause)
    assert.are.equal(tonumber(e.cause:match("^worker (%d+)")), e.worker)
    assert.are.equal(1, e.restart)
    assert.is_true(math.abs(e.time_ms - core.time_ms()) < 60000)
    h.wait_until(function() return get(port, base).restarts == 1 end, 20000,
      "the restart")
    local status = request(port, base .. "/cancel", "POST")
    assert.are.equal(200, status)
    assert.are.equal(0, h.wait_exit(proc).status)
  end)

  it("asks every request for the token on a non-loopback address",
    function()
      h.write_file(dir .. "/token", "0123456789abcdef-secret\n")
      h.write_file(dir .. "/job.lua", [[
local weir = require "weir"
local p = weir.pipeline { name = "short" }
p:sequence(1, 10):uid("n"):discard()
p:run()
]])
      local r = h.run_weir({ "run", "--http", "0.0.0.0:" .. h.free_port(),
        "--checkpoint-dir", dir .. "/ck", dir .. "/job.lua" })
      assert.are.equal(1, r.status)
      assert.matches("a non%-loopback address needs %-%-http%-token%-file",
        r.stderr)
      h.write_file(dir .. "/logs/a.log", lines(1, 10))
      local port = h.free_port()
      local proc = start({ "--http", "0.0.0.0:" .. port,
        "--http-token-file", dir .. "/token" })
      h.wait_until(function()
        return (h.read_file(proc.dir .. "/err") or ""):find("http://0%.0%.0%.0:"
          .. port .. "/")
      end, 20000, "the HTTP API")
      local base = "/api/v1/jobs/follow_count"
      local status, _, body = request(port, base)
      assert.are.equal(401, status)
      assert.matches("needs the token", body)
      status = request(port, base, "GET", nil,
        { Authorization = "Bearer 0123456789abcdef-wrong!" })
      assert.are.equal(401, status)
      local auth = { Authorization = "Bearer 0123456789abcdef-secret" }
      assert.are.equal("follow_count", get(port, base, auth).name)
      assert.are.equal(401, (request(port, base .. "/cancel", "POST")))
      status, _, body = request(port, base .. "/cancel", "POST", nil, auth)
      assert.are.equal(200, status, body)
      assert.are.equal(0, h.wait_exit(proc).status)
    end)

  it("finds the user of a local peer in the kernel's socket table",
    function()
      local port = h.free_port()
      local peer, accepted, client
      local server = core.listen("tcp:127.0.0.1:" .. port, function(conn)
        peer, accepted = conn:peer(), conn
      end)
      core.connect("tcp:127.0.0.1:" .. port, function(err, c)
        assert.is_nil(err)
        client = c
      end)
      -- The loop runs once per event (h.wait_until's sleeps would wait
      -- for the listener to close); a timer bounds the wait.
      local expired = false
      local bound = core.timer(function() expired = true end)
      bound:start(5000, 0)
      while not (peer and client) and not expired do core.run_once() end
      bound:close()
      assert.is_false(expired, "timed out waiting for the connection")
      -- Looked up while both ends are open.
      assert.are.equal(core.getuid(), http_auth.peer_uid(peer))
      accepted:close()
      client:close()
      server:close()
      core.run()
      assert.is_nil(http_auth.peer_uid("tcp:10.255.255.1:9"))
      assert.is_true(http_auth.is_loopback("127.0.0.1"))
      assert.is_false(http_auth.is_loopback("0.0.0.0"))
    end)
end)
