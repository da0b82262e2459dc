--- Small file-system helpers over weir.core for the Lua layer.
local core = require "weir.core"

local M = {}

--- Creates dir and its missing parents. Returns true or nil, message.
function M.mkdir_p(dir)
  local path = dir:sub(1, 1) == "/" and "" or "."
  for part in dir:gmatch("[^/]+") do
    path = path .. "/" .. part
    local ok, err, code = core.mkdir(path)
    if not ok and code ~= "EEXIST" then
      return nil, string.format("cannot create directory %s: %s", path, err)
    end
  end
  local st = core.stat(dir)
  if not st or st.type ~= "directory" then
    return nil, string.format("%s is not a directory", dir)
  end
  return true
end

--- Checks that files can be created in dir. Returns true or nil, message.
function M.check_writable(dir)
  local probe = string.format("%s/.weir-probe-%d", dir, core.getpid())
  local f, err = io.open(probe, "wb")
  if not f then
    return nil, string.format("directory %s is not writable: %s", dir,
      err:gsub("^[^:]*: ", ""))
  end
  f:close()
  core.unlink(probe)
  return true
end

--- Removes a directory and the files directly in it (checkpoint dirs hold
-- no subdirectories). Returns true or nil, message.
function M.remove_dir(dir)
  local names = core.scandir(dir)
  if names then
    for _, name in ipairs(names) do core.unlink(dir .. "/" .. name) end
  end
  local ok, err, code = core.rmdir(dir)
  if not ok and code ~= "ENOENT" then return nil, err end
  return true
end

--- Copies the files directly in dir `from` into a new directory `to`,
-- each made durable (fsync) before the next, and the file named `last`
-- after all others: a reader that sees `last` sees everything.
-- Returns true or nil, message.
function M.copy_files(from, to, last)
  local ok, err = M.mkdir_p(to)
  if not ok then return nil, err end
  local names = core.scandir(from) or {}
  table.sort(names, function(a, b)
    if (a == last) ~= (b == last) then return b == last end
    return a < b
  end)
  for _, name in ipairs(names) do
    local src, dst = from .. "/" .. name, to .. "/" .. name
    local f, rerr = io.open(src, "rb")
    if not f then return nil, rerr end
    local bytes = f:read("*a")
    f:close()
    local out, werr = io.open(dst, "wb")
    if not out then return nil, werr end
    local wok, werr2 = out:write(bytes)
    out:close()
    if not wok then return nil, dst .. ": " .. tostring(werr2) end
    local sok, serr = core.fsync(dst)
    if not sok then return nil, dst .. ": " .. serr end
  end
  return core.fsync_parent(to .. "/" .. (last or "."))
end

--- path made absolute against this process's working directory.
-- @return path
function M.absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return assert(core.cwd()) .. "/" .. path
end

return M
