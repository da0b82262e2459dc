-- Bad input gets a clear error and loses nothing.
local h = require "helpers"

describe("bad input", function()
  local dir

  setup(function() dir = h.tmpdir() end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function script(name, text)
    local path = dir .. "/" .. name
    h.write_file(path, text)
    return path
  end

  local function run(path, ...)
    local args = { "run", "--checkpoint-dir", dir .. "/ck",
      "--checkpoint-interval", "20", path }
    for i = 1, select("#", ...) do args[#args + 1] = select(i, ...) end
    return h.run_weir(args)
  end

  describe("a script", function()
    it("with a syntax error fails with file:line: message", function()
      local path = script("syntax.lua", "local weir = require 'weir'\n"
        .. "local p = weir.pipeline {\n\nlocal x = = 1\n")
      local r = run(path)
      assert.are.equal(1, r.status)
      assert.are.equal("weir: " .. path .. ":4: unexpected symbol near "
        .. "'local'\n", r.stderr)
    end)

    it("with a runtime error fails with file:line: message", function()
      local path = script("runtime.lua", "local weir = require 'weir'\n"
        .. "weir.pipelin {}\n")
      local r = run(path)
      assert.are.equal(1, r.status)
      assert.are.equal("weir: " .. path .. ":2: attempt to call field "
        .. "'pipelin' (a nil value)\n", r.stderr)
    end)

    describe("in a directory 60 bytes deep or more", function()
      -- LuaJIT cuts chunk names that long to "..." and their last bytes.
      local function deep_script(name, text)
        local deep = dir .. "/" .. string.rep("a-deep-directory/", 4)
        h.sh("mkdir -p " .. h.quote(deep))
        return script(deep:sub(#dir + 2) .. name, text)
      end

      it("is named in full in a syntax error", function()
        local path = deep_script("syntax.lua", "local x = = 1\n")
        local r = run(path)
        assert.are.equal(1, r.status)
        assert.are.equal("weir: " .. path .. ":1: unexpected symbol near "
          .. "'='\n", r.stderr)
      end)

      it("is named in full in a runtime error", function()
        local path = deep_script("runtime.lua", "local weir = require "
          .. "'weir'\nweir.pipelin {}\n")
        local r = run(path)
        assert.are.equal(1, r.status)
        assert.are.equal("weir: " .. path .. ":2: attempt to call field "
          .. "'pipelin' (a nil value)\n", r.stderr)
      end)

      it("is named in full with the operator whose function throws",
        function()
          local path = deep_script("throws.lua", [[
local weir = require "weir"
local p = weir.pipeline { name = "throws", restart = weir.none() }
p:sequence(1, 10):uid("numbers")
  :map(function(n)
    if n == 7 then error("seven") end
    return n
  end)
  :discard()
p:run()
]])
          local message = "weir: map (" .. path .. ":4) failed on record "
            .. "7: " .. path .. ":5: seven"
          -- In one process, and a worker process names it too.
          for _, parallelism in ipairs({ "1", "2" }) do
            local r = run("--parallelism", parallelism, path)
            assert.are.equal(1, r.status)
            assert.are.equal(message .. " (no restart left after 0 "
              .. "restarts; no checkpoint was completed, so --restore "
              .. "latest would start from the beginning)\n", r.stderr)
          end
        end)
    end)

    it("that does not exist is named", function()
      local r = run(dir .. "/nope.lua")
      assert.are.equal(1, r.status)
      assert.are.equal("weir: cannot open script " .. dir .. "/nope.lua\n",
        r.stderr)
    end)
  end)

  describe("a user function that throws on a record", function()
    local input, path, message

    setup(function()
      input = dir .. "/throw-input.txt"
      h.repeat_file(h.shakespeare, input, 2)
      -- Appends a poisoned line near the end of the input.
      local f = io.open(input, "ab")
      f:write("POISON " .. string.rep("x", 200) .. "\n")
      f:close()
      local f2 = io.open(input, "ab")
      f2:write(h.read_file(h.shakespeare))
      f2:close()
      path = h.root .. "/spec/fixtures/running_count.lua"
      message = "weir: flat_map (" .. path .. ":10) failed on record "
        .. '"POISON ' .. string.rep("x", 73) .. '...": ' .. path
        .. ":12: poisoned line"
    end)

    -- At every parallelism, in one process or on workers.
    for _, parallelism in ipairs({ "1", "2" }) do
      it("names the operator, its line and the record, restarts as the "
        .. "restart strategy allows, then fails with the error (parallelism "
        .. parallelism .. ")", function()
        local r = h.run_weir({ "run", "--parallelism", parallelism,
          "--checkpoint-interval", "20", "--checkpoint-dir",
          dir .. "/ck" .. parallelism, path, input,
          dir .. "/throw-out" .. parallelism, "fail-on-poison" })
        assert.are.equal(1, r.status)
        -- Each restart also says which checkpoint it restores.
        local lines = {}
        for line in r.stderr:gmatch("[^\n]+") do
          -- (and the status line, every 10 s on a slow machine)
          if not line:match("^weir: restoring ")
              and not line:match("^weir: no checkpoint of this run")
              and not line:match(" records/s from sources ") then
            lines[#lines + 1] = line
          end
        end
        assert.are.equal(4, #lines, r.stderr)
        for i = 1, 3 do
          assert.are.equal(message .. "; restarting from the newest "
            .. "complete checkpoint in 1000 ms (restart " .. i .. ")",
            lines[i])
        end
        assert.are.equal(message .. " (no restart left after 3 restarts; "
          .. "the last complete checkpoint stays for --restore latest)",
          lines[4])
      end)
    end

    it("leaves the last checkpoint so a fixed script resumes from it",
      function()
        local out, ck = dir .. "/resume-out", dir .. "/ck-resume"
        local r = h.run_weir({ "run", "--checkpoint-dir", ck,
          "--checkpoint-interval", "20", path, input, out, "fail-on-poison" })
        assert.are.equal(1, r.status)
        local ids = h.complete_checkpoints(ck .. "/running_count")
        assert.is_true(#ids >= 1, "no checkpoint before the failure")
        local reference, total = h.running_count_reference(input)
        -- Fixed: the script no longer throws on the poisoned line.
        r = h.run_weir({ "run", "--checkpoint-dir", ck, "--restore",
          "latest", "--checkpoint-interval", "20", path, input, out })
        assert.are.equal(0, r.status, r.stderr)
        assert.matches("restored from [^\n]*/chk%-" .. ids[#ids], r.stderr)
        h.assert_exactly_once(out, reference, total)
      end)
  end)

  describe("state that cannot be serialized", function()
    local function state_script(name, value)
      return script(name, [[
local weir = require "weir"
local p = weir.pipeline { name = "]] .. name .. [[", checkpoint_interval = 10 }
p:read_lines(arg[1]):uid("lines")
  :key_by(function(line) return #line % 3 end)
  :process(function(ctx, line)
    ctx.state.n = (ctx.state.n or 0) + 1
    if ctx.key == 1 and ctx.state.n > 100 then
      ctx.state.handlers = { on_line = ]] .. value .. [[ }
    end
  end):uid("counts")
p:run()
]])
    end

    for kind, value in pairs({ ["function"] = "print",
        thread = "coroutine.create(print)", userdata = "io.stdout" }) do
      it("fails the checkpoint naming operator, key and path (" .. kind
        .. ")", function()
        local name = "state_" .. kind
        local path = state_script(name, value)
        local input = dir .. "/state-input.txt"
        h.repeat_file(h.shakespeare, input, 1)
        -- In this process: a failing checkpoint fails for good at once,
        -- whether the state is taken here or by a forked process.
        for _, fork_keys in ipairs({ "-1", "0" }) do
          local r = run("--parallelism", "1", "--fork-snapshot-keys",
            fork_keys, path, input)
          assert.are.equal(1, r.status)
          assert.matches("^weir: checkpoint %d+ failed: process %("
            .. path:gsub("%p", "%%%0") .. ":5%) cannot serialize the state "
            .. "of key 1: state%.handlers%.on_line is a " .. kind .. " %(",
            r.stderr)
          -- The failed checkpoint was not published: the one the last
          -- attempt failed on (an earlier attempt's id may be taken again
          -- by a later one, whose checkpoint of that id may complete).
          local id
          for n in r.stderr:gmatch("checkpoint (%d+) failed") do
            id = tonumber(n)
          end
          local ck = dir .. "/ck/" .. name
          assert.is_nil(require("weir.core").stat(ck .. "/chk-" .. id
            .. "/_manifest"),
            r.stderr)
        end
      end)
    end
  end)

  describe("a record that cannot be serialized", function()
    it("fails the job at once naming operator, record and path when it "
      .. "crosses workers", function()
      local path = script("record_fn.lua", [[
local weir = require "weir"
local p = weir.pipeline { name = "record_fn" }
p:sequence(1, 1000):uid("numbers")
  :map(function(n) return { on_done = print } end)
  :key_by(function(r) return 1 end)
  :reduce(function(a, b) return a end):uid("first")
  :discard()
p:run()
]])
      local r = run("--parallelism", "2", path)
      assert.are.equal(1, r.status)
      assert.are.equal("weir: key_by (" .. path .. ":5) cannot send record "
        .. "{on_done=" .. tostring(print) .. "} to another worker: "
        .. "record.on_done is a function (records that cross workers hold "
        .. "only nil, booleans, numbers, strings and tables)\n", r.stderr)
    end)
  end)

  describe("before any record is processed", function()
    local path

    setup(function()
      path = script("copy.lua", [[
local weir = require "weir"
local p = weir.pipeline { name = "copy" }
p:read_lines(arg[1]):uid("lines"):write_lines(arg[2]):uid("output")
p:run()
]])
    end)

    it("a missing input is an error", function()
      local out = dir .. "/missing-out"
      local r = run(path, dir .. "/no-such-input.txt", out)
      assert.are.equal(1, r.status)
      assert.are.equal("weir: read_lines (" .. path .. ":3): cannot open "
        .. "input: " .. dir .. "/no-such-input.txt: No such file or "
        .. "directory\n", r.stderr)
    end)

    it("an unwritable output directory is an error", function()
      local blocker = dir .. "/a-file"
      h.write_file(blocker, "x")
      local r = run(path, h.shakespeare, blocker .. "/out")
      assert.are.equal(1, r.status)
      assert.are.equal("weir: write_lines (" .. path .. ":3): cannot create "
        .. "directory " .. blocker .. "/out: not a directory\n", r.stderr)
    end)

    it("an unwritable checkpoint directory is an error", function()
      local blocker = dir .. "/another-file"
      h.write_file(blocker, "x")
      local out = dir .. "/ck-out"
      local r = h.run_weir({ "run", "--checkpoint-dir", blocker .. "/ck",
        path, h.shakespeare, out })
      assert.are.equal(1, r.status)
      assert.are.equal("weir: checkpoint_dir: cannot create directory "
        .. blocker .. "/ck: not a directory\n", r.stderr)
      assert.same({}, (h.committed_lines(out)))
    end)
  end)
end)

describe("an invalid key", function()
  it("names the keyed operator and the key", function()
    local weir = require "weir"
    local p = weir.pipeline { checkpoint_interval = 0 }
    p:sequence(1, 3)
      :key_by(function(x) if x == 2 then return 0 / 0 end return x end)
      :reduce(function(a, b) return a + b end)
      :collect()
    local ok, err = pcall(p.run, p)
    assert.is_false(ok)
    assert.matches("^reduce %(spec/bad_input_spec%.lua:%d+%): key %-?nan is "
      .. "NaN; keys are strings, numbers, booleans or arrays of those$", err)
  end)
end)
