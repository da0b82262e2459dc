-- Snapshots an earlier weir wrote restore in this one: the checkpoint in
-- spec/fixtures/checkpoint-2026-12 (see its README entry) is inspected and
-- restored at its parallelism and at another, and the job ends with the
-- state an uninterrupted run has.
local h = require "helpers"
local weir = require "weir"

local FIXTURE = h.root .. "/spec/fixtures/checkpoint-2026-12"
local SCRIPT = "spec/fixtures/old_sums.lua"
local N = 100000

-- The sum of 1..N per key x % 10.
local function expected()
  local sums = {}
  for x = 1, N do sums[x % 10] = (sums[x % 10] or 0) + x end
  return sums
end

describe("a checkpoint of an earlier weir", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  it("is read as it was written", function()
    local snap = assert(weir.snapshot.open(FIXTURE))
    local ranges
    snap:each_subtask("numbers", function(_, st) ranges = st.ranges end)
    assert.same({ { 53249, N } }, ranges)
    local keys = 0
    snap:each_key("sums", function(k, sum)
      assert.is_number(sum)
      keys = keys + 1
    end)
    assert.are.equal(10, keys)
  end)

  for _, parallelism in ipairs({ "1", "2" }) do
    it("restores at parallelism " .. parallelism .. " and ends with an "
      .. "uninterrupted run's state", function()
      local ck = dir .. "/ck"
      local r = h.run_weir({ "run", "--parallelism", parallelism,
        "--checkpoint-dir", ck, "--restore", FIXTURE, SCRIPT, tostring(N) })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("restored from .*checkpoint%-2026%-12", r.stderr)
      local last = r.stderr:match("last (%S+/chk%-%d+)")
      local snap = assert(weir.snapshot.open(last))
      local got = {}
      snap:each_key("sums", function(k, sum) got[k] = sum end)
      assert.same(expected(), got)
    end)
  end
end)
