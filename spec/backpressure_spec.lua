-- Backpressure holds per batch, also inside one record's fan-out: a task
-- whose output has no room waits mid-record, so records keep their
-- memory bounded and checkpoints keep completing while a record that
-- fans out into many drains.
local h = require "helpers"
local checkpoint = require "weir.checkpoint_storage"

-- The sum per key fan_out.lua wrote: { [key] = sum } and their total.
local function sums_of(dir)
  local sums, total = {}, 0
  for _, line in ipairs(h.committed_lines(dir)) do
    local k, sum = line:match("^(%d+)\t(%d+)$")
    sums[tonumber(k)] = tonumber(sum)
    total = total + tonumber(sum)
  end
  return sums, total
end

-- How many source positions in the complete checkpoints of job_dir were
-- taken in the middle of a record (they carry a skip).
local function mid_record_positions(job_dir)
  local n = 0
  for _, id in ipairs(h.complete_checkpoints(job_dir)) do
    local loaded = checkpoint.load(checkpoint.path(job_dir, id))
    for _, s in pairs(loaded and loaded.states.lines or {}) do
      local first = s.state.ranges[1]
      if first and first.skip then n = n + 1 end
    end
  end
  return n
end

describe("backpressure", function()
  local dir

  setup(function() dir = h.tmpdir() end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  it("lets checkpoints complete while records that fan out into many drain",
    function()
      -- 30 lines of 20,000 records each, all read in one step of the
      -- source; the consumer takes at least 2 µs per record, so the
      -- drain lasts at least 1.2 s whatever the machine.
      local lines = {}
      for i = 1, 30 do lines[i] = "20000" end
      h.write_file(dir .. "/in.txt", table.concat(lines, "\n") .. "\n")
      local r = h.run_weir({ "run", "--parallelism", "2",
        "--checkpoint-interval", "20", "--checkpoint-dir", dir .. "/ck",
        "spec/fixtures/fan_out.lua", dir .. "/in.txt", dir .. "/out",
        "2000" })
      assert.are.equal(0, r.status, r.stderr)
      local checkpoints = tonumber(r.stderr:match("; (%d+) checkpoints"))
      -- Without waiting mid-record the barrier queues behind all 600,000
      -- records: one checkpoint and the final one.
      assert.is_true(checkpoints >= 6, r.stderr)
      local sums, total = sums_of(dir .. "/out")
      assert.are.equal(30 * 20000 * 20001 / 2, total)
      assert.are.equal(64, #sums + 1)
    end)

  -- Records leave the source's replayable operators into a writer, or
  -- (two) into a stateful operator that passes each on to two writers.
  for _, shape in ipairs({ "one", "two" }) do
  it("restores exactly once from checkpoints taken in the middle of a "
    .. "record's fan-out (" .. shape .. ")", function()
    local lines = {}
    for i = 1, 30 do lines[i] = "20000" end
    h.write_file(dir .. "/in2.txt", table.concat(lines, "\n") .. "\n")
    local ck, out = dir .. "/ck2-" .. shape, dir .. "/out2-" .. shape
    local args = { "run", "--parallelism", "2", "--checkpoint-interval",
      "20", "--checkpoint-dir", ck, "--restore", "latest",
      "spec/fixtures/fan_out.lua", dir .. "/in2.txt", out, "2000", shape }
    -- Three kills, each two checkpoints after the last, while the 1.2 s
    -- (at least) of draining go on; then a run to the end.
    local mid = 0
    for _ = 1, 3 do
      local ids = h.complete_checkpoints(ck .. "/fan_out")
      local before = ids[#ids] or 0
      local proc = h.spawn_weir(args)
      h.wait_until(function()
        local now = h.complete_checkpoints(ck .. "/fan_out")
        return (now[#now] or 0) >= before + 2
      end, 30000, "checkpoint " .. (before + 2))
      h.kill(proc, "KILL")
      assert.are.equal(137, h.wait_exit(proc).status)
      mid = mid + mid_record_positions(ck .. "/fan_out")
    end
    local r = h.run_weir(args)
    assert.are.equal(0, r.status, r.stderr)
    assert.is_true(mid > 0, "no checkpoint was taken mid-record")
    local sums, total = sums_of(out)
    assert.are.equal(30 * 20000 * 20001 / 2, total)
    for k = 0, 63 do
      local expected = 0
      for i = 1, 20000 do
        if i % 64 == k then expected = expected + i end
      end
      assert.are.equal(30 * expected, sums[k], "key " .. k)
    end
    if shape == "two" then
      local _, total7 = sums_of(out .. "-two")
      assert.are.equal(30 * 20000 * 20001 / 2, total7)
    end
  end)
  end
end)
