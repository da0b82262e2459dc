-- Private sockets and run directories, checkpoints declined on a full
-- disk, retention that removes only what weir wrote, run directories
-- reaped after kill -9, and job control under a deep checkpoint
-- directory.
local h = require "helpers"
local core = require "weir.core"
local checkpoint = require "weir.checkpoint_storage"
local control = require "weir.control"

local SCRIPT = "spec/fixtures/paced_count.lua"
local JOB = "running_count"

local function octal(s) return tonumber(s, 8) end

-- The chk-N directories of job_dir that have no manifest.
local function incomplete(job_dir)
  local out = {}
  for _, c in ipairs(checkpoint.list(job_dir)) do
    if not c.complete then out[#out + 1] = c.path end
  end
  return out
end

describe("weir's sockets and run directories", function()
  local dir, input

  setup(function()
    dir, input = h.running_count_input(2)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- Starts the paced job at parallelism 2 under checkpoint dir ck.
  local function start(ck, prefix)
    return h.spawn_weir({ "run", "--parallelism", "2", "--checkpoint-dir",
      ck, "--checkpoint-interval", "200", SCRIPT, input, dir .. "/out-"
      .. #ck, "50" }, prefix)
  end

  local function wait_socket(job_dir)
    return h.wait_until(function()
      local path = control.socket_path(job_dir)
      return path and core.stat(path) and path
    end, 20000, "the job's control socket")
  end

  it("are 0700 and 0600 under umask 000", function()
    local ck = dir .. "/umask/ck"
    local proc = start(ck, "umask 000; ")
    local sock = wait_socket(ck .. "/" .. JOB)
    local run_dir = sock:match("^(.*)/[^/]+$")
    assert.matches("^/tmp/weir%-%d+%-%d+$", run_dir)
    assert.are.equal(octal("700"), core.stat(run_dir).mode)
    -- The workers' sockets appear once they set up, each in its own time;
    -- a socket is bound, then made 0600 before it listens: once a
    -- checkpoint completed, every worker listens.
    local names = { "control.sock", "coordinator.sock", "worker-0.sock",
      "worker-1.sock" }
    h.wait_until(function()
      return #h.complete_checkpoints(ck .. "/" .. JOB) > 0
    end, 20000, "the job's first checkpoint")
    for _, name in ipairs(names) do
      assert.are.equal(octal("600"), core.stat(run_dir .. "/" .. name).mode,
        name)
    end
    local r = h.run_weir({ "cancel", JOB, "--checkpoint-dir", ck })
    assert.are.equal(0, r.status, r.stderr)
    r = h.wait_exit(proc)
    assert.are.equal(0, r.status, r.stderr)
    assert.is_nil(core.stat(run_dir))
  end)

  -- A client in a process of its own, as user `as` (nil: this user):
  -- connects to sock and reports "closed" if the server ends the
  -- connection, "open" if it is still open after 3 s.
  local function client(sock, as)
    local code = table.concat({
      "package.cpath = 'build/lib/?.so'",
      "local core = require 'weir.core'",
      "local t = core.timer(function() print('open') os.exit(0) end)",
      "t:start(3000, 0)",
      "assert(core.connect(" .. string.format("%q", sock)
        .. ", function(err, conn)",
      "  if err then print('refused: ' .. err) os.exit(0) end",
      "  conn:on_frame(function(b) if not b then print('closed') "
        .. "os.exit(0) end end)",
      "end))",
      "core.run()" }, "\n")
    local prefix = as and ("setpriv --reuid=" .. as .. " --regid=nogroup "
      .. "--clear-groups ") or ""
    return { out = dir .. "/client-" .. (as or "self"),
      cmd = prefix .. "luajit -e " .. h.quote(code) }
  end

  local setpriv_ok = select(2, h.sh("setpriv --reuid=nobody --regid=nogroup "
    .. "--clear-groups true >/dev/null 2>&1")) == 0
    and select(2, h.sh("setpriv --reuid=nobody --regid=nogroup "
      .. "--clear-groups test -r build/lib/weir/core.so")) == 0
  local peer_it = setpriv_ok and it or function(name)
    pending(name .. ": needs root, setpriv and a build readable by nobody")
  end

  peer_it("refuse a connection from another user", function()
    local sdir = dir .. "/peer"
    h.sh("mkdir -p " .. h.quote(sdir) .. " && chmod 755 " .. h.quote(sdir)
      .. " " .. h.quote(dir))
    local sock = sdir .. "/s.sock"
    local accepted = 0
    local server = assert(core.listen(sock, function(conn)
      accepted = accepted + 1
      conn:close()
    end))
    -- Open the socket itself, so only the check of the peer's user is
    -- left between the other user and the job.
    assert(core.chmod(sock, octal("666")))
    for _, as in ipairs({ "nobody", false }) do
      local c = client(sock, as or nil)
      os.execute(c.cmd .. " >" .. h.quote(c.out) .. " 2>&1 &")
      -- The loop runs while waiting, so the server accepts meanwhile (a
      -- timer wakes it; h.wait_until's sleep would not return while the
      -- server listens).
      local tick = core.timer(function() end)
      tick:start(5, 5)
      local deadline = core.monotonic_ms() + 10000
      repeat
        core.run_once()
        local s = h.read_file(c.out)
      until (s and s:find("\n")) or core.monotonic_ms() > deadline
      tick:close()
      assert.are.equal("closed\n", h.read_file(c.out))
      assert.are.equal(as and 0 or 1, accepted)
    end
    server:close()
  end)

  it("of processes killed with kill -9 are reaped by the next run",
    function()
      local _, status = h.sh("true")
      assert.are.equal(0, status)
      -- A pid that was alive a moment ago and is gone now.
      local dead = tonumber((h.sh("sh -c 'echo $$'")))
      assert.is_false(core.pid_alive(dead))
      local stale = string.format("/tmp/weir-%d-1", dead)
      local live = string.format("/tmp/weir-%d-1", core.getpid())
      for _, d in ipairs({ stale, live }) do
        h.sh("mkdir -p " .. h.quote(d .. "/sub") .. " && touch "
          .. h.quote(d .. "/worker-0.sock") .. " "
          .. h.quote(d .. "/sub/state"))
      end
      local r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/reap/ck",
        SCRIPT, input, dir .. "/reap/out", "0" })
      assert.are.equal(0, r.status, r.stderr)
      assert.is_nil(core.stat(stale))
      assert.is_table(core.stat(live .. "/sub/state"))
      h.sh("rm -rf " .. h.quote(live))
    end)

  it("keep job control working under a checkpoint directory deeper than "
    .. "a socket path can be, and refuse a second run", function()
      local ck = dir .. "/deep/" .. string.rep("d", 60) .. "/"
        .. string.rep("e", 60) .. "/ck"
      assert.is_true(#(ck .. "/" .. JOB .. "/coordinator.sock") > 120)
      local proc = start(ck)
      wait_socket(ck .. "/" .. JOB)
      local r = h.wait_until(function()
        local jr = h.run_weir({ "jobs", "--checkpoint-dir", ck })
        return jr.stdout:match(JOB .. " +%d+ running") and jr
      end, 20000, "weir jobs to list the job")
      assert.are.equal(0, r.status, r.stderr)
      r = h.run_weir({ "run", "--parallelism", "2", "--checkpoint-dir", ck,
        SCRIPT, input, dir .. "/deep-second", "0" })
      assert.are.equal(1, r.status)
      assert.matches("another process runs this job", r.stderr)
      r = h.run_weir({ "cancel", JOB, "--checkpoint-dir", ck })
      assert.are.equal(0, r.status, r.stderr)
      r = h.wait_exit(proc)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("job 'running_count' was cancelled", r.stderr)
    end)
end)

describe("a checkpoint that cannot be written (a full disk)", function()
  local dir, input, reference, total

  setup(function()
    dir, input, reference, total = h.running_count_input(2)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- Runs the paced job with WEIR_FAILPOINT=failpoint; returns the result,
  -- the job directory and the output directory.
  local function run(case, parallelism, failpoint, extra)
    local ck, out = dir .. "/" .. case .. "/ck", dir .. "/" .. case .. "/out"
    local args = { "run", "--parallelism", tostring(parallelism),
      "--checkpoint-dir", ck, "--checkpoint-interval", "20" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    for _, a in ipairs({ SCRIPT, input, out, "10" }) do
      args[#args + 1] = a
    end
    return h.run_weir(args, "WEIR_FAILPOINT=" .. failpoint), ck .. "/" .. JOB,
      out
  end

  for _, c in ipairs({ { "checkpoint.mkdir", 2 },
    { "checkpoint.state_file", 2 }, { "checkpoint.state_file", 1 },
    { "checkpoint.manifest", 2 } }) do
    local step, p = c[1], c[2]
    it("is declined and the job goes on within "
      .. "--tolerable-failed-checkpoints: " .. step .. " at parallelism "
      .. p, function()
        local r, job_dir, out = run(step:gsub("%.", "-") .. p, p,
          step .. ":2=ENOSPC", { "--tolerable-failed-checkpoints", "2" })
        assert.are.equal(0, r.status, r.stderr)
        -- Each worker counts the failpoint's steps on its own: two may
        -- fail, in one checkpoint or in two in a row.
        assert.matches("weir: checkpoint %d+ was declined: [^\n]*no space "
          .. "left on device %(failpoint " .. step:gsub("%.", "%%.")
          .. "%); the job goes on %([12] failed in a row, "
          .. "tolerable_failed_checkpoints 2%)\n", r.stderr)
        assert.is_nil(r.stderr:find("restarting", 1, true))
        h.assert_exactly_once(out, reference, total)
        assert.are.same({}, incomplete(job_dir))
      end)
  end

  it("fails over by default and leaves no chk-N behind: a failed mkdir",
    function()
      local r, job_dir, out = run("default-mkdir", 2,
        "checkpoint.mkdir:2=ENOSPC")
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("checkpoint %d+ was declined: cannot create [^\n]*; 1 "
        .. "checkpoints failed in a row, more than "
        .. "tolerable_failed_checkpoints %(0%)", r.stderr)
      assert.matches("restarting", r.stderr)
      h.assert_exactly_once(out, reference, total)
      assert.are.same({}, incomplete(job_dir))
    end)

  it("fails over by default and leaves no chk-N behind: a failed state "
    .. "file", function()
      local r, job_dir, out = run("default-state", 1,
        "checkpoint.state_file:2=ENOSPC")
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("checkpoint %d+ was declined: cannot write [^\n]*%.snap:"
        .. " no space left on device", r.stderr)
      assert.matches("restarting", r.stderr)
      h.assert_exactly_once(out, reference, total)
      assert.are.same({}, incomplete(job_dir))
    end)

  it("counts as complete when only the fsync after its manifest's rename "
    .. "failed, with a warning", function()
      local r, job_dir, out = run("dir-fsync", 2,
        "checkpoint.manifest_dir_fsync:2=ENOSPC")
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("weir: checkpoint %d+ is complete, but its durability "
        .. "is not assured: no space left on device", r.stderr)
      assert.is_nil(r.stderr:find("declined", 1, true))
      assert.is_nil(r.stderr:find("restarting", 1, true))
      h.assert_exactly_once(out, reference, total)
      assert.are.same({}, incomplete(job_dir))
    end)

  -- A real full disk where this runs as root and may mount a tmpfs.
  local can_mount = select(2, h.sh("[ \"$(id -u)\" = 0 ] && d=$(mktemp -d) "
    .. "&& mount -t tmpfs -o size=1m tmpfs \"$d\" 2>/dev/null && umount "
    .. "\"$d\" && rmdir \"$d\"")) == 0
  local mount_it = can_mount and it or function(name)
    pending(name .. ": needs root and mount -t tmpfs")
  end
  mount_it("is declined on a real full disk and leaves nothing behind",
    function()
      local mount_dir = dir .. "/full"
      h.sh("mkdir -p " .. h.quote(mount_dir) .. " && mount -t tmpfs -o "
        .. "size=64k tmpfs " .. h.quote(mount_dir))
      -- Fill the disk but for a little room.
      h.sh("dd if=/dev/zero of=" .. h.quote(mount_dir .. "/fill")
        .. " bs=1k count=1000 2>/dev/null")
      local ck, out = mount_dir .. "/ck", dir .. "/full-out"
      local r = h.run_weir({ "run", "--parallelism", "2", "--checkpoint-dir",
        ck, "--checkpoint-interval", "20", "--tolerable-failed-checkpoints",
        "2", SCRIPT, input, out, "0" })
      local left = incomplete(ck .. "/" .. JOB)
      h.sh("umount " .. h.quote(mount_dir))
      -- No checkpoint, not even the final one, can be written: the job
      -- fails once its restarts are used up, having committed nothing.
      assert.are.equal(1, r.status, r.stderr)
      assert.matches("the job goes on %(1 failed in a row", r.stderr)
      assert.matches("no space left on device", r.stderr)
      assert.are.same({}, left)
      assert.are.same({}, (h.committed_lines(out)))
    end)
end)

describe("retention", function()
  local dir, input

  setup(function()
    dir, input = h.running_count_input(1)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  it("refuses a job named only with dots", function()
    local weir = require "weir"
    for _, name in ipairs({ ".", ".." }) do
      assert.has_error(function() weir.pipeline { name = name } end,
        "weir.pipeline: name must not be only dots ('" .. name .. "' names "
        .. "no directory of its own under checkpoint_dir)")
    end
  end)

  it("removes only the files a checkpoint's manifest lists, and of a "
    .. "checkpoint without one only weir's state files", function()
      local ck = dir .. "/foreign/ck"
      local job_dir = ck .. "/" .. JOB
      local args = { "run", "--checkpoint-dir", ck, "--retain", "1",
        "--checkpoint-interval", "20", SCRIPT, input, dir .. "/foreign/out",
        "0" }
      local r = h.run_weir(args)
      assert.are.equal(0, r.status, r.stderr)
      local kept = checkpoint.list(job_dir)[1].path
      -- A second run from the beginning (its output elsewhere): its
      -- retention removes the first run's checkpoint.
      args[#args - 1] = dir .. "/foreign/out2"
      -- Files and a directory weir did not write: in the complete
      -- checkpoint, and in a chk-N weir did not make.
      local foreign = job_dir .. "/chk-0"
      h.sh("mkdir -p " .. h.quote(foreign .. "/notes") .. " && touch "
        .. h.quote(foreign .. "/a.snap") .. " " .. h.quote(foreign
        .. "/notes.txt") .. " " .. h.quote(kept .. "/notes.txt"))
      r = h.run_weir(args)
      assert.are.equal(0, r.status, r.stderr)
      assert.are.same({ "notes.txt" }, core.scandir(kept))
      local names = core.scandir(foreign)
      table.sort(names)
      assert.are.same({ "notes", "notes.txt" }, names)
      assert.matches("checkpoint directory " .. kept:gsub("%p", "%%%0")
        .. " holds files weir did not write %(notes%.txt%); they and the "
        .. "directory are left in place", r.stderr)
    end)
end)
