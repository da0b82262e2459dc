local h = require "helpers"
local weir = require "weir"

-- Runs a pipeline without checkpoints and returns what it collected.
local function collect(build)
  local p = weir.pipeline { name = "spec", checkpoint_interval = 0 }
  local out = build(p):collect()
  p:run()
  return out
end

local function sorted(t)
  table.sort(t, function(a, b)
    if type(a) == "number" and type(b) == "number" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return t
end

describe("weir.pipeline", function()
  it("runs under LuaJIT", function()
    assert.is_not_nil(jit)
  end)

  describe(":sequence()", function()
    it("emits first..last in order", function()
      assert.same({ 3, 4, 5, 6 }, collect(function(p)
        return p:sequence(3, 6)
      end))
    end)

    it("emits nothing when last < first", function()
      assert.same({}, collect(function(p) return p:sequence(5, 4) end))
    end)
  end)

  describe(":read_lines()", function()
    it("emits each line without its newline", function()
      local path = os.tmpname()
      local f = io.open(path, "wb")
      f:write("alpha\n\nbeta gamma\nlast without newline")
      f:close()
      assert.same({ "alpha", "", "beta gamma", "last without newline" },
        collect(function(p) return p:read_lines(path) end))
      os.remove(path)
    end)

    it("feeds write_lines, whose files core.unlocked_file frees of stdio's "
      .. "lock (it returns the handle usable and takes nothing else)",
      function()
        local core = require "weir.core"
        local unlocked_file, opened = core.unlocked_file, {}
        core.unlocked_file = function(file)
          opened[#opened + 1] = io.type(file)
          return unlocked_file(file)
        end
        local dir = h.tmpdir()
        local ok, err = pcall(function()
          local p = weir.pipeline { name = "spec", checkpoint_interval = 0 }
          p:read_lines(h.shakespeare):write_lines(dir)
          p:run()
        end)
        core.unlocked_file = unlocked_file
        assert.is_true(ok, err)
        -- The output only: read_lines reads by pread(2), without stdio.
        assert.are.same({ "file" }, opened)
        local lines, files = h.committed_lines(dir)
        assert.are.same({ "part-0-0" }, files)
        assert.are.equal(40000, #lines)
        h.sh("rm -rf " .. h.quote(dir))
        local f = io.open(h.shakespeare, "rb")
        assert.are.equal(f, core.unlocked_file(f))
        assert.are.equal("First Citizen:", f:read("*l"))
        f:close()
        assert.are.equal(f, core.unlocked_file(f))  -- closed: nothing to do
        assert.has_error(function() core.unlocked_file("path") end)
      end)
  end)

  describe(":map()", function()
    it("emits fn(record)", function()
      assert.same({ 2, 4, 6 }, collect(function(p)
        return p:sequence(1, 3):map(function(x) return x * 2 end)
      end))
    end)

    it("fails when fn returns nil", function()
      local p = weir.pipeline { checkpoint_interval = 0 }
      p:sequence(1, 3):map(function() end):collect()
      assert.has_error(function() p:run() end)
    end)
  end)

  describe(":filter()", function()
    it("keeps the records fn accepts", function()
      assert.same({ 2, 4 }, collect(function(p)
        return p:sequence(1, 5):filter(function(x) return x % 2 == 0 end)
      end))
    end)
  end)

  describe(":flat_map()", function()
    it("emits zero or more records per record", function()
      assert.same({ 2, 3, 3 }, collect(function(p)
        return p:sequence(1, 3):flat_map(function(x, emit)
          for _ = 2, x do emit(x) end
        end)
      end))
    end)
  end)

  describe(":union()", function()
    it("merges every record of every input", function()
      assert.same({ 1, 2, 3, 10, 11, 20 }, sorted(collect(function(p)
        return p:sequence(1, 3):union(p:sequence(10, 11), p:sequence(20, 20))
      end)))
    end)

    it("rejects a stream of another pipeline", function()
      local other = weir.pipeline {}
      local p = weir.pipeline {}
      assert.has_error(function()
        p:sequence(1, 2):union(other:sequence(1, 2))
      end, "union: argument 1 is not a stream of this pipeline")
    end)
  end)

  describe(":key_by():reduce()", function()
    it("emits the running accumulator per key", function()
      local out = collect(function(p)
        return p:sequence(1, 6)
          :key_by(function(x) return x % 2 end)
          :reduce(function(acc, x) return acc + x end)
      end)
      assert.same({ 1, 2, 4, 6, 9, 12 }, sorted(out))
    end)

    it("keeps composite keys apart and equal ones together", function()
      local out = collect(function(p)
        return p:sequence(1, 8)
          :key_by(function(x) return { x % 2, x % 4 < 2 } end)
          :reduce(function(acc, x) return acc + x end)
      end)
      -- keys: {1,true}: 1,5 -> 1,6; {0,false}: 2,6 -> 2,8;
      --       {1,false}: 3,7 -> 3,10; {0,true}: 4,8 -> 4,12
      assert.same({ 1, 2, 3, 4, 6, 8, 10, 12 }, sorted(out))
    end)

    it("treats 1 and 1.0 as the same key", function()
      local out = collect(function(p)
        return p:sequence(1, 2)
          :key_by(function(x) return x == 1 and 1 or 1.0 end)
          :reduce(function(acc, x) return acc + x end)
      end)
      assert.same({ 1, 3 }, out)
    end)
  end)

  describe(":key_by():process()", function()
    it("gives each key its own state and calls finish per key", function()
      local out = collect(function(p)
        return p:sequence(1, 10)
          :key_by(function(x) return x % 3 end)
          :process(function(ctx, x)
            ctx.state.sum = (ctx.state.sum or 0) + x
          end, { finish = function(ctx)
            ctx:emit(ctx.key .. "=" .. ctx.state.sum)
          end })
      end)
      assert.same({ "0=18", "1=22", "2=15" }, sorted(out))
    end)

    it("does not call finish for a key whose state is empty", function()
      local out = collect(function(p)
        return p:sequence(1, 4)
          :key_by(function(x) return x end)
          :process(function(ctx, x)
            if x % 2 == 0 then ctx.state.seen = true end
          end, { finish = function(ctx) ctx:emit(ctx.key) end })
      end)
      assert.same({ 2, 4 }, sorted(out))
    end)

    it("emits downstream from the record function", function()
      local out = collect(function(p)
        return p:sequence(1, 3)
          :key_by(function() return "k" end)
          :process(function(ctx, x) ctx:emit(x * 10) end)
      end)
      assert.same({ 10, 20, 30 }, out)
    end)
  end)

  describe("options", function()
    it("rejects an unknown option, listing the known ones", function()
      assert.has_error(function() weir.pipeline { checkpoint_intervall = 5 } end,
        "weir.pipeline: unknown option 'checkpoint_intervall' (known: "
        .. "agents, allow_non_restored_state, checkpoint_dir, checkpoint_interval, "
        .. "checkpoint_timeout, fork_snapshot_keys, gc_pause, "
        .. "ha, ha_new_run, heartbeat_timeout, http, http_token_file, "
        .. "log_level, "
        .. "max_parallelism, "
        .. "metrics, mode, name, parallelism, restart, restore, retain, "
        .. "retain_on_cancel, savepoint_on_stop, secret_file, state_backend, "
        .. "state_cache_mb, state_dir, "
        .. "tolerable_failed_checkpoints, transport)")
    end)

    it("rejects a timeout or a tolerance out of range", function()
      assert.has_error(function() weir.pipeline { heartbeat_timeout = 0 } end,
        "weir.pipeline: heartbeat_timeout must be a number of ms > 0")
      assert.has_error(function()
        weir.pipeline { checkpoint_timeout = -1 }
      end, "weir.pipeline: checkpoint_timeout must be a number of ms > 0")
      assert.has_error(function()
        weir.pipeline { tolerable_failed_checkpoints = 0.5 }
      end, "weir.pipeline: tolerable_failed_checkpoints must be an integer "
        .. ">= 0")
    end)

    it("checks one option's value for the command line", function()
      local options = require "weir.options"
      assert.is_nil(options.check("parallelism", 2))
      assert.is_nil(options.check("parallelism", false))
      assert.are.equal("must be an integer >= 1",
        options.check("parallelism", 0))
      assert.are.equal("must be a number",
        options.check("retain", "3"))
    end)

    it("rejects an option of the wrong type", function()
      assert.has_error(function() weir.pipeline { retain = "3" } end,
        "weir.pipeline: option 'retain' must be a number, got string")
    end)

    it("sets the garbage collector's pause while the job runs", function()
      local function pause()
        local current = collectgarbage("setpause", 100)
        collectgarbage("setpause", current)
        return current
      end
      local before = pause()
      local seen = {}
      for _, opts in ipairs({ {}, { gc_pause = 250 } }) do
        opts.name, opts.checkpoint_interval = "spec", 0
        local p = weir.pipeline(opts)
        local out = p:sequence(1, 1):map(function() return pause() end)
          :collect()
        p:run()
        seen[#seen + 1] = out[1]
        assert.are.equal(before, pause())
      end
      assert.are.same({ 400, 250 }, seen)
      assert.has_error(function() weir.pipeline { gc_pause = 50 } end,
        "weir.pipeline: gc_pause must be an integer >= 100 (%)")
    end)

    it("gives the garbage collector its pause back when the job fails",
      function()
        local before = collectgarbage("setpause", 170)
        local p = weir.pipeline { name = "spec", checkpoint_interval = 0 }
        p:sequence(1, 3):map(function(n)
          if n == 2 then error("two") end
          return n
        end):collect()
        assert.has_error(function() p:run() end)
        assert.are.equal(170, collectgarbage("setpause", before))
      end)

    it("rejects an operator without a function", function()
      local p = weir.pipeline {}
      assert.has_error(function() p:sequence(1, 2):map(nil) end,
        "map: argument 1 must be a function, got nil")
    end)

    it("rejects a pipeline without a source", function()
      local p = weir.pipeline { checkpoint_interval = 0 }
      assert.has_error(function() p:run() end, "the pipeline has no source; "
        .. "start it with p:read_lines(path), p:sequence(first, last) or "
        .. "p:nexmark{...}")
    end)
  end)
end)

describe("parallelism", function()
  it("routes equal keys to one subtask and spreads keys over all",
    function()
      local p = weir.pipeline { checkpoint_interval = 0, parallelism = 4 }
      local out = p:sequence(1, 20000)
        :key_by(function(x) return "k" .. (x % 97) end)
        :process(function(ctx) ctx.state.subtask = ctx.subtask end,
          { finish = function(ctx) ctx:emit({ ctx.key, ctx.state.subtask }) end })
        :collect()
      p:run()
      local keys, subtasks = {}, {}
      for _, r in ipairs(out) do
        assert.is_nil(keys[r[1]], "key " .. r[1] .. " on two subtasks")
        keys[r[1]] = r[2]
        subtasks[r[2]] = true
      end
      assert.are.equal(97, #out)
      assert.same({ [0] = true, true, true, true }, subtasks)
    end)

  it("gives each key to the subtask owning its key group", function()
    local core = require "weir.core"
    local key = require "weir.key"
    local p = weir.pipeline { checkpoint_interval = 0, parallelism = 3,
                              max_parallelism = 16 }
    local out = p:sequence(1, 300)
      :key_by(function(x) return x end)
      :process(function(ctx, x) ctx:emit({ x, ctx.subtask }) end)
      :collect()
    p:run()
    assert.are.equal(300, #out)
    for _, r in ipairs(out) do
      local first, last = core.key_group_range(16, 3, r[2])
      local kg = key.key_group(r[1], 16)
      assert.is_true(kg >= first and kg <= last)
    end
  end)

  it("reads a file in parallel splits, each line once", function()
    local path = os.tmpname()
    local f = io.open(path, "wb")
    local expected = {}
    for i = 1, 5000 do
      local line = string.rep("l", i % 37) .. i
      f:write(line, "\n")
      expected[#expected + 1] = line
    end
    f:close()
    for _, parallelism in ipairs({ 1, 2, 3, 7 }) do
      local p = weir.pipeline { checkpoint_interval = 0,
                                parallelism = parallelism }
      local out = p:read_lines(path):collect()
      p:run()
      table.sort(out)
      local want = { unpack(expected) }
      table.sort(want)
      assert.same(want, out)
    end
    os.remove(path)
  end)

  it("reads several files, as a list or a glob, each line once", function()
    local dir = h.tmpdir()
    -- Files of different sizes, one empty, one without a final newline.
    local expected = {}
    local sizes = { a = 3000, b = 17, c = 0, d = 900 }
    for name, n in pairs(sizes) do
      local f = io.open(dir .. "/" .. name .. ".txt", "wb")
      for i = 1, n do
        local line = name .. string.rep("x", i % 41) .. i
        f:write(line, i < n and "\n" or (name == "d" and "" or "\n"))
        expected[#expected + 1] = line
      end
      f:close()
    end
    h.write_file(dir .. "/other.log", "not read\n")
    table.sort(expected)
    local inputs = { dir .. "/*.txt", dir .. "/?.txt", { dir .. "/d.txt",
      dir .. "/a.txt", dir .. "/b.txt", dir .. "/c.txt" } }
    for _, input in ipairs(inputs) do
      for _, parallelism in ipairs({ 1, 2, 3, 7 }) do
        local p = weir.pipeline { checkpoint_interval = 0,
                                  parallelism = parallelism }
        local out = p:read_lines(input):collect()
        p:run()
        table.sort(out)
        assert.same(expected, out)
      end
    end
    -- Another job's output directory: its uncommitted files never match.
    h.sh("mkdir " .. h.quote(dir .. "/out") .. " && printf 'done\\n' > "
      .. h.quote(dir .. "/out/part-0-0") .. " && printf 'pending\\n' > "
      .. h.quote(dir .. "/out/.part-0-1.pending"))
    for _, input in ipairs({ dir .. "/out/*", dir .. "/o[u]t/part-*",
      dir .. "/*/part-0-?" }) do
      local p = weir.pipeline { checkpoint_interval = 0 }
      local out = p:read_lines(input):collect()
      p:run()
      assert.same({ "done" }, out)
    end
    local p = weir.pipeline { checkpoint_interval = 0 }
    p:read_lines(dir .. "/*.csv"):collect()
    assert.has_error(function() p:run() end, "read_lines ("
      .. "spec/pipeline_spec.lua:" .. debug.getinfo(1, "l").currentline - 2
      .. "): no file matches " .. dir .. "/*.csv")
    h.sh("rm -rf " .. h.quote(dir))
  end)
end)

describe(":uid()", function()
  it("rejects a uid already given", function()
    local p = weir.pipeline {}
    local line = debug.getinfo(1, "l").currentline + 1
    p:sequence(1, 2):uid("numbers")
    assert.has_error(function() p:sequence(1, 2):uid("numbers") end,
      "uid: 'numbers' is already the uid of sequence "
      .. "(spec/pipeline_spec.lua:" .. line .. ")")
  end)

  it("names the operator's state in snapshots", function()
    local h = require "helpers"
    local dir = h.tmpdir()
    local p = weir.pipeline { name = "named", checkpoint_dir = dir }
    p:sequence(1, 10):uid("numbers")
      :key_by(function(x) return x % 2 end)
      :reduce(function(a, b) return a + b end):uid("sums")
    p:run()
    local ids = h.complete_checkpoints(dir .. "/named")
    local snap = assert(weir.snapshot.open(dir .. "/named/chk-" .. ids[1]))
    local uids = {}
    for _, op in ipairs(snap:operators()) do uids[#uids + 1] = op.uid end
    assert.same({ "numbers", "sums" }, uids)
    assert.are.equal(25, snap:get("sums", 1))
    h.sh("rm -rf " .. h.quote(dir))
  end)

  it("is asked for by weir run for every operator with state", function()
    local h = require "helpers"
    local dir = h.tmpdir()
    h.write_file(dir .. "/no_uids.lua", [[
local weir = require "weir"
local p = weir.pipeline { checkpoint_interval = 0 }
p:sequence(1, 3):map(tostring):uid("strings")
  :key_by(function(s) return s end)
  :reduce(function(a) return a end)
p:run()
]])
    local r = h.run_weir({ "run", "--parallelism", "1", dir .. "/no_uids.lua" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^weir: sequence %(" .. dir:gsub("%p", "%%%0")
      .. "/no_uids%.lua:3%) keeps state but has no :uid%(%); its state is "
      .. "named 'sequence%-1' after its place in the graph, which changes "
      .. "when operators are added before it\nweir: reduce %([^\n]*:5%) keeps "
      .. "state but has no :uid%(%)", r.stderr)
    assert.is_nil(r.stderr:match("map"))
    h.sh("rm -rf " .. h.quote(dir))
  end)
end)

describe("the discard sink", function()
  it("drops every record the pipeline computes", function()
    local seen = 0
    local p = weir.pipeline { checkpoint_interval = 0 }
    local s = p:sequence(1, 1000):map(function(x) seen = seen + 1 return x end)
    assert.matches("^<weir sink: discard ", tostring(s:discard()))
    p:run()
    assert.are.equal(1000, seen)
  end)
end)
