-- Reading state from snapshots: weir.snapshot.open and `weir inspect`.
local h = require "helpers"
local weir = require "weir"

describe("weir.snapshot", function()
  local dir, chk, counts

  setup(function()
    dir = h.tmpdir()
    local r = h.run_weir({ "run", "--parallelism", "2", "--checkpoint-dir",
      dir .. "/ck", "examples/wordcount.lua", h.shakespeare, dir .. "/out" })
    assert(r.status == 0, r.stderr)
    local ids = h.complete_checkpoints(dir .. "/ck/wordcount")
    chk = dir .. "/ck/wordcount/chk-" .. ids[#ids]
    counts = h.reference_wordcount(h.shakespeare)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  it("lists the operators with state", function()
    local snap = assert(weir.snapshot.open(chk))
    local uids = {}
    for _, op in ipairs(snap:operators()) do
      uids[#uids + 1] = op.uid .. "/" .. op.parallelism
    end
    assert.same({ "lines/2", "counts/2", "output/2" }, uids)
  end)

  it("visits every key of a keyed operator with its state", function()
    local snap = assert(weir.snapshot.open(chk))
    local seen, n = {}, 0
    snap:each_key("counts", function(k, state)
      assert.is_nil(seen[k])
      seen[k] = state.n
      n = n + 1
    end)
    assert.same(counts, seen)
  end)

  it("reads one key's state", function()
    local snap = assert(weir.snapshot.open(chk))
    assert.same({ n = counts.romeo }, snap:get("counts", "romeo"))
    assert.is_nil(snap:get("counts", "no-such-word"))
  end)

  it("refuses a damaged snapshot, naming the file", function()
    local copy = dir .. "/damaged"
    h.sh("cp -r " .. h.quote(chk) .. " " .. h.quote(copy))
    local f = copy .. "/counts-1.snap"
    local bytes = h.read_file(f)
    h.write_file(f, bytes:sub(1, #bytes - 3))
    local snap, err = weir.snapshot.open(copy)
    assert.is_nil(snap)
    assert.are.equal(copy .. "/counts-1.snap: snapshot is truncated", err)
  end)

  it("refuses what is not a snapshot", function()
    assert.same({ nil, h.shakespeare .. ": not a weir snapshot (a snapshot "
      .. "is a directory holding a _manifest)" },
      { weir.snapshot.open(h.shakespeare) })
    assert.same({ nil, dir .. "/nope: no such snapshot" },
      { weir.snapshot.open(dir .. "/nope") })
  end)

  describe("weir inspect", function()
    it("prints a key's state as a Lua literal", function()
      local r = h.run_weir({ "inspect", chk, "--uid", "counts", "--key",
        "romeo" })
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("-- counts (process), parallelism 2\n"
        .. '["romeo"] = { n = ' .. counts.romeo .. " }\n", r.stdout)
    end)

    it("prints JSON lines", function()
      local r = h.run_weir({ "inspect", chk, "--uid", "lines",
        "--format", "json" })
      assert.are.equal(0, r.status, r.stderr)
      -- The final checkpoint's sources have no ranges left to read.
      assert.matches('^{"state":{"path":"[^"]+","ranges":%[%]},'
        .. '"subtask":0,"uid":"lines"}\n{[^\n]+"subtask":1[^\n]+}\n$',
        r.stdout)
    end)

    it("prints maps by numbers, boolean keys and mixed tables as lists of "
      .. "key and value in JSON, losing no field", function()
      local script = dir .. "/shapes.lua"
      h.write_file(script, [[
local weir = require "weir"
local p = weir.pipeline { name = "shapes" }
p:sequence(1, 4):uid("numbers")
  :key_by(function(n) return { "k", n % 2 } end)
  :process(function(ctx, n)
    ctx.state.at = 1436918400123.5
    ctx.state.by_time = ctx.state.by_time or {}
    ctx.state.by_time[1436918400000 + n] = n
    ctx.state.mixed = { "first", last = n }
    ctx.state[true] = "yes"
    -- One timer per key, however many records (in 2100).
    ctx:processing_timer(4102444800000)
  end, { on_timer = function() end }):uid("shapes")
  :discard()
p:run()
]])
      local r = h.run_weir({ "run", "--parallelism", "1", "--checkpoint-dir",
        dir .. "/ck-shapes", script })
      assert.are.equal(0, r.status, r.stderr)
      local ids = h.complete_checkpoints(dir .. "/ck-shapes/shapes")
      r = h.run_weir({ "inspect", dir .. "/ck-shapes/shapes/chk-" .. ids[1],
        "--uid", "shapes", "--format", "json" })
      assert.are.equal(0, r.status, r.stderr)
      local line = r.stdout:match('[^\n]*"key":%["k",1%][^\n]*')
      assert.is_truthy(line, r.stdout)
      assert.are.equal('{"key":["k",1],"state":['
        .. '{"key":"at","value":1436918400123.5},'
        .. '{"key":"by_time","value":[{"key":1436918400001,"value":1},'
        .. '{"key":1436918400003,"value":3}]},'
        .. '{"key":"mixed","value":[{"key":1,"value":"first"},'
        .. '{"key":"last","value":3}]},'
        .. '{"key":true,"value":"yes"}],'
        .. '"timers":{"processing":[{"key":4102444800000,"value":true}]},'
        .. '"uid":"shapes"}', line)
    end)

    it("names a damaged snapshot and exits 1", function()
      local r = h.run_weir({ "inspect", dir .. "/damaged" })
      assert.are.equal(1, r.status)
      assert.are.equal("weir: cannot inspect " .. dir .. "/damaged/"
        .. "counts-1.snap: snapshot is truncated\n", r.stderr)
    end)
  end)
end)
