-- Worker processes: transports and flow control.
local h = require "helpers"


-- Resident memory of a process in KiB (VmRSS), or nil once it is gone.
local function rss_kib(pid)
  local status = h.read_file("/proc/" .. pid .. "/status")
  return status and tonumber(status:match("VmRSS:%s*(%d+)"))
end

-- The socket inodes a process holds open.
local function socket_inodes(pid)
  local out = h.sh("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
  local inodes = {}
  for inode in out:gmatch("socket:%[(%d+)%]") do inodes[inode] = true end
  return inodes
end

-- Whether one of the inodes is an established TCP connection.
local function has_tcp_connection(inodes)
  for line in (h.read_file("/proc/net/tcp") or ""):gmatch("[^\n]+") do
    local state, inode = line:match(
      "^%s*%d+: %x+:%x+ %x+:%x+ (%x%x) %x+:%x+ %x+:%x+ %x+%s+%d+%s+%d+ (%d+)")
    if state == "01" and inodes[inode] then return true end
  end
  return false
end

describe("worker processes", function()
  it("report per-subtask metrics as JSON lines and the records the sources "
    .. "read in the summary", function()
      local dir = h.tmpdir()
      local r = h.run_weir({ "run", "--parallelism", "2", "--metrics",
        dir .. "/metrics.json", "--checkpoint-dir", dir .. "/ck",
        "examples/wordcount.lua", h.shakespeare, dir .. "/out" })
      assert.are.equal(0, r.status, r.stderr)
      local lines = 0
      for _ in io.lines(h.shakespeare) do lines = lines + 1 end
      assert.matches("; " .. lines .. " records from sources;", r.stderr)
      local last
      for line in io.lines(dir .. "/metrics.json") do last = line end
      assert.matches('^{"job":"wordcount"', last)
      local read, subtasks = 0, {}
      for task in last:gmatch("{[^{}]*}") do
        if task:find('"source":true', 1, true) then
          read = read + tonumber(task:match('"records_in":(%d+)'))
        end
        local op, i = task:match('"operator":"(%w+)".*"subtask":(%d+)')
        if op then subtasks[op .. i] = true end
      end
      assert.are.equal(lines, read)
      -- Two chains (the source's, and reduce with its sink), two subtasks.
      assert.are.same({ lines0 = true, lines1 = true, counts0 = true,
        counts1 = true }, subtasks)
      h.sh("rm -rf " .. h.quote(dir))
    end)

  it("keep each worker's memory bounded when a slow operator "
    .. "backpressures a fast source", function()
    local proc = h.spawn_weir({ "run", "--parallelism", "2",
      "spec/fixtures/slow_consumer.lua" })
    local pids = h.wait_until(function()
      local ws = h.workers_of(proc.pid)
      return #ws == 2 and ws
    end, 20000, "two workers")
    local peak = 0
    -- Three seconds: unbounded, the source would queue hundreds of MB.
    for _ = 1, 30 do
      h.sleep(100)
      for _, pid in ipairs(pids) do
        peak = math.max(peak, rss_kib(pid) or 0)
      end
    end
    h.kill(proc, "KILL")
    h.wait_exit(proc)
    assert.is_true(peak > 0)
    assert.is_true(peak < 64 * 1024, "a worker reached " .. peak .. " KiB")
  end)

  it("connect over TCP on loopback with --transport tcp", function()
    local dir = h.tmpdir()
    local input = dir .. "/input.txt"
    h.repeat_file(h.shakespeare, input, 10)
    local proc = h.spawn_weir({ "run", "--parallelism", "2", "--transport",
      "tcp", "--checkpoint-dir", dir .. "/ck", "examples/wordcount.lua", input,
      dir .. "/out" })
    local tcp = h.wait_until(function()
      for _, pid in ipairs(h.workers_of(proc.pid)) do
        if has_tcp_connection(socket_inodes(pid)) then return true end
      end
      return false
    end, 20000, "a TCP connection between workers")
    local r = h.wait_exit(proc)
    assert.are.equal(0, r.status, r.stderr)
    assert.is_true(tcp)
    assert.same(h.wordcount_lines(input), (h.committed_lines(dir .. "/out")))
    h.sh("rm -rf " .. h.quote(dir))
  end)
end)
