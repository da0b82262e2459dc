-- The house rules (scripts/check-house): no require cycle among the weir
-- modules, no module over 600 lines, no function over 150 lines. Each
-- rule is shown on a small tree of modules written to a temporary
-- directory, and the real lua/weir is held to them.
local h = require "helpers"

local CHECKER = h.root .. "/scripts/check-house"

-- Runs the checker on dir (default: its own default, lua/weir); returns
-- its output (stdout and stderr) and exit status.
local function check(dir)
  return h.sh(h.quote(CHECKER) .. (dir and " " .. h.quote(dir) or "")
    .. " 2>&1")
end

-- Writes the modules of files ({ ["x.lua"] = source }) into a fresh
-- directory under the system's temporary directory; returns its path.
local function tree(files)
  local dir = os.tmpname()
  os.remove(dir)
  local _, status = h.sh("mkdir " .. h.quote(dir))
  assert(status == 0, "cannot create " .. dir)
  for name, src in pairs(files) do
    h.write_file(dir .. "/" .. name, src)
  end
  return dir
end

-- n lines of a module that defines no function.
local function filler(n)
  local lines = { "local x = {}" }
  for i = 2, n do lines[i] = "x[" .. i .. "] = " .. i end
  return table.concat(lines, "\n") .. "\n"
end

-- A module of one function `long` that is n lines long.
local function long_function(n)
  local lines = { "local M = {}", "local function long()", "  local y = {}" }
  for i = 1, n - 3 do lines[#lines + 1] = "  y[" .. i .. "] = " .. i end
  lines[#lines + 1] = "end"
  lines[#lines + 1] = "M.long = long"
  lines[#lines + 1] = "return M"
  return table.concat(lines, "\n") .. "\n"
end

describe("scripts/check-house", function()
  local dirs = {}
  local function fixture(files)
    local dir = tree(files)
    dirs[#dirs + 1] = dir
    return dir
  end

  after_each(function()
    for _, dir in ipairs(dirs) do h.sh("rm -rf " .. h.quote(dir)) end
    dirs = {}
  end)

  it("reports a cycle closed by a require inside a function", function()
    local dir = fixture({
      ["a.lua"] = 'local b = require "weir.b"\nreturn {}\n',
      ["b.lua"] = "local M = {}\nfunction M.f()\n"
        .. '  return require("weir.a")\nend\nreturn M\n',
    })
    local out, status = check(dir)
    assert.are.equal(1, status)
    assert.are.equal(dir .. "/a.lua:1: require cycle weir.a -> weir.b -> "
      .. "weir.a (" .. dir .. "/a.lua:1 requires weir.b, " .. dir
      .. "/b.lua:3 requires weir.a): move what they share into a module of "
      .. "its own, or require the module that defines it\n"
      .. "check-house: 1 violation of the house rules in " .. dir .. "\n",
      out)
  end)

  it("counts require \"weir\" as a require of init.lua", function()
    local dir = fixture({
      ["init.lua"] = "return { f = function() return require 'weir.cli' "
        .. "end }\n",
      ["cli.lua"] = 'return { version = require("weir").version }\n',
    })
    local out, status = check(dir)
    assert.are.equal(1, status)
    assert.matches("require cycle weir -> weir.cli -> weir ", out, 1, true)
  end)

  it("reports a module of 601 lines", function()
    local dir = fixture({ ["big.lua"] = filler(601) })
    local out, status = check(dir)
    assert.are.equal(1, status)
    assert.matches(dir .. "/big.lua:601: module weir.big is 601 lines "
      .. "(limit 600)", out, 1, true)
  end)

  it("reports a function of 151 lines, naming it and where it starts",
    function()
      local dir = fixture({ ["f.lua"] = long_function(151) })
      local out, status = check(dir)
      assert.are.equal(1, status)
      assert.matches(dir .. "/f.lua:2: function long is 151 lines (limit "
        .. "150, lines 2-152)", out, 1, true)
    end)

  it("passes a tree within the limits", function()
    -- Requires in comments and strings, and of weir.core, are none.
    local dir = fixture({
      ["init.lua"] = '-- require "weir.a"\nlocal core = require "weir.core"'
        .. '\nlocal a = require "weir.a"\nreturn { s = "require \'weir\'" }\n',
      ["a.lua"] = "--[[ require('weir') ]]\nreturn [[require 'weir']]\n",
      ["six_hundred.lua"] = filler(600),
      ["f.lua"] = long_function(150),
    })
    local out, status = check(dir)
    assert.are.equal(0, status)
    assert.are.equal("check-house: " .. dir .. " holds the house rules: "
      .. "4 modules, 1 function, no require cycle, no module over 600 "
      .. "lines, no function over 150 lines\n", out)
  end)

  it("passes lua/weir", function()
    local out, status = check()
    assert.are.equal(0, status, out)
  end)
end)
