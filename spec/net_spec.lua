local core = require "weir.core"
local h = require "helpers"

-- Runs the loop until done() is true, failing after timeout_ms.
local function run_until(done, timeout_ms)
  local timer, check
  local function stop()
    timer:close()
    check:close()
    core.stop()
  end
  timer = core.timer(function()
    stop()
    error("timed out", 0)
  end)
  timer:start(timeout_ms or 5000, 0)
  check = core.idle(function()
    if done() then stop() end
  end)
  check:start()
  core.run()
end

local function echo_round_trip(address)
  local got, server_conn = {}, nil
  local server = assert(core.listen(address, function(conn)
    server_conn = conn
    conn:on_frame(function(bytes)
      if bytes then conn:send("echo:" .. bytes) end
    end)
  end))
  local client
  assert(core.connect(server:address(), function(err, conn)
    assert(not err, err)
    client = conn
    conn:on_frame(function(bytes) got[#got + 1] = bytes end)
    conn:send("one")
    conn:send(string.rep("x", 300000))
    conn:send("")
  end))
  local ok, err = pcall(run_until, function() return #got == 3 end)
  if client then client:close() end
  if server_conn then server_conn:close() end
  server:close()
  core.drain()
  assert(ok, err)
  return got
end

describe("framed connections", function()
  it("carry frames both ways over a Unix domain socket", function()
    local dir = h.tmpdir()
    local got = echo_round_trip(dir .. "/s.sock")
    assert.same({ "echo:one", "echo:" .. string.rep("x", 300000), "echo:" },
      got)
    h.sh("rm -rf " .. h.quote(dir))
  end)

  it("carry frames both ways over TCP on loopback", function()
    local got = echo_round_trip("tcp:127.0.0.1:0")
    assert.are.equal(3, #got)
    assert.are.equal("echo:one", got[1])
  end)

  it("hand frames over as a pointer and send from memory, without Lua "
    .. "strings; a closed connection refuses", function()
    local ffi = require "ffi"
    local buffer = require "string.buffer"
    local send_raw = ffi.cast("int (*)(void *, const uint8_t *, size_t)",
      core.send_raw_fn())
    local dir = h.tmpdir()
    local got, server_conn = {}, nil
    local server = assert(core.listen(dir .. "/s.sock", function(conn)
      server_conn = conn
      conn:on_frame(function(payload, len)
        if payload then
          got[#got + 1] = { type(payload), buffer.new():set(
            ffi.cast("const uint8_t *", payload), len):decode() }
        end
      end, "pointer")
    end))
    local client
    local out = buffer.new()
    assert(core.connect(server:address(), function(err, conn)
      assert(not err, err)
      client = conn
      out:encode({ n = 2, "a", "b" })
      assert.are.equal(0, send_raw(conn:handle(), out:ref()))
    end))
    local ok, err = pcall(run_until, function() return #got == 1 end)
    local handle = client and client:handle()
    local bad_mode = client and select(2, pcall(client.on_frame, client,
      function() end, "strings"))
    if client then client:close() end
    if server_conn then server_conn:close() end
    server:close()
    core.drain()
    assert(ok, err)
    assert.same({ { "userdata", { n = 2, "a", "b" } } }, got)
    local r = send_raw(handle, out:ref())
    assert.are.equal("broken pipe", core.strerror(r))
    assert.matches('expected "pointer" or nothing', bad_mode)
    h.sh("rm -rf " .. h.quote(dir))
  end)

  it("report a failed connect", function()
    local dir = h.tmpdir()
    local failure
    assert(core.connect(dir .. "/nobody.sock", function(err)
      failure = err
    end))
    run_until(function() return failure ~= nil end)
    assert.are.equal("no such file or directory", failure)
    h.sh("rm -rf " .. h.quote(dir))
  end)
end)

describe("core.spawn", function()
  it("reports the exit status of a child process", function()
    local status
    local proc = assert(core.spawn("/bin/sh", { "-c", "exit 3" }, nil,
      function(s, sig) status = { s, sig } end))
    run_until(function() return status ~= nil end)
    proc:close()
    assert.same({ 3, 0 }, status)
  end)

  it("reports the signal that killed a child process", function()
    local status
    local proc = assert(core.spawn("/bin/sleep", { "30" }, nil,
      function(s, sig) status = { s, sig } end))
    assert(proc:kill("KILL"))
    run_until(function() return status ~= nil end)
    proc:close()
    assert.same({ 0, 9 }, status)
  end)
end)
