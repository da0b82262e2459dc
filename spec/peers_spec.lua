-- Hostile peers: a process that is no part of a job connects to a worker's
-- TCP port (--transport tcp) and sends forged, malformed or oversized
-- frames. The job must not notice: its output stays exact, nothing
-- restarts, the worker's memory stays where it was, and the connection is
-- closed.
local buffer = require "string.buffer"
local h = require "helpers"
local handshake = require "weir.handshake"

local SCRIPT = "spec/fixtures/chaos_wordcount.lua"
local ATTACKER = "spec/fixtures/attacker.sh"

-- The bytes of s in printf's \xHH notation.
local function printf_bytes(s)
  return (s:gsub(".", function(c) return string.format("\\x%02x", c:byte())
  end))
end

-- A frame: u32 little-endian length, then the payload.
local function frame(payload)
  local n = #payload
  return string.char(n % 256, math.floor(n / 256) % 256,
    math.floor(n / 65536) % 256, math.floor(n / 16777216)) .. payload
end

-- The worker process of index w among the children of the weir process.
local function worker_pid(proc, w)
  for _, pid in ipairs(h.workers_of(proc.pid)) do
    local cmdline = (h.read_file("/proc/" .. pid .. "/cmdline") or "")
      :gsub("%z", " ")
    if cmdline:find(" %-%-worker " .. w .. " ") then return pid end
  end
end

