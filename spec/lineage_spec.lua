-- Each run of a job has a lineage: the checkpoints it took and the one it
-- was started from. A restart after a failure restores only from it, never
-- from a checkpoint an earlier run of the same job left behind.
local h = require "helpers"

local SCRIPT = "spec/fixtures/daily_count.lua"

local function lines_of(s)
  local out = {}
  for line in (s or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

describe("a run's lineage", function()
  local dir

  setup(function()
    dir = h.tmpdir()
    h.write_file(dir .. "/monday.txt", "monday\nmonday\nmonday\n")
    h.write_file(dir .. "/tuesday.txt", "tuesday\ntuesday\n")
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  for _, parallelism in ipairs({ "1", "2" }) do
    it("a fresh run restarts from its own beginning, not from an earlier "
      .. "run's final checkpoint (parallelism " .. parallelism .. ")",
      function()
        local ck = dir .. "/ck" .. parallelism
        local r = h.run_weir({ "run", "--parallelism", parallelism,
          "--checkpoint-dir", ck, SCRIPT, dir .. "/monday.txt" })
        assert.are.equal(0, r.status, r.stderr)
        assert.are.equal("monday 3\n", r.stdout)
        -- Day 2: new input, one transient failure.
        r = h.run_weir({ "run", "--parallelism", parallelism,
          "--checkpoint-dir", ck, SCRIPT, dir .. "/tuesday.txt",
          dir .. "/marker" .. parallelism })
        assert.are.equal(0, r.status, r.stderr)
        assert.are.equal("tuesday 2\n", r.stdout)
        local err = lines_of(r.stderr)
        assert.matches("transient failure; restarting from the newest "
          .. "complete checkpoint in 100 ms %(restart 1%)$", err[1])
        assert.are.equal("weir: no checkpoint of this run completed yet; "
          .. "starting from the beginning", err[2])
        assert.matches("1 restarts$", err[#err])
      end)
  end

  it("--restore latest still picks the newest checkpoint of any run, and "
    .. "says which at its start", function()
    local ck = dir .. "/ck-latest"
    local r = h.run_weir({ "run", "--parallelism", "1", "--checkpoint-dir",
      ck, SCRIPT, dir .. "/monday.txt" })
    assert.are.equal(0, r.status, r.stderr)
    r = h.run_weir({ "run", "--parallelism", "1", "--checkpoint-dir", ck,
      "--restore", "latest", SCRIPT, dir .. "/monday.txt" })
    assert.are.equal(0, r.status, r.stderr)
    local err = lines_of(r.stderr)
    assert.matches("^weir: restoring " .. ck:gsub("%p", "%%%0")
      .. "/daily_count/chk%-1 %(checkpoint 1, taken %d%d%d%d%-%d%d%-%d%dT"
      .. "%d%d:%d%d:%d%dZ%)$", err[1])
  end)

  it("gives up as the restart strategy says at parallelism 1, and says "
    .. "when no checkpoint is left to resume from", function()
    local r = h.run_weir({ "run", "--parallelism", "1", "--checkpoint-dir",
      dir .. "/ck-none", SCRIPT, dir .. "/monday.txt", "always" })
    assert.are.equal(1, r.status)
    local err = lines_of(r.stderr)
    local restarts = 0
    for _, line in ipairs(err) do
      if line:match("permanent failure; restarting") then
        restarts = restarts + 1
      end
    end
    assert.are.equal(3, restarts)
    assert.matches("permanent failure %(no restart left after 3 restarts; "
      .. "no checkpoint was completed, so %-%-restore latest would start "
      .. "from the beginning%)$", err[#err])
  end)

  it("refuses --restore of a path that does not exist", function()
    local r = h.run_weir({ "run", "--parallelism", "1", "--checkpoint-dir",
      dir .. "/ck-missing", "--restore", dir .. "/no-such-checkpoint",
      SCRIPT, dir .. "/monday.txt" })
    assert.are.equal(1, r.status)
    assert.are.equal("weir: cannot restore from " .. dir
      .. "/no-such-checkpoint: no such checkpoint or savepoint directory "
      .. "(--restore latest picks the newest checkpoint under "
      .. "--checkpoint-dir)\n", r.stderr)
  end)
end)
