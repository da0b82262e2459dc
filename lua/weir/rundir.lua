--- Run directories: /tmp/weir-<pid>-<n>/, where the processes of a job
-- keep their sockets (the coordinator's, each worker's, the control
-- socket) and other working files. Guarantees:
-- - a run directory is private: made 0700 whatever the umask, under a
--   name no other process held (a name that exists is never reused);
-- - its paths are short whatever --checkpoint-dir is, so its sockets fit
--   the 107 bytes of a Unix socket path;
-- - one left behind by a process that died (kill -9) is reaped by the
--   next weir of the same user that makes a run directory: only
--   directories named weir-<pid>-<n>, owned by that user, whose pid is
--   not alive.
local core = require "weir.core"

local M = {}

M.ROOT = "/tmp"
M.MODE = tonumber("700", 8)

-- Removes path: a file or a symbolic link (never what it points to), or
-- a directory with everything in it.
local function remove_tree(path)
  local ok, _, code = core.unlink(path)
  if ok or code == "ENOENT" then return true end
  for _, name in ipairs(core.scandir(path) or {}) do
    remove_tree(path .. "/" .. name)
  end
  return core.rmdir(path)
end

--- Removes the run directories under root (default M.ROOT) of processes
-- that are gone: named weir-<pid>-<n>, a directory (not a link to one)
-- owned by this user, pid not alive.
-- @return the number of directories removed
function M.reap_stale(root)
  root = root or M.ROOT
  local uid, removed = core.getuid(), 0
  for _, name in ipairs(core.scandir(root) or {}) do
    local pid = name:match("^weir%-(%d+)%-%d+$")
    local path = root .. "/" .. name
    local st = pid and core.lstat(path)
    if st and st.type == "directory" and st.uid == uid
        and not core.pid_alive(tonumber(pid)) then
      remove_tree(path)
      removed = removed + 1
    end
  end
  return removed
end

--- Makes a fresh run directory for this process under root (default
-- M.ROOT), after reaping stale ones. Returns its path; raises a message
-- naming the path when it cannot be made.
function M.create(root)
  root = root or M.ROOT
  M.reap_stale(root)
  local base = math.floor(core.time_ms() % 1e6)
  for n = base, base + 100 do
    local path = string.format("%s/weir-%d-%d", root, core.getpid(), n)
    local ok, err, code = core.mkdir(path, M.MODE)
    if ok then
      -- The umask can only narrow 0700; set it anyway, so the mode never
      -- depends on it.
      ok, err = core.chmod(path, M.MODE)
      if ok then return path end
      core.rmdir(path)
    end
    if code ~= "EEXIST" then
      error(string.format("cannot create the run directory %s: %s", path,
        err), 0)
    end
  end
  error(string.format("cannot create a run directory in %s: every name "
    .. "tried exists", root), 0)
end

--- Removes run directory dir and everything in it.
function M.remove(dir)
  remove_tree(dir)
end

return M
