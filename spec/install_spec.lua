-- Installing weir like a package: `cmake --install` into a prefix puts the
-- weir executable, the Lua modules and weir/core.so where LuaJIT looks
-- (share/lua/5.1, lib/lua/5.1), with a man page; a pipeline then runs
-- from plain LuaJIT with only that prefix on its paths.
local h = require "helpers"

local PIPELINE = [[
local weir = require "weir"
local p = weir.pipeline { name = "installed", parallelism = 1 }
p:sequence(1, 5):uid("numbers")
  :map(function(n) return "square " .. n * n end):print()
p:run()
]]

-- The squares the pipeline printed, in order.
local function squares(out)
  local got = {}
  for n in out:gmatch("square (%d+)") do got[#got + 1] = tonumber(n) end
  return got
end

-- LuaJIT's default package.path or cpath without ./ and /usr/local:
-- where Debian's Lua packages are.
local function system_entries(which)
  local all = h.sh("env -u LUA_PATH -u LUA_CPATH luajit -e "
    .. h.quote("io.write(package." .. which .. ")"))
  local out = {}
  for entry in all:gmatch("[^;]+") do
    if entry:sub(1, 5) == "/usr/" and not entry:find("^/usr/local/") then
      out[#out + 1] = entry
    end
  end
  return table.concat(out, ";")
end

describe("cmake --install", function()
  local dir, prefix
  setup(function()
    dir = h.tmpdir()
    prefix = dir .. "/prefix with space"
    local out, status = h.sh("cmake --install " .. h.quote(h.root .. "/build")
      .. " --prefix " .. h.quote(prefix) .. " 2>&1")
    assert.are.equal(0, status, out)
    h.write_file(dir .. "/squares.lua", PIPELINE)
  end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  it("lets plain LuaJIT require weir with only the prefix on its paths",
    function()
      -- LUA_PATH and LUA_CPATH replace LuaJIT's defaults (no ";;"), so
      -- neither the build tree nor anything under /usr/local is seen;
      -- Debian's lua-cjson, lua-argparse and lua-lpeg come from /usr.
      local lua = prefix .. "/share/lua/5.1"
      local env = string.format("LUA_PATH=%s LUA_CPATH=%s",
        h.quote(lua .. "/?.lua;" .. lua .. "/?/init.lua;"
          .. system_entries("path")),
        h.quote(prefix .. "/lib/lua/5.1/?.so;" .. system_entries("cpath")))
      local out, status = h.sh("cd " .. h.quote(dir) .. " && " .. env
        .. " luajit squares.lua 2>&1")
      assert.are.equal(0, status, out)
      assert.same({ 1, 4, 9, 16, 25 }, squares(out))
      local where = h.sh("cd " .. h.quote(dir) .. " && " .. env
        .. [[ luajit -e 'print(package.searchpath("weir.core", ]]
        .. [[package.cpath))']])
      assert.are.equal(prefix .. "/lib/lua/5.1/weir/core.so\n", where)
    end)

  it("installs a weir executable that finds its modules, and its version",
    function()
      local weir = h.quote(prefix .. "/bin/weir")
      local out, status = h.sh("cd " .. h.quote(dir) .. " && " .. weir
        .. " --version")
      assert.are.equal(0, status, out)
      assert.are.equal("weir " .. require("weir").version .. "\n", out)
      out, status = h.sh("cd " .. h.quote(dir) .. " && WEIR_NO_STATUS=1 "
        .. weir .. " run --checkpoint-dir ck squares.lua 2>&1")
      assert.are.equal(0, status, out)
      assert.same({ 1, 4, 9, 16, 25 }, squares(out))
    end)

  it("installs the man page", function()
    local page = h.read_file(prefix .. "/share/man/man1/weir.1")
    if not page then pending("no help2man: no man page") return end
    assert.matches('%.TH WEIR "1"', page)
    assert.matches("weir run", page, 1, true)
  end)
end)

describe("luarocks make", function()
  it("builds weir from its rockspec and installs it into a rocks tree",
    function()
      if not h.sh("command -v luarocks"):find("%S") then
        pending("luarocks is not installed (scripts/setup installs it)")
        return
      end
      local dir = h.tmpdir()
      finally(function()
        h.sh("rm -rf " .. h.quote(dir) .. " "
          .. h.quote(h.root .. "/build.luarocks"))
      end)
      local tree = dir .. "/tree"
      local out, status = h.sh("cd " .. h.quote(h.root) .. " && luarocks "
        .. "--lua-version 5.1 make --tree " .. h.quote(tree)
        .. " weir-" .. require("weir").version .. "-1.rockspec 2>&1")
      assert.are.equal(0, status, out)
      h.write_file(dir .. "/squares.lua", PIPELINE)
      local lua = tree .. "/share/lua/5.1"
      out, status = h.sh(string.format("cd %s && LUA_PATH=%s LUA_CPATH=%s "
        .. "luajit squares.lua 2>&1", h.quote(dir),
        h.quote(lua .. "/?.lua;" .. lua .. "/?/init.lua;"
          .. system_entries("path")),
        h.quote(tree .. "/lib/lua/5.1/?.so;" .. system_entries("cpath"))))
      assert.are.equal(0, status, out)
      assert.same({ 1, 4, 9, 16, 25 }, squares(out))
      out = h.sh(h.quote(tree .. "/bin/weir") .. " --version")
      assert.are.equal("weir " .. require("weir").version .. "\n", out)
    end)
end)
