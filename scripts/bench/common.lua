-- Helpers every benchmark body shares (dofile'd from the repository's top:
-- scripts/bench-* cd there).
local M = {}

--- Returns sh(cmd): runs a shell command, and on failure names the
-- benchmark (name) and the command on stderr and exits 1.
function M.runner(name)
  return function(cmd)
    local ok = os.execute(cmd)
    if ok ~= 0 and ok ~= true then
      io.stderr:write(name, ": failed: ", cmd, "\n")
      os.exit(1)
    end
  end
end

--- The median of a list of numbers (the lower one of an even count);
-- sorts the list in place.
function M.median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)]
end

return M
