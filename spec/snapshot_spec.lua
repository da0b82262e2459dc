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

    it("names a damaged snapshot and exits 1", function()
      local r = h.run_weir({ "inspect", dir .. "/damaged" })
      assert.are.equal(1, r.status)
      assert.are.equal("weir: cannot inspect " .. dir .. "/damaged/"
        .. "counts-1.snap: snapshot is truncated\n", r.stderr)
    end)
  end)
end)
