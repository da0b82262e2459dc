-- read_lines(glob, { follow = true }): files read as they grow, new files
-- picked up, a rotation (rename, then a new file) and a truncation
-- handled without loss or duplicates, and exactly once across kill -9.
local h = require "helpers"

-- Appends text to path (no newline added).
local function append(path, text)
  local f = assert(io.open(path, "ab"))
  f:write(text)
  f:close()
end

-- Waits until the committed lines of out are exactly want (sorted).
local function wait_for(out, want, what)
  table.sort(want)
  local got
  local ok = pcall(h.wait_until, function()
    got = h.committed_lines(out)
    return #got >= #want
  end, 20000, what)
  assert.is_true(ok, what .. ": " .. #(got or {}) .. " of " .. #want
    .. " lines committed")
  assert.same(want, got)
end

describe("read_lines with follow", function()
  local dir, logs, out, ck
  before_each(function()
    dir = h.tmpdir()
    logs, out, ck = dir .. "/logs", dir .. "/out", dir .. "/ck"
    h.sh("mkdir " .. h.quote(logs))
  end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function start(parallelism, restore)
    local args = { "run", "--parallelism", tostring(parallelism),
      "--checkpoint-interval", "50", "--checkpoint-dir", ck,
      "spec/fixtures/follow_copy.lua", logs .. "/*.log", out }
    if restore then
      table.insert(args, 2, "--restore")
      table.insert(args, 3, "latest")
    end
    return h.spawn_weir(args)
  end

  local function cancel(proc)
    local r = h.run_weir({ "cancel", "follow_copy", "--checkpoint-dir", ck,
      "--savepoint", dir .. "/sp" })
    assert.are.equal(0, r.status, r.stderr)
    r = h.wait_exit(proc)
    assert.are.equal(0, r.status, r.stderr)
    return r
  end

  it("reads appends, new files, a rotated file and a truncated one once each",
    function()
      append(logs .. "/a.log", "a1\na2\n")
      local proc = start(2)
      wait_for(out, { "a1", "a2" }, "the first lines")
      append(logs .. "/a.log", "a3\npart")   -- a line still being written
      append(logs .. "/b.log", "b1\n")
      wait_for(out, { "a1", "a2", "a3", "b1" }, "the appended lines")
      append(logs .. "/a.log", "ial\na4\n")
      -- Rotation: a.log renamed away (no longer matched), a new a.log.
      os.rename(logs .. "/a.log", logs .. "/a.log.1")
      append(logs .. "/a.log", "new1\n")
      wait_for(out, { "a1", "a2", "a3", "partial", "a4", "b1", "new1" },
        "the rotated file's last lines and the new file")
      -- Truncation: b.log starts over, shorter than what was read.
      h.write_file(logs .. "/b.log", "t\n")
      wait_for(out, { "a1", "a2", "a3", "partial", "a4", "b1", "new1", "t" },
        "the truncated file again from its start")
      local r = cancel(proc)
      assert.matches("b%.log was truncated", r.stderr)
    end)

  it("gives every line once across kill -9 and a restore at another "
    .. "parallelism", function()
      local want, n = {}, 0
      local function write(k)
        for _ = 1, k do
          n = n + 1
          local file = logs .. "/f" .. n % 3 .. ".log"
          append(file, "line " .. n .. "\n")
          want[#want + 1] = "line " .. n
        end
      end
      write(300)
      local proc = start(2)
      h.wait_until(function()
        return #h.complete_checkpoints(ck .. "/follow_copy") >= 2
      end, 20000, "two checkpoints")
      write(300)
      h.kill(proc, "KILL")
      assert.are.equal(137, h.wait_exit(proc).status)
      write(300)
      proc = start(3, true)
      write(300)
      wait_for(out, want, "every line after the restore")
      local r = cancel(proc)
      assert.matches("restoring", r.stderr)
    end)
end)
