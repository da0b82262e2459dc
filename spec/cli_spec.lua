local h = require "helpers"
local pipeline = require "weir.pipeline"

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
    for name, spec in pairs(pipeline.options) do
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

  it("rejects an unknown option of run", function()
    local r = h.run_weir({ "run", "--checkpoint-intervall", "5", "x.lua" })
    assert.are.equal(1, r.status)
    assert.are.equal("weir: unknown option --checkpoint-intervall (see weir "
      .. "run --help)\n", r.stderr)
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
        "--checkpoint-dir", dir .. "/ck", dir .. "/args.lua", "one", "two" })
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
