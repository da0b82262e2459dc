-- weir.kinds is the one list of operator kinds; what is asked of a kind
-- anywhere (the planner, the task host, weir inspect) is answered there.
local h = require "helpers"
local kinds = require "weir.kinds"
local pipeline = require "weir.pipeline"

describe("weir.kinds", function()
  it("knows every kind the builder makes, and nothing else", function()
    local weir = require "weir"
    local p = weir.pipeline { name = "kinds" }
    local a = p:sequence(1, 3):map(tostring)
      :filter(function() return true end)
      :flat_map(function(x, emit) emit(x) end)
      :with_timestamps(function() return 0 end)
    local b = p:read_lines("/dev/null")
    p:nexmark { events = 1 }:discard()
    p:read_socket { listen = "127.0.0.1:0" }:discard()
    p:read_redis_stream { stream = "s" }:write_redis_stream { stream = "t" }
    p:read_kafka { brokers = "b:1", topic = "s" }:write_kafka {
      brokers = "b:1", topic = "t" }
    local parsed = p:sequence(1, 2):map(tostring):on_error("skip")
    parsed:failed():discard()
    local keyed = a:union(b):key_by(function(x) return x end)
    keyed:reduce(function(x) return x end):print()
    keyed:process(function() end):discard()
    local w = keyed:window(weir.tumbling(10)):reduce(function(x) return x end)
    w:late():collect()
    w:write_lines("/tmp/unused")
    a:key_by(tostring):connect(b:key_by(tostring)):process {
      left = function() end, right = function() end }:discard()
    a:join(b, { left_key = tostring, right_key = tostring,
      window = weir.tumbling(10), apply = function() end }):discard()
    local seen = {}
    for _, node in ipairs(p.nodes) do
      assert.is_truthy(kinds.kinds[node.kind], node.kind)
      seen[node.kind] = true
    end
    for kind in pairs(kinds.kinds) do assert.is_true(seen[kind], kind) end
    assert.same(kinds.with("source"), pipeline.sources)
    assert.same(kinds.with("stateful"), pipeline.stateful)
  end)

  it("lets weir inspect print the per-key state of two-input operators",
    function()
      local dir = h.tmpdir()
      local r = h.run_weir({ "run", "--parallelism", "1", "--checkpoint-dir",
        dir .. "/ck", "spec/fixtures/two_inputs.lua", "2000", dir .. "/out" })
      assert.are.equal(0, r.status, r.stderr)
      r = h.run_weir({ "inspect", dir .. "/ck/two_inputs/chk-1", "--uid",
        "sums", "--key", "44" })
      h.sh("rm -rf " .. h.quote(dir))
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("%[44%] = { l = 19880, r = 19880 }", r.stdout)
    end)
end)
