-- Testing a pipeline's logic with busted and weir.testing, as a user of
-- weir would: examples/sessions_logic.lua (the logic of
-- examples/sessions.lua). Needs only weir on the paths:
--   busted --lpath='lua/?.lua;lua/?/init.lua' --cpath='build/lib/?.so' \
--     examples/sessions_spec.lua
local weir = require "weir"
local testing = require "weir.testing"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local sessions = dofile(here .. "sessions_logic.lua")

local MINUTE = 60 * 1000
local T0 = 1431857100000  -- 2015-05-17T10:05:00Z

-- A combined-format log line of ip at T0 + offset minutes.
local function line(ip, minutes)
  return string.format('%s - - [%s +0000] "GET / HTTP/1.1" 200 512 "-" '
    .. '"curl/7.38.0"', ip,
    os.date("!%d/%b/%Y:%H:%M:%S", (T0 + minutes * MINUTE) / 1000))
end

describe("examples/sessions_logic.lua", function()
  it("parses combined-format lines and no other", function()
    assert.same({ ip = "192.0.2.1", ts = T0 }, sessions.parse(line("192.0.2.1", 0)))
    assert.is_nil(sessions.parse("not a log line"))
  end)

  describe("on its window operator (weir.testing.harness)", function()
    local function harness()
      return testing.harness(function(requests)
        return sessions.sessions(requests)
      end)
    end
    local function push(t, ip, minutes)
      local ts = T0 + minutes * MINUTE
      t:push({ ip = ip, ts = ts }, ts)
    end

    it("keeps requests up to 30 minutes apart in one session", function()
      local t = harness()
      push(t, "a", 0)
      push(t, "a", 30)   -- touches the first request's window: merged
      push(t, "a", 61)   -- 31 minutes later: a new session
      push(t, "b", 10)
      t:watermark(T0 + 70 * MINUTE)
      assert.same({ "b\t2015-05-17T10:15:00\t1\t0",
        "a\t2015-05-17T10:05:00\t2\t1800" }, t:output())
      t:watermark(T0 + 100 * MINUTE)
      assert.same({ "a\t2015-05-17T11:06:00\t1\t0" },
        { t:output()[3] })
    end)

    it("lets a late request bridge two sessions", function()
      local t = harness()
      push(t, "a", 0)
      push(t, "a", 50)
      push(t, "a", 25)   -- within 30 minutes of both: one session of three
      t:watermark(T0 + 100 * MINUTE)
      assert.same({ "a\t2015-05-17T10:05:00\t3\t3000" }, t:output())
    end)

    it("keeps open sessions across a snapshot and restore", function()
      local t = harness()
      push(t, "a", 0)
      t:watermark(T0 + 10 * MINUTE)
      assert.same({}, t:output())
      local restored = harness()
      restored:restore(t:snapshot())
      push(restored, "a", 20)
      restored:watermark(T0 + 60 * MINUTE)
      assert.same({ "a\t2015-05-17T10:05:00\t2\t1200" }, restored:output())
    end)
  end)

  it("turns log lines into session lines (weir.testing.run)", function()
    local out = testing.run(function(_, inputs)
      return { sessions = sessions.from_lines(inputs.lines) }
    end, { inputs = { lines = { line("a", 0), "garbage", line("b", 1),
      line("a", 2), line("a", 40) } } })
    table.sort(out.sessions)
    assert.same({ "a\t2015-05-17T10:05:00\t2\t120",
      "a\t2015-05-17T10:45:00\t1\t0",
      "b\t2015-05-17T10:06:00\t1\t0" }, out.sessions)
  end)
end)
