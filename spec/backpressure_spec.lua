-- Backpressure holds per batch, also inside one record's fan-out: a task
-- whose output has no room waits mid-record, so records keep their
-- memory bounded and checkpoints keep completing while a record that
-- fans out into many drains.
local h = require "helpers"

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
      local sums, total = {}, 0
      for _, line in ipairs(h.committed_lines(dir .. "/out")) do
        local k, sum = line:match("^(%d+)\t(%d+)$")
        sums[tonumber(k)] = tonumber(sum)
        total = total + tonumber(sum)
      end
      assert.are.equal(30 * 20000 * 20001 / 2, total)
      assert.are.equal(64, #sums + 1)
    end)
end)
