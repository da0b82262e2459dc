-- read_socket: lines from TCP clients, through a write-ahead log that
-- acknowledges what is durable, exactly once across kill -9 of the job and
-- of its worker, drained on cancel; without the log, at-most-once.
local core = require "weir.core"
local h = require "helpers"

local N = 6000  -- lines the resending client sends

-- A loopback port nothing listens on.
local free_port = h.free_port

local function read_number(path)
  local f = io.open(path, "rb")
  local n = f and tonumber(f:read("*a"):match("%d+"))
  if f then f:close() end
  return n
end

-- Counts of each line in the committed output of out.
local function counts(out)
  local c = {}
  for _, line in ipairs(h.committed_lines(out)) do
    c[line] = (c[line] or 0) + 1
  end
  return c
end

describe("read_socket", function()
  local dir, out, ck, port, job_dir
  before_each(function()
    dir = h.tmpdir()
    out, ck = dir .. "/out", dir .. "/ck"
    job_dir = ck .. "/socket_copy"
    port = free_port()
  end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- Waits until the job's read_socket listens; returns proc.
  local function wait_listening(proc)
    local s
    local ok = pcall(h.wait_until, function()
      local f = io.open(proc.dir .. "/err", "rb")
      s = f and f:read("*a") or ""
      if f then f:close() end
      return s:find("listening on", 1, true)
    end, 20000)
    assert(ok, "read_socket did not listen: " .. tostring(s))
    return proc
  end

  local function start(extra, restore, interval)
    local args = { "run", "--checkpoint-interval", tostring(interval or 50),
      "--checkpoint-dir", ck, "spec/fixtures/socket_copy.lua",
      tostring(port), out, extra }
    if restore then
      table.insert(args, 2, "--restore")
      table.insert(args, 3, "latest")
    end
    return wait_listening(h.spawn_weir(args))
  end

  -- Starts the resending client in the background; returns its progress
  -- file and the file its exit status lands in.
  local function client(batch, pace, gate)
    local progress, status = dir .. "/progress", dir .. "/client-status"
    os.execute(string.format("sh -c 'luajit spec/socket_client.lua %d %d %s "
      .. "%d %d %s; echo $? > %s' >/dev/null 2>&1 &", port, N,
      h.quote(progress), batch, pace, gate and h.quote(gate) or "",
      h.quote(status)))
    return progress, status
  end

  -- kill -9 of the job's process and its workers; returns once they are
  -- gone (the port is free again).
  local function kill_job(proc)
    local workers = h.workers_of(proc.pid)
    h.kill(proc, "KILL")
    assert.are.equal(137, h.wait_exit(proc).status)
    for _, w in ipairs(workers) do
      os.execute("kill -KILL " .. w .. " 2>/dev/null")
    end
    h.wait_until(function()
      for _, w in ipairs(workers) do
        if os.execute("kill -0 " .. w .. " 2>/dev/null") == 0 then
          return false
        end
      end
      return true
    end, 10000, "the workers to exit")
  end

  local function cancel(proc, extra)
    local r = h.run_weir({ "cancel", "socket_copy", "--checkpoint-dir", ck,
      extra })
    assert.are.equal(0, r.status, r.stderr)
    r = h.wait_exit(proc)
    assert.are.equal(0, r.status, r.stderr)
    return r
  end

  local function wait_client(status)
    h.wait_until(function() return read_number(status) end, 60000,
      "the client to have every line acknowledged")
    assert.are.equal(0, read_number(status))
  end

  -- Every line once, but those of the batch that was sent and not yet
  -- acknowledged when the job was killed (acked: the count acknowledged
  -- then): the log may hold them and the client sent them again.
  local function assert_output(acked_at_kill, batch)
    local c = counts(out)
    for i = 1, N do
      local n, line = c["line-" .. i] or 0, "line-" .. i
      c[line] = nil
      local in_flight = false
      for _, k in ipairs(acked_at_kill) do
        if i > k and i <= k + batch then in_flight = true end
      end
      if n ~= 1 and not (in_flight and n == 2) then
        error(string.format("%s committed %d times (acknowledged at the "
          .. "kills: %s)", line, n, table.concat(acked_at_kill, ", ")))
      end
    end
    assert.are.same({}, c)
  end

  it("acknowledges durable lines and drains the log on cancel", function()
    local proc = start("1000")
    local progress, status = client(100, 1)
    wait_client(status)
    assert.are.equal(N, read_number(progress))
    local r = cancel(proc)
    assert.matches("draining", r.stderr)
    assert.matches("finished", r.stderr)
    assert_output({}, 0)
    -- The job read the log to its end: no segment holds a byte any more.
    local names = core.scandir(job_dir .. "/wal/socket")
    for _, name in ipairs(names) do
      if name:match("%.log$") then
        assert.are.equal(0, core.stat(job_dir .. "/wal/socket/" .. name).size)
      end
    end
  end)

  for _, victim in ipairs({ "job", "worker" }) do
    it("gives every acknowledged line exactly once across kill -9 of the "
      .. victim, function()
      local batch = 50
      local proc = start("20000")
      local gate = dir .. "/gate"
      local progress, status = client(batch, 5, gate)
      local acked = {}
      for round = 1, 2 do
        -- Mid-run: the client waits at gate `round` (half of its lines or
        -- more still to send) and a checkpoint completed since the last
        -- kill; once let go, its next lines are acknowledged, and the
        -- kill lands while it sends the ones after.
        -- (By the newest id: retention keeps their number at 3.)
        local ids = h.complete_checkpoints(job_dir)
        local before = ids[#ids] or 0
        h.wait_until(function()
          local now = h.complete_checkpoints(job_dir)
          return (read_number(progress) or 0) >= round * N / 4
            and (now[#now] or 0) > before
        end, 30000, "a checkpoint and the client at its gate")
        h.write_file(gate .. "-" .. round, "")
        h.wait_until(function()
          return read_number(progress) > round * N / 4
        end, 30000, "the client to go on")
        if victim == "job" then
          kill_job(proc)
        else
          local workers = h.workers_of(proc.pid)
          assert.is_true(#workers > 0, "the job runs workers")
          os.execute("kill -KILL " .. workers[1])
        end
        acked[round] = read_number(progress)
        assert.is_true(acked[round] < N, "the client was still sending")
        if victim == "job" then proc = start("20000", true) end
      end
      wait_client(status)
      cancel(proc)
      assert_output(acked, batch)
    end)
  end

  it("keeps the log a savepoint needs, and a restore from it replays it",
    function()
      local proc = start("2000")
      local gate = dir .. "/gate"
      local progress, status = client(100, 1, gate)
      h.wait_until(function()
        return (read_number(progress) or 0) >= N / 4
      end, 30000, "the client at its first gate")
      local r = h.run_weir({ "savepoint", "socket_copy", "--checkpoint-dir",
        ck, dir .. "/sp" })
      assert.are.equal(0, r.status, r.stderr)
      local sp = r.stdout:gsub("%s+$", "")
      h.write_file(gate .. "-1", "")
      h.write_file(gate .. "-2", "")
      wait_client(status)
      cancel(proc)
      assert_output({}, 0)
      -- Retention would have removed the first segments; the savepoint
      -- keeps them.
      local held = 0
      for _, name in ipairs(core.scandir(job_dir .. "/wal/socket")) do
        local st = core.stat(job_dir .. "/wal/socket/" .. name)
        if name:match("%.log$") then held = held + st.size end
      end
      assert.is_true(held > 0, "the log still holds what the savepoint needs")
      -- Into another sink (the savepoint's output files are the first
      -- run's): the source's position alone is restored.
      proc = h.spawn_weir({ "run", "--restore", sp,
        "--allow-non-restored-state", "--checkpoint-interval", "50",
        "--checkpoint-dir", ck, "spec/fixtures/socket_copy.lua",
        tostring(port), dir .. "/out2", "2000", "out2" })
      wait_listening(proc)
      cancel(proc)
      -- The restored run reads the lines after the savepoint's position:
      -- line-k+1 ... line-N, once each.
      local c, k = counts(dir .. "/out2"), 0
      while not c["line-" .. (k + 1)] and k < N do k = k + 1 end
      assert.is_true(k >= 1 and k <= N / 4 + 100, "savepoint after line " .. k)
      for i = k + 1, N do
        assert.are.equal(1, c["line-" .. i], "line-" .. i)
        c["line-" .. i] = nil
      end
      assert.are.same({}, c)
    end)

  it("replays the whole log when the job failed before any checkpoint",
    function()
      -- No checkpoint completes in this run (an hour between them).
      local proc = start("100000", false, 3600000)
      local progress, status = client(500, 0)
      wait_client(status)
      assert.are.equal(N, read_number(progress))
      kill_job(proc)
      assert.are.same({}, h.committed_lines(out))
      proc = start("100000", true)
      local r = cancel(proc)
      assert.matches("starting from the beginning", r.stderr)
      assert_output({}, 0)
    end)

  it("drains on cancel across a worker killed as the cancel comes",
    function()
      -- No checkpoint completes in this run (an hour between them): only
      -- the drain's final checkpoint commits the lines.
      local proc = start("100000", false, 3600000)
      local progress, status = client(500, 0)
      wait_client(status)
      assert.are.equal(N, read_number(progress))
      local workers = h.workers_of(proc.pid)
      assert.is_true(#workers > 0, "the job runs workers")
      os.execute("kill -KILL " .. workers[1])
      local r = cancel(proc)
      assert.matches("draining", r.stderr)
      assert.matches("restart", r.stderr)
      assert_output({}, 0)
    end)

  it("drops a line cut off by a closed connection, refuses a too long one",
    function()
      local proc = start("1000")
      h.sh(string.format("luajit spec/socket_client.lua %d raw %s close",
        port, h.quote("a1\na2\npart")))
      local long = h.sh(string.format("luajit spec/socket_client.lua %d raw %s",
        port, h.quote("b1\n" .. string.rep("x", 5000))))
      -- b1 may or may not be acknowledged before the connection closes.
      assert.matches("error line longer than 4096 bytes\n", long, 1, true)
      local r = cancel(proc)
      assert.matches("closed the connection mid%-line; its last 4 bytes",
        r.stderr)
      assert.matches("sent a line longer than 4096 bytes", r.stderr)
      assert.are.same({ "a1", "a2", "b1" }, h.committed_lines(out))
    end)

  it("without a log acknowledges nothing, and cancel stops at once",
    function()
      local proc = start("nowal")
      local reply = h.sh(string.format("luajit spec/socket_client.lua %d "
        .. "raw %s close", port, h.quote("c1\nc2\n")))
      assert.are.equal("", reply)
      h.wait_until(function() return #h.committed_lines(out) == 2 end,
        20000, "the lines to be committed")
      local r = cancel(proc, "--no-drain")
      assert.is_nil(r.stderr:find("draining", 1, true))
      assert.matches("at%-most%-once", r.stderr)
      assert.are.same({ "c1", "c2" }, h.committed_lines(out))
    end)

  it("runs examples/socket_word_count.lua as the README shows", function()
    local args = { "run", "--checkpoint-interval", "200", "--checkpoint-dir",
      ck, "examples/socket_word_count.lua", "127.0.0.1:" .. port, out }
    local proc = wait_listening(h.spawn_weir(args))
    local text = "examples/data/tinyshakespeare.txt"
    h.sh(string.format("luajit spec/socket_client.lua %d raw @%s acked 40000",
      port, text))
    local r = h.run_weir({ "cancel", "socket_word_count", "--checkpoint-dir",
      ck })
    assert.are.equal(0, r.status, r.stderr)
    r = h.wait_exit(proc)
    assert.are.equal(0, r.status, r.stderr)
    assert.are.same(h.wordcount_lines(text), h.committed_lines(out))
  end)

  it("names what is wrong with its options", function()
    local weir = require "weir"
    local p = weir.pipeline { name = "bad" }
    assert.has_error(function() p:read_socket { listen = "nowhere" } end,
      "read_socket: option 'listen' must be \"HOST:PORT\", e.g. "
      .. "\"127.0.0.1:9000\"")
    local ok, err = pcall(p.read_socket, p, { listen = "127.0.0.1:1",
      acks = true })
    assert.is_false(ok)
    assert.matches("unknown option 'acks'", err)
    local r = h.run_weir({ "run", "--checkpoint-interval", "0",
      "spec/fixtures/socket_copy.lua", tostring(port), out })
    assert.are_not.equal(0, r.status)
    assert.matches("wal = true needs checkpoints", r.stderr)
  end)
end)
