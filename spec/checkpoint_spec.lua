-- Checkpoints on disk: listing, retention, and damaged checkpoints that
-- are detected, named and skipped rather than restored.
local h = require "helpers"
local core = require "weir.core"
local checkpoint = require "weir.checkpoint_storage"

local SCRIPT = "spec/fixtures/running_count.lua"

describe("checkpoints", function()
  local dir, reference, total

  setup(function()
    dir = h.tmpdir()
    reference, total = h.running_count_reference(h.shakespeare)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- Runs the job to completion in case's directory; returns the weir
  -- result and the job's checkpoint directory.
  local function run(case, extra)
    local args = { "run", "--checkpoint-interval", "20", "--checkpoint-dir",
      dir .. "/" .. case .. "/ck" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    for _, a in ipairs({ SCRIPT, h.shakespeare, dir .. "/" .. case .. "/out" })
    do
      args[#args + 1] = a
    end
    return h.run_weir(args), dir .. "/" .. case .. "/ck/running_count"
  end

  -- The newest complete checkpoint that is not the final one.
  local function newest_before_final(job_dir)
    local ids = h.complete_checkpoints(job_dir)
    assert.is_true(#ids >= 2, "the job took fewer than two checkpoints")
    return ids[#ids - 1], ids[#ids]
  end

  it("keeps the newest `retain` complete checkpoints", function()
    local r, job_dir = run("retain", { "--retain", "2" })
    assert.are.equal(0, r.status, r.stderr)
    local ids = h.complete_checkpoints(job_dir)
    assert.are.equal(2, #ids)
    assert.is_true(ids[2] > 2, "the job took fewer than three checkpoints")
    assert.same({}, (function()
      local other = {}
      for _, c in ipairs(checkpoint.list(job_dir)) do
        if not c.complete then other[#other + 1] = c.path end
      end
      return other
    end)())
  end)

  it("lists the complete checkpoints newest first", function()
    local r, job_dir = run("list", { "--retain", "100" })
    assert.are.equal(0, r.status, r.stderr)
    local ids = h.complete_checkpoints(job_dir)
    r = h.run_weir({ "checkpoints", job_dir })
    assert.are.equal(0, r.status, r.stderr)
    local header = r.stdout:match("\n([^\n]*)\n")
    assert.same({ "id", "time", "size_bytes", "full_bytes", "sync_ms",
      "async_ms", "alignment_ms", "duration_ms" }, (function()
        local names = {}
        for name in header:gmatch("%S+") do names[#names + 1] = name end
        return names
      end)())
    local listed = {}
    local number = "%s+([%d.]+)"
    for id, time, size, full, sync, async, align, ms in r.stdout:gmatch(
        "chk%-(%d+)%s+(%d+%-%d+%-%d+T[%d:]+Z)" .. number:rep(6)) do
      listed[#listed + 1] = tonumber(id)
      assert.is_true(tonumber(size) > 0 and tonumber(full) >= tonumber(size),
        time)
      assert.is_true(tonumber(sync) > 0 and tonumber(async) >= 0
        and tonumber(align) >= 0 and tonumber(ms) > 0, time)
    end
    local expected = {}
    for i = #ids, 1, -1 do expected[#expected + 1] = ids[i] end
    assert.same(expected, listed)
    assert.matches("final", r.stdout:match("[^\n]*chk%-" .. ids[#ids]
      .. "[^\n]*"))
    -- The same records as JSON, one per line.
    local js = h.run_weir({ "checkpoints", "--json", job_dir })
    assert.are.equal(0, js.status, js.stderr)
    local lines = {}
    for line in js.stdout:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(#ids, #lines)
    assert.matches('"id":"chk%-' .. ids[#ids] .. '"', lines[1])
    assert.matches('"marker":"final"', lines[1])
    for _, field in ipairs({ "sync_ms", "async_ms", "alignment_ms",
        "full_bytes", "size_bytes", "duration_ms", "time" }) do
      assert.matches('"' .. field .. '":', lines[2])
    end
  end)

  it("restores the next older checkpoint when a state file is truncated",
    function()
      local r, job_dir = run("truncated", { "--retain", "100" })
      assert.are.equal(0, r.status, r.stderr)
      local older, newest = newest_before_final(job_dir)
      local snap = job_dir .. "/chk-" .. newest .. "/counts-0.snap"
      local bytes = h.read_file(snap)
      h.write_file(snap, bytes:sub(1, #bytes - 7))
      r = run("truncated", { "--restore", "latest" })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("checkpoint [^\n]*/chk%-" .. newest .. " is damaged %("
        .. "[^\n]*counts%-0%.snap: snapshot is truncated%); trying an older "
        .. "one", r.stderr)
      assert.matches("restored from [^\n]*/chk%-" .. older, r.stderr)
      h.assert_exactly_once(dir .. "/truncated/out", reference, total)
    end)

  it("restores the next older checkpoint when a manifest has a flipped bit",
    function()
      local r, job_dir = run("flipped", { "--retain", "100" })
      assert.are.equal(0, r.status, r.stderr)
      local older, newest = newest_before_final(job_dir)
      local path = job_dir .. "/chk-" .. newest .. "/_manifest"
      local bytes = h.read_file(path)
      local i = #bytes - 10
      h.write_file(path, bytes:sub(1, i - 1)
        .. string.char(bit.bxor(bytes:byte(i), 4)) .. bytes:sub(i + 1))
      r = run("flipped", { "--restore", "latest" })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("chk%-" .. newest .. "/_manifest: snapshot is damaged",
        r.stderr)
      assert.matches("restored from [^\n]*/chk%-" .. older, r.stderr)
      h.assert_exactly_once(dir .. "/flipped/out", reference, total)
    end)

  it("refuses to restore an explicitly named damaged checkpoint", function()
    local r, job_dir = run("explicit", { "--retain", "100" })
    assert.are.equal(0, r.status, r.stderr)
    local older = newest_before_final(job_dir)
    local chk = job_dir .. "/chk-" .. older
    local snap = chk .. "/lines-0.snap"
    local bytes = h.read_file(snap)
    h.write_file(snap, bytes:sub(1, 20) .. "X" .. bytes:sub(22))
    r = run("explicit", { "--restore", chk })
    assert.are_not.equal(0, r.status)
    assert.matches("^weir: cannot restore from [^\n]*chk%-" .. older
      .. ": [^\n]*lines%-0%.snap: snapshot is damaged", r.stderr)
  end)

  it("rejects a file that is not a weir snapshot", function()
    local chk = dir .. "/bogus/ck/running_count/chk-1"
    h.sh("mkdir -p " .. h.quote(chk))
    h.write_file(chk .. "/_manifest", "just some text, not a snapshot\n")
    local r = run("bogus", { "--restore", chk })
    assert.are_not.equal(0, r.status)
    assert.matches("_manifest: not a weir snapshot", r.stderr)
  end)

  it("leaves no temporary files behind", function()
    local r, job_dir = run("tidy", { "--retain", "100" })
    assert.are.equal(0, r.status, r.stderr)
    for _, id in ipairs(h.complete_checkpoints(job_dir)) do
      for _, name in ipairs(core.scandir(job_dir .. "/chk-" .. id)) do
        assert.is_nil(name:match("%.tmp$"), name)
      end
    end
  end)
end)

describe("a crash between the steps of publishing or removing a checkpoint",
  function()
    local dir, input, reference, total

    setup(function()
      dir, input, reference, total = h.running_count_input(2)
    end)

    teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

    -- Each step, crashed the n-th time it is reached (kill -9 of the
    -- coordinator; its workers die with it). Steps that run where the
    -- tasks run (state files, the sink) are crashed at parallelism 1,
    -- where the coordinator runs them: a worker's crash alone is a
    -- failover, which failover_spec.lua covers.
    for _, c in ipairs({
      { "checkpoint.after_mkdir", 3, 2 },
      { "checkpoint.state_file", 7, 1 },
      { "checkpoint.before_manifest", 3, 2 },
      { "checkpoint.manifest", 3, 2 },
      { "checkpoint.manifest_dir_fsync", 3, 2 },
      { "checkpoint.after_manifest", 3, 2 },
      { "final.before_manifest", 1, 2 },
      { "final.after_manifest", 1, 2, true },
      { "sink.pre_commit", 3, 1 },
      { "sink.mid_commit", 3, 1 },
      { "sink.after_commit", 3, 1 },
      { "retention.before", 3, 2 },
      { "removal.after_manifest", 3, 2 },
      { "removal.mid_files", 3, 2 },
      { "removal.before_rmdir", 3, 2 } }) do
      local step, n, p, final = c[1], c[2], c[3], c[4] or false
      it("leaves an intact checkpoint to restore: " .. step, function()
        local ck = dir .. "/" .. step .. "/ck"
        local out = dir .. "/" .. step .. "/out"
        local args = { "run", "--parallelism", tostring(p), "--retain", "1",
          "--checkpoint-interval", "20", "--checkpoint-dir", ck,
          "spec/fixtures/paced_count.lua", input, out, "20" }
        local r = h.run_weir(args, "WEIR_FAILPOINT=" .. step .. ":" .. n)
        assert.are.equal(137, r.status, r.stderr)
        assert.matches("failpoint " .. step:gsub("%.", "%%.")
          .. " reached", r.stderr)
        local job_dir = ck .. "/running_count"
        local warnings = {}
        local latest = checkpoint.find_latest(job_dir, function(msg)
          warnings[#warnings + 1] = msg
        end, checkpoint.open_verified)
        assert.is_table(latest)
        assert.are.same({}, warnings)
        assert.are.equal(final, latest.manifest.final)
        table.remove(args, #args)
        args[#args + 1] = "0"
        table.insert(args, 2, "--restore")
        table.insert(args, 3, "latest")
        r = h.run_weir(args)
        assert.are.equal(0, r.status, r.stderr)
        assert.matches("restored from " .. latest.path:gsub("%p", "%%%0"),
          r.stderr)
        h.assert_exactly_once(out, reference, total)
      end)
    end
  end)
