-- on_error = "skip": a record an operator's code fails on is dropped,
-- counted and sent with its error to :failed() (dead letters), exactly
-- once after kill -9; a failure after the operator still fails the job.
local weir = require "weir"
local h = require "helpers"

describe("on_error", function()
  it("accepts only \"fail\" or \"skip\", on operators that run user code",
    function()
      local p = weir.pipeline { name = "opts" }
      local s = p:sequence(1, 3)
      assert.has_error(function() s:map(tostring):on_error("ignore") end,
        'on_error: expected "fail" or "skip", got ignore')
      assert.has_error(function() s:on_error("skip") end,
        "on_error: sequence runs no code of yours (on_error applies to map, "
        .. "filter, flat_map, with_timestamps, reduce and process)")
      assert.has_error(function() s:map(tostring):failed() end,
        'failed: only an operator with :on_error("skip") has failed records')
    end)

  it("skips what the operator's own code fails on, not what fails after it",
    function()
      local p = weir.pipeline { name = "skips", checkpoint_interval = 0 }
      local halves = p:sequence(1, 10)
        :map(function(x)
          if x % 3 == 0 then error("a multiple of 3") end
          return x / 2
        end):on_error("skip")
      local out = halves:collect()
      local failed = halves:failed():collect()
      local stats = p:run()
      table.sort(out)
      assert.same({ 0.5, 1, 2, 2.5, 3.5, 4, 5 }, out)
      assert.are.equal(3, stats.failed_records)
      table.sort(failed, function(a, b) return a.record < b.record end)
      assert.are.equal(3, #failed)
      assert.are.equal(3, failed[1].record)
      assert.matches("a multiple of 3", failed[1].error)
      assert.are.equal(halves.node.uid, failed[1].operator)

      local q = weir.pipeline { name = "after", checkpoint_interval = 0,
        restart = weir.none() }
      q:sequence(1, 3):map(function(x) return x end):on_error("skip")
        :map(function(x) if x == 2 then error("later") end return x end)
        :collect()
      assert.has_error(function() q:run() end)
    end)

  it("sends each failed record once to :failed() after kill -9, at "
    .. "parallelism 2", function()
      local dir = h.tmpdir()
      local input = dir .. "/in.txt"
      local f = assert(io.open(input, "w"))
      local sums, bad = {}, {}
      local words = { "alpha", "beta", "gamma", "delta" }
      for i = 1, 4000 do
        if i % 97 == 0 then
          f:write("broken line ", i, "\n")
          bad[#bad + 1] = "parse\tbroken line " .. i
            .. "\t not a word and a number"
        else
          local w = words[i % 4 + 1]
          f:write(w, " ", i, "\n")
          sums[w] = (sums[w] or 0) + i
        end
      end
      f:close()
      local ck = dir .. "/ck"
      local args = { "run", "--parallelism", "2", "--checkpoint-interval",
        "30", "--checkpoint-dir", ck, "--restore", "latest",
        "spec/fixtures/skip_bad_lines.lua", input, dir .. "/out", "1000" }
      local r = h.kill_after_checkpoints(args, ck .. "/skip_bad_lines",
        { 2, 2 })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("restored from", r.stderr)
      table.sort(bad)
      assert.same(bad, h.committed_lines(dir .. "/out/failed"))
      -- The last sum of each word is its total.
      local last = {}
      for _, line in ipairs(h.committed_lines(dir .. "/out/sums")) do
        local w, n = line:match("^(%a+) (%d+)$")
        last[w] = math.max(last[w] or 0, tonumber(n))
      end
      assert.same(sums, last)
      h.sh("rm -rf " .. h.quote(dir))
    end)
end)
