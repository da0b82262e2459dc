-- LuaRocks: `luarocks --lua-version 5.1 make` builds weir with CMake and
-- installs the weir executable, the Lua modules and weir/core.so into the
-- rocks tree (LuaJIT runs Lua 5.1 modules). The C libraries come from
-- Debian's packages: scripts/setup installs them.
rockspec_format = "3.0"
package = "weir"
version = "0.1.0-1"
source = { url = "git+file://." }
description = {
  summary = "Stream processing with exactly-once state; pipelines in Lua",
  detailed = [[
A C11 core on libuv moves records between operators, propagates
checkpoint barriers and persists lz4-compressed, checksummed snapshots;
pipelines and operator logic are written in LuaJIT.]],
}
dependencies = { "lua == 5.1" }
build_dependencies = {}
external_dependencies = {
  LUAJIT = { header = "luajit-2.1/luajit.h" },
  LIBUV = { header = "uv.h" },
  LZ4 = { header = "lz4.h" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "RelWithDebInfo",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    WEIR_LUA_DIR = "$(LUADIR)",
    WEIR_LUA_CDIR = "$(LIBDIR)",
  },
}
