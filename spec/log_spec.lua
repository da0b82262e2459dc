-- weir run's log lines: each with its UTC time and level, filtered by
-- --log-level (or the pipeline's log_level), and a status line logged
-- every 10 s when stderr is not a terminal.
local h = require "helpers"

local STAMP = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ"

describe("weir run's log", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function run(extra)
    h.write_file(dir .. "/job.lua", [[
local weir = require "weir"
local p = weir.pipeline { name = "logged", parallelism = 2 }
p:sequence(1, 100):map(function(n) return n end):discard()
p:run()
]])
    local args = { "run", "--checkpoint-dir", dir .. "/ck" }
    for _, a in ipairs(extra) do args[#args + 1] = a end
    args[#args + 1] = dir .. "/job.lua"
    return h.run_weir(args)
  end

  it("gives every line its time and level, at the level asked for",
    function()
      local r = run({})
      assert.are.equal(0, r.status, r.log)
      assert.matches("^" .. STAMP .. " WARN  weir: sequence %(", r.log)
      assert.matches("\n" .. STAMP .. " INFO  weir: job 'logged' finished",
        r.log)
      assert.is_nil(r.log:find("DEBUG"))

      r = run({ "--log-level", "warn" })
      assert.are.equal(0, r.status, r.log)
      assert.matches("WARN  weir: sequence", r.log)
      assert.is_nil(r.log:find("INFO"), r.log)

      r = run({ "--log-level", "debug" })
      assert.are.equal(0, r.status, r.log)
      assert.matches(STAMP .. " DEBUG weir: checkpoint %d+ complete: %d+ ms",
        r.log)

      r = run({ "--log-level", "error" })
      assert.are.equal(0, r.status, r.log)
      assert.are.equal("", r.log)

      r = run({ "--log-level", "loud" })
      assert.are.equal(1, r.status)
      assert.matches("'%-%-log%-level' must be one of 'error', 'warn', "
        .. "'info', 'debug'", r.stderr)
    end)

  it("logs the status line every 10 s when stderr is not a terminal",
    function()
      -- Followed files never end: the job runs until cancelled.
      h.sh("mkdir " .. h.quote(dir .. "/logs"))
      local proc = h.spawn_weir({ "run", "--checkpoint-dir", dir .. "/ck",
        "spec/fixtures/follow_copy.lua", dir .. "/logs/*.log",
        dir .. "/out" })
      local ok = pcall(h.wait_until, function()
        local err = h.read_file(proc.dir .. "/err") or ""
        return err:find(STAMP .. " INFO  weir: follow_copy  %d+ records/s "
          .. "from sources  backpressure %d+%%  last checkpoint chk%-%d+")
      end, 25000, "a status log line")
      local r = h.run_weir({ "cancel", "follow_copy", "--checkpoint-dir",
        dir .. "/ck" })
      assert.are.equal(0, r.status, r.log)
      r = h.wait_exit(proc)
      assert.is_true(ok, "no status line logged within 25 s: " .. r.log)
      assert.are.equal(0, r.status, r.log)
    end)
end)