-- The TCP port process pid listens on, or nil.
local function listening_port(pid)
  local inodes = {}
  local out = h.sh("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
  for inode in out:gmatch("socket:%[(%d+)%]") do inodes[inode] = true end
  for line in (h.read_file("/proc/net/tcp") or ""):gmatch("[^\n]+") do
    local port, state, inode = line:match(
      "^%s*%d+: %x+:(%x+) %x+:%x+ (%x%x) %x+:%x+ %x+:%x+ %x+%s+%d+%s+%d+ (%d+)")
    if state == "0A" and inodes[inode] then return tonumber(port, 16) end
  end
end

-- A status field of a process in KiB ("VmRSS", "VmHWM"), or nil.
local function status_kib(pid, field)
  local status = h.read_file("/proc/" .. pid .. "/status")
  return status and tonumber(status:match(field .. ":%s*(%d+)"))
end

-- Runs word count on two workers over TCP and, while they read, calls
-- attack(port, pid) with worker 0's port and pid; returns the job's
-- result, what attack returned, and the expected output.
local function attacked_run(attack)
  local dir = h.tmpdir()
  local input = dir .. "/input.txt"
  h.repeat_file(h.shakespeare, input, 5)
  local hold = dir .. "/hold"
  h.write_file(hold, "")
  local proc = h.spawn_weir({ "run", "--parallelism", "2", "--transport",
    "tcp", "--checkpoint-interval", "100", "--checkpoint-dir", dir .. "/ck",
    SCRIPT, input, dir .. "/out", "fixed_delay", hold })
  local ok, result = pcall(function()
    h.wait_until(function()
      return #h.complete_checkpoints(dir .. "/ck/chaos") > 0
    end, 30000, "a first checkpoint")
    local pid = assert(worker_pid(proc, 0), "no worker 0")
    local port = h.wait_until(function() return listening_port(pid) end,
      10000, "worker 0's port")
    return attack(port, pid)
  end)
  os.remove(hold)
  if not ok then h.kill(proc, "KILL") end
  local r = h.wait_exit(proc, 60000)
  assert(ok, result)
  r.output = h.committed_lines(dir .. "/out")
  local expected = h.wordcount_lines(input)
  h.sh("rm -rf " .. h.quote(dir))
  return r, result, expected
end

-- Runs the attacker (as user `as`, if given) against port; returns its
-- exit status (0: weir closed the connection).
local function attacker(port, bytes, as)
  local prefix = as and "setpriv --reuid=" .. as
    .. " --regid=nogroup --clear-groups " or ""
  local _, status = h.sh(string.format("%s%s %d %s", prefix, ATTACKER,
    port, h.quote(printf_bytes(bytes))))
  return status
end

-- A hello claiming to be worker 1, then a batch holding one forged word
-- on the channel from worker 1's subtask to worker 0's.
local function forged_hello_and_data()
  local cid = (1 * 65536 + 1) * 65536 + 0
  return frame(buffer.encode({ peer = 1 }))
    .. frame(buffer.encode(cid) .. buffer.encode({ n = 1, "zzforged" }))
end

local function assert_unchanged(r, expected)
  assert.are.equal(0, r.status, r.stderr)
  assert.is_nil(r.stderr:find("restarting from", 1, true), r.stderr)
  assert.same(expected, r.output)
end

describe("a process that is no part of the job", function()
  it("cannot add records to an exactly-once job's output with a forged "
    .. "hello and data frame", function()
    local r, status, expected = attacked_run(function(port)
      return attacker(port, forged_hello_and_data())
    end)
    assert_unchanged(r, expected)
    assert.are.equal(0, status)
    assert.matches("weir: worker 0 refused a connection: it did not prove "
      .. "it knows the job's secret", r.stderr, 1, true)
  end)

  it("causes no restart with a malformed 13-byte frame", function()
    local r, status, expected = attacked_run(function(port)
      -- A string that claims 20 bytes and has 12.
      return attacker(port, frame("\x34" .. string.rep("x", 12)))
    end)
    assert_unchanged(r, expected)
    assert.are.equal(0, status)
  end)

  it("is disconnected when it announces a frame over the maximum size",
    function()
    local r, status, expected = attacked_run(function(port)
      return attacker(port, "\x01\x00\x00\x10")  -- 256 MiB + 1
    end)
    assert_unchanged(r, expected)
    assert.are.equal(0, status)
    assert.matches("weir: worker 0 refused a connection: before "
      .. "authenticating, it sent a frame longer than "
      .. handshake.RESPONSE_BYTES .. " bytes", r.stderr, 1, true)
  end)

  it("does not raise a worker's memory with a frame that claims huge "
    .. "arrays", function()
    -- 29 bytes: four tables of 2^25 array slots each, in a table.
    local inner = "\x0a\xff\x00\x00\x00\x02"
    local bomb = "\x0a\x04" .. inner:rep(4) .. "\x00\x00\x00"
    assert.are.equal(29, #bomb)
    local r, grown, expected = attacked_run(function(port, pid)
      local before = assert(status_kib(pid, "VmHWM"))
      assert.are.equal(0, attacker(port, frame(bomb)))
      return assert(status_kib(pid, "VmHWM"), "worker 0 is gone") - before
    end)
    assert_unchanged(r, expected)
    assert.is_true(grown < 32 * 1024, "worker 0 grew by " .. grown .. " KiB")
  end)

  local setpriv = h.sh("command -v setpriv"):find("setpriv")
    and h.sh("id -u"):match("^0%s") and h.sh("id -u nobody 2>/dev/null")
      :match("%d")
  local other_uid = setpriv and it or pending
  other_uid("cannot add records running under another uid (nobody)",
    function()
    local r, status, expected = attacked_run(function(port)
      return attacker(port, forged_hello_and_data(), "nobody")
    end)
    assert_unchanged(r, expected)
    assert.are.equal(0, status)
  end)
end)

describe("weir.handshake.admit", function()
  it("accepts a first connection of an attempt no older than the floor",
    function()
    assert.are.equal("new", handshake.admit(nil, 3, 3))
  end)

  it("replaces a connection with one of a newer attempt", function()
    assert.are.equal("replace", handshake.admit(3, 4, 3))
  end)

  it("refuses an attempt older than or equal to the connected one",
    function()
    assert.same({ nil, "it is already connected with attempt 4" },
      { handshake.admit(4, 4, 3) })
    assert.same({ nil, "it is already connected with attempt 4" },
      { handshake.admit(4, 3, 3) })
  end)

  it("refuses an attempt older than the floor", function()
    assert.same({ nil, "attempt 2 is older than attempt 3" },
      { handshake.admit(nil, 2, 3) })
  end)
end)

describe("the job's control socket", function()
  local core = require "weir.core"
  local control = require "weir.control"

  -- Serves a control socket in a new directory, sends it one frame from a
  -- client and runs the loop until the reply or the end of the
  -- connection. Returns the reply (decoded) or nil, and the growth of this
  -- process's peak memory in KiB meanwhile.
  local function send_to_control(payload)
    local dir = h.tmpdir()
    -- The socket in a run directory of its own, its pointer in dir.
    core.mkdir(dir .. "/run")
    local server = assert(control.serve(dir, dir .. "/run", {
      status = function() return { state = "running" } end }))
    local before = status_kib("self", "VmHWM")
    local reply, ended
    assert(core.connect(control.socket_path(dir), function(err, conn)
      assert(not err, err)
      conn:on_frame(function(b)
        if b then reply = buffer.decode(b) else ended = true end
        conn:close()
      end)
      conn:send(payload)
    end))
    -- The loop runs until the reply or the end, or for at most 10 s.
    local timer = core.timer(function() core.stop() end)
    timer:start(10000, 0)
    local check = core.idle(function()
      if reply or ended then core.stop() end
    end)
    check:start()
    core.run()
    timer:close()
    check:close()
    assert(reply or ended, "no reply from the control socket in 10 s")
    local grown = status_kib("self", "VmHWM") - before
    server.close()
    core.drain()
    h.sh("rm -rf " .. h.quote(dir))
    return reply, grown
  end

  it("answers a request", function()
    local reply = send_to_control(buffer.encode({ t = "status" }))
    assert.same({ ok = true, state = "running" }, reply)
  end)

  it("refuses a request that claims huge arrays without decoding it",
    function()
    local inner = "\x0a\xff\x00\x00\x00\x02"
    local reply, grown = send_to_control("\x0a\x04" .. inner:rep(4)
      .. "\x00\x00\x00")
    assert.same({ error = "not a weir control request" }, reply)
    assert.is_true(grown < 32 * 1024, "grew by " .. grown .. " KiB")
  end)

  it("closes a connection that sends a request over its size limit",
    function()
    local reply = send_to_control(string.rep("x",
      control.MAX_REQUEST_BYTES + 1))
    assert.is_nil(reply)
  end)
end)
