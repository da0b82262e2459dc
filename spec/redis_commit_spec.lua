-- weir.redis_commit: the batches write_redis_stream pre-commits and the
-- commit commands made from them.
local rc = require "weir.redis_commit"

-- Parses one RESP array of bulk strings into a list of strings.
local function parse(bytes)
  local n, at = bytes:match("^%*(%d+)\r\n()")
  local out = {}
  for i = 1, tonumber(n) do
    local len, from = bytes:match("^%$(%d+)\r\n()", at)
    out[i] = bytes:sub(from, from + len - 1)
    at = from + len + 2
  end
  assert.equal(#bytes + 1, at)
  return out
end

describe("weir.redis_commit", function()
  it("cuts a batch into commit scripts of COMMIT_ENTRIES entries", function()
    local b = rc.new()
    for i = 1, rc.COMMIT_ENTRIES + 2 do
      b:add({ "k", "v" }, { k = "key" .. i, v = i })
    end
    local s = b:seal()
    assert.equal(rc.COMMIT_ENTRIES + 2, s.n)
    assert.equal(2, #s.chunks)
    local cmds = {}
    rc.each_command(s, "out", "weir:commit:j:sink:0:7:run", 1000,
      function(k, bytes) cmds[k] = parse(bytes) end)
    assert.equal(2, #cmds)
    local last = cmds[2]
    assert.same({ "EVAL", rc.SCRIPT, "2", "out",
      "weir:commit:j:sink:0:7:run:2", "1000",
      "2", "k", "key" .. (rc.COMMIT_ENTRIES + 1), "v",
      tostring(rc.COMMIT_ENTRIES + 1),
      "2", "k", "key" .. (rc.COMMIT_ENTRIES + 2), "v",
      tostring(rc.COMMIT_ENTRIES + 2) }, last)
    assert.equal(6 + 5 * rc.COMMIT_ENTRIES, #cmds[1])
  end)

  it("keeps the chunks of older checkpoints' entry lists", function()
    -- Earlier versions cut at 4096 entries: a chunk they committed
    -- before a crash must keep its marker and its entries.
    local e = {}
    for i = 1, 4097 do
      e[#e + 1] = 1
      e[#e + 1] = "n"
      e[#e + 1] = tostring(i)
    end
    local s = rc.from_entries(e)
    assert.equal(4097, s.n)
    assert.equal(2, #s.chunks)
    local second
    rc.each_command(s, "out", "m", 1, function(k, bytes)
      if k == 2 then second = parse(bytes) end
    end)
    assert.same({ "EVAL", rc.SCRIPT, "2", "out", "m:2", "1", "1", "n",
      "4097" }, second)
  end)

  it("makes no command for an empty batch", function()
    local called = false
    rc.each_command(rc.new():seal(), "out", "m", 1,
      function() called = true end)
    assert.is_false(called)
  end)
end)
