local h = require "helpers"
local options = require "weir.options"

describe("weir (command line)", function()
  it("--help names every command", function()
    local r = h.run_weir({ "--help" })
    assert.are.equal(0, r.status)
    for _, cmd in ipairs({ "weir run", "weir checkpoints", "weir --help" }) do
      assert.truthy(r.stdout:find(cmd, 1, true), cmd)
    end
  end)

  it("run --help documents a flag for every pipeline option", function()
    local r = h.run_weir({ "run", "--help" })
    assert.are.equal(0, r.status)
    for name, spec in pairs(options.specs) do
      -- The name is the script's to give; a restart strategy is a table.
      if name ~= "name" and spec[2] ~= "table" then
        local flag = "--" .. name:gsub("_", "-")
        assert.truthy(r.stdout:find(flag, 1, true), flag)
      end
    end
  end)

  it("rejects an unknown command", function()
    local r = h.run_weir({ "frobnicate" })
    assert.are.equal(1, r.status)
    assert.are.equal("weir: unknown command 'frobnicate' (see weir --help)\n",
      r.stderr)
  end)

  it("rejects an unknown option of run, naming the closest one", function()
    local r = h.run_weir({ "run", "--checkpoint-intervall", "5", "x.lua" })
    assert.are.equal(1, r.status)
    assert.are.equal("weir run: unknown option '--checkpoint-intervall'; "
      .. "did you mean '--checkpoint-interval'? (see weir run --help)\n",
      r.stderr)
  end)

  it("without arguments shows the help and fails", function()
    local r = h.run_weir({})
    assert.are.equal(1, r.status)
    assert.are.equal(h.run_weir({ "--help" }).stdout, r.stdout)
  end)

  it("weir help VERB shows VERB's help", function()
    local r = h.run_weir({ "help", "run" })
    assert.are.equal(0, r.status)
    assert.are.equal("Usage: weir run [OPTIONS] SCRIPT [ARGS...]\n",
      r.stdout:match("^[^\n]*\n"))
    assert.are.equal(h.run_weir({ "run", "--help" }).stdout, r.stdout)
  end)

  it("weir help of an unknown verb says so", function()
    local r = h.run_weir({ "help", "frobnicate" })
    assert.are.equal(1, r.status)
    assert.are.equal("weir help: unknown verb 'frobnicate' (see weir "
      .. "--help)\n", r.stderr)
  end)

  it("--help anywhere among a verb's arguments shows its help", function()
    for _, args in ipairs({
      { "savepoint", "--help" },
      { "savepoint", "somejob", "--help" },
      { "cancel", "somejob", "--savepoint", "/tmp/sp", "-h" },
      { "inspect", "/no/such/chk-1", "--uid", "counts", "--help" },
      { "run", "--parallelism", "2", "--help" },
      { "jobs", "--checkpoint-dir", "/tmp", "--help" },
      { "repl", "--help" },
    }) do
      local r = h.run_weir(args)
      local what = table.concat(args, " ")
      assert.are.equal(0, r.status, what)
      assert.are.equal("Usage: weir " .. args[1],
        r.stdout:sub(1, 12 + #args[1]), what)
      assert.are.equal("", r.stderr, what)
    end
  end)

  it("takes --opt=value as well as --opt value for every verb", function()
    local dir = h.tmpdir()
    local r = h.run_weir({ "jobs", "--checkpoint-dir=" .. dir })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("no running jobs in " .. dir .. "\n", r.stdout)
    r = h.run_weir({ "inspect", dir .. "/none", "--format=json",
      "--uid=counts" })
    assert.are.equal(1, r.status)
    assert.are.equal("weir: cannot inspect " .. dir .. "/none: no such "
      .. "snapshot\n", r.stderr)
    h.sh("rm -rf " .. h.quote(dir))
  end)

  it("reports an invalid option value as the option's error", function()
    local dir = h.tmpdir()
    h.write_file(dir .. "/x.lua", "require('weir').pipeline {}\n")
    for _, args in ipairs({
      { { "--parallelism", "0" }, "--parallelism must be an integer >= 1" },
      { { "--parallelism=1.5" }, "--parallelism must be an integer >= 1" },
      { { "--retain", "many" }, "--retain must be a number, got 'many'" },
      { { "--checkpoint-interval", "-5" },
        "--checkpoint-interval must be >= 0 ms" },
      { { "--parallelism" }, "option '--parallelism' requires an argument" },
    }) do
      local argv = { "run", unpack(args[1]) }
      if #args[1] > 1 or args[1][1]:find("=") then
        argv[#argv + 1] = dir .. "/x.lua"
      end
      local r = h.run_weir(argv)
      assert.are.equal(1, r.status, args[2])
      assert.are.equal("weir run: " .. args[2] .. " (see weir run --help)\n",
        r.stderr)
    end
    h.sh("rm -rf " .. h.quote(dir))
  end)

  it("hands everything after SCRIPT to the script unchanged", function()
    local dir = h.tmpdir()
    h.write_file(dir .. "/args.lua", [[
print(table.concat(arg, "|"))
print(require("weir").pipeline({}).options.parallelism)
]])
    local r = h.run_weir({ "run", "--parallelism", "1", dir .. "/args.lua",
      "--parallelism", "3", "--help", "-h", "--", "x", "--mode=y" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("--parallelism|3|--help|-h|--|x|--mode=y\n1\n",
      r.stdout)
    h.sh("rm -rf " .. h.quote(dir))
  end)

  it("takes a script named like an option after --", function()
    local dir = h.tmpdir()
    h.write_file(dir .. "/-dash.lua", "print(arg[0], arg[1])\n")
    local r = h.run_weir({ "run", "--", "-dash.lua", "--one" },
      "cd " .. h.quote(dir) .. " &&")
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("-dash.lua\t--one\n", r.stdout)
    h.sh("rm -rf " .. h.quote(dir))
  end)

  describe("completion", function()
    it("prints a bash script that completes verbs, options and values",
      function()
        local dir = h.tmpdir()
        local r = h.run_weir({ "completion", "bash" })
        assert.are.equal(0, r.status, r.stderr)
        h.write_file(dir .. "/weir.bash", r.stdout)
        local _, status = h.sh("bash -n " .. h.quote(dir .. "/weir.bash"))
        assert.are.equal(0, status)
        local out = h.sh("bash -c " .. h.quote("source " .. dir
          .. "/weir.bash; complete() { :; }; "
          .. "for words in 'weir sav' 'weir run --paral' "
          .. "'weir run --mode at' 'weir inspect x --format j'; do "
          .. "COMP_WORDS=($words); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
          .. "_weir; echo \"${COMPREPLY[*]}\"; done"))
        assert.are.equal("savepoint\n--parallelism\nat_least_once\njson\n",
          out)
        h.sh("rm -rf " .. h.quote(dir))
      end)

    it("prints zsh and fish scripts of the verbs a user runs", function()
      -- How each shell's script names a verb it completes.
      for shell, verb in pairs({ zsh = '"%s:', fish = "case %s\n" }) do
        local r = h.run_weir({ "completion", shell })
        assert.are.equal(0, r.status, r.stderr)
        for _, name in ipairs({ "run", "savepoint", "completion" }) do
          assert.truthy(r.stdout:find(verb:format(name), 1, true), name)
        end
        assert.falsy(r.stdout:find(verb:format("worker"), 1, true), shell)
      end
    end)

    it("rejects another shell", function()
      local r = h.run_weir({ "completion", "tcsh" })
      assert.are.equal(1, r.status)
      assert.are.equal("weir completion: argument 'SHELL' must be one of "
        .. "'bash', 'zsh', 'fish' (see weir completion --help)\n", r.stderr)
    end)
  end)

  it("names the script's line when window's options are not a table",
    function()
      local dir = h.tmpdir()
      h.write_file(dir .. "/window.lua", [[
local weir = require "weir"
local p = weir.pipeline {}
p:sequence(1, 3):key_by(tostring):window(weir.tumbling(10), 5)
]])
      local r = h.run_weir({ "run", "--parallelism", "1",
        dir .. "/window.lua" })
      assert.are.equal(1, r.status)
      assert.are.equal("weir: " .. dir .. "/window.lua:3: window: argument 2 "
        .. "must be a table of options such as { allowed_lateness = ms }, "
        .. "got number\n", r.stderr)
      h.sh("rm -rf " .. h.quote(dir))
    end)

  it("passes ARGS to the script as arg, and flags override the script",
    function()
      local dir = h.tmpdir()
      h.write_file(dir .. "/args.lua", [[
local weir = require "weir"
local p = weir.pipeline { checkpoint_interval = 5000, retain = 9 }
print(arg[0], arg[1], arg[2], p.options.checkpoint_interval,
  p.options.retain, p.options.checkpoint_dir)
]])
      local r = h.run_weir({ "run", "--checkpoint-interval=0",
        "--parallelism=1", "--checkpoint-dir", dir .. "/ck",
        dir .. "/args.lua", "one", "two" })
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal(dir .. "/args.lua\tone\ttwo\t0\t9\t" .. dir .. "/ck\n",
        r.stdout)
      h.sh("rm -rf " .. h.quote(dir))
    end)

  it("checkpoints DIR without checkpoints says so", function()
    local dir = h.tmpdir()
    local r = h.run_weir({ "checkpoints", dir })
    assert.are.equal(1, r.status)
    assert.are.equal("weir: no complete checkpoint in " .. dir .. "\n",
      r.stderr)
    h.sh("rm -rf " .. h.quote(dir))
  end)
end)
