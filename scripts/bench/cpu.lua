-- CPU time of finished child processes, for the benchmarks that run weir
-- as a child (dofile'd from the repository's top: scripts/bench-* cd
-- there).
local ffi = require "ffi"

ffi.cdef [[
struct bench_timeval { long tv_sec; long tv_usec; };
struct bench_rusage { struct bench_timeval ru_utime, ru_stime; long pad[14]; };
int getrusage(int who, struct bench_rusage *usage);
]]
local RUSAGE_CHILDREN = -1

--- CPU seconds (user + system) of every finished child process so far,
-- their own children (weir's workers) included.
return function()
  local u = ffi.new("struct bench_rusage")
  ffi.C.getrusage(RUSAGE_CHILDREN, u)
  return tonumber(u.ru_utime.tv_sec) + tonumber(u.ru_utime.tv_usec) / 1e6
    + tonumber(u.ru_stime.tv_sec) + tonumber(u.ru_stime.tv_usec) / 1e6
end
