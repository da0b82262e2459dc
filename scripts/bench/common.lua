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

--- The text of the file at path ("" while it does not exist: a log a
-- background process has yet to open).
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local text = f:read("*a")
  f:close()
  return text
end

--- The median of a list of numbers (the lower one of an even count);
-- sorts the list in place.
function M.median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)]
end

--- The output of a shell command, trailing white space removed.
function M.capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return (out:gsub("%s+$", ""))
end

--- Prints the line every benchmark starts with: cores, CPU and time.
function M.print_machine()
  print(string.format("machine: %s cores, %s; %s", M.capture("nproc"),
    M.capture("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | "
      .. "head -n 1"), os.date("!%Y-%m-%d %H:%M UTC")))
end

--- examples/data/tinyshakespeare.txt repeated `copies` times in dir (a
-- directory path), written once under a temporary name and renamed, so
-- that an interrupted run leaves no short file; prints its line.
-- @return the file's path
function M.repeated_input(dir, copies)
  local f = assert(io.open("examples/data/tinyshakespeare.txt", "rb"))
  local source = f:read("*a")
  f:close()
  local input = string.format("%s/tinyshakespeare-x%d.txt", dir, copies)
  f = io.open(input, "rb")
  local size = f and f:seek("end")
  if f then f:close() end
  if size ~= copies * #source then
    f = assert(io.open(input .. ".tmp", "wb"))
    for _ = 1, copies do f:write(source) end
    f:close()
    assert(os.rename(input .. ".tmp", input))
  end
  print(string.format("input: %s (%.1f MiB)", input,
    copies * #source / 1048576))
  return input
end

return M
