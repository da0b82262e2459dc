-- SIGTERM and SIGINT stop a running job as `weir cancel` does, but keep
-- its checkpoints: the output up to the last completed checkpoint stays
-- committed, the process exits 0, and --restore latest finishes the job
-- with exactly an uninterrupted run's output; --savepoint-on-stop takes a
-- savepoint first.
local h = require "helpers"

describe("a signal to weir run", function()
  local dir, input, reference, total
  setup(function()
    dir, input = h.running_count_input(2)
    reference, total = h.running_count_reference(input)
  end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  for _, case in ipairs({ { "TERM", "2" }, { "INT", "1" } }) do
    local sig, parallelism = case[1], case[2]
    it("SIG" .. sig .. " stops the job at parallelism " .. parallelism
      .. ", keeping its checkpoints for --restore latest", function()
        local ck, out = dir .. "/ck-" .. sig, dir .. "/out-" .. sig
        local args = { "run", "--parallelism", parallelism,
          "--checkpoint-interval", "50", "--checkpoint-dir", ck,
          "--restore", "latest", "spec/fixtures/paced_count.lua", input, out,
          "60" }
        local sp = dir .. "/sp-" .. sig
        local first = { unpack(args) }
        if sig == "TERM" then
          table.insert(first, 2, "--savepoint-on-stop")
          table.insert(first, 3, sp)
        end
        local proc = h.spawn_weir(first)
        h.wait_until(function()
          return #h.complete_checkpoints(ck .. "/running_count") >= 2
        end, 30000, "two checkpoints")
        h.kill(proc, sig)
        local r = h.wait_exit(proc)
        assert.are.equal(0, r.status, r.stderr)
        assert.matches("SIG" .. sig .. ": stopping job 'running_count'",
          r.stderr)
        assert.matches("was cancelled after", r.stderr)
        if sig == "TERM" then  -- --savepoint-on-stop
          local path = r.stderr:match(
            "savepoint (%S+/savepoint%-running_count%-%d+)")
          assert.is_truthy(path, r.stderr)
          assert.is_truthy(require("weir.core").stat(path .. "/_manifest"))
        end
        local kept = h.complete_checkpoints(ck .. "/running_count")
        assert.is_true(#kept >= 1, "no checkpoint kept")
        r = h.run_weir(args)
        assert.are.equal(0, r.status, r.stderr)
        assert.matches("restoring .*chk%-" .. kept[#kept], r.stderr)
        h.assert_exactly_once(out, reference, total)
      end)
  end
end)
