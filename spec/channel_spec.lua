-- weir.channel under LuaJIT's compiler: Debian's LuaJIT 2.1 snapshot
-- leaves out the write barrier of an upvalue store in code compiled while
-- that upvalue was still open (LuaJIT issue 1085), and the collector then
-- frees a table that is still in use. The writer of a channel must not
-- be built that way: a worker that hit it died of SIGSEGV mid-job.
local h = require "helpers"

describe("a channel's writer", function()
  it("keeps its batches alive when LuaJIT compiles it early, with the "
    .. "collector running", function()
    local out, status = h.sh("cd " .. h.quote(h.root) .. " && "
      .. "LUA_PATH='lua/?.lua;;' LUA_CPATH='build/lib/?.so;;' "
      .. "luajit -Ohotloop=10 spec/fixtures/hot_writers.lua 50 2>&1")
    assert.are.equal(0, status, out)
    assert.are.equal("done\n", out)
  end)
end)

describe("a channel's writer", function()
  it("sends the maximal watermark with the end of input, after what "
    .. "followed it", function()
    local channel = require "weir.channel"
    local log = {}
    local w = channel.writer(function(item)
      if item.watermark then
        log[#log + 1] = "watermark " .. item.watermark
      elseif item.end_of_input then
        log[#log + 1] = "end"
      else
        for i = 1, item.n do log[#log + 1] = item[i] end
      end
      return true
    end, function() return false end)
    w.push("a", 1)
    w.watermark(5)
    w.release()
    w.watermark(math.huge)  -- its timers fired, its finish comes next
    w.push("from finish", 6)
    w.event({ end_of_input = true })
    assert.same({ "a", "watermark 5", "from finish",
      "watermark " .. math.huge, "end" }, log)
  end)
end)
