--- Submitting a pipeline script as a job of its own, from Lua (the REPL):
-- `weir run [flags] SCRIPT ARGS...` in a new process, which starts worker
-- processes as the script's parallelism says, exactly as from a shell. The
-- submission then reaches the job through its control socket (see
-- weir.control): status, savepoint, cancel.
local ffi = require "ffi"
local core = require "weir.core"
local control = require "weir.control"

ffi.cdef [[ extern char **environ; ]]

local M = {}

M.WAIT_MS = 30000  -- how long a request waits for the job to listen

-- This process's environment as "K=V" strings, plus extra ones.
local function environment(extra)
  local env, i = {}, 0
  while ffi.C.environ[i] ~= nil do
    local kv = ffi.string(ffi.C.environ[i])
    if not kv:match("^WEIR_NO_STATUS=") then env[#env + 1] = kv end
    i = i + 1
  end
  for _, kv in ipairs(extra) do env[#env + 1] = kv end
  return env
end

--- The weir executable to start: this one when this process is weir;
-- from plain LuaJIT (require "weir" with build/lib on package.cpath) the
-- one beside that library (build/weir); else `weir` on the PATH.
function M.executable()
  local exe = core.exepath()
  if exe:match("/weir$") then return exe end
  local lib = package.searchpath("weir.core", package.cpath)
  local build = lib and lib:match("^(.*)/lib/weir/core%.so$")
  if build and core.stat(build .. "/weir") then return build .. "/weir" end
  return "weir"
end

local Submission = {}
Submission.__index = Submission

--- Starts script as a job of its own.
-- @param script path of a pipeline script
-- @param opts { args = { script arguments }, parallelism = n,
--   checkpoint_dir = dir (default "checkpoints"; it overrides the
--   script's, so that the job can be found), restore = "latest" | path,
--   flags = { further `weir run` flags } }
-- @return Submission: :pid(), :status() (nil until the job listens, then
--   its status as weir.jobs() gives it; "exited" fields once it ended),
--   :savepoint(dir), :cancel(opts), :wait() -> exit status
-- The job's output goes to this process's stdout and stderr, without the
-- live status line. Raises when the process cannot be started.
function M.submit(script, opts)
  opts = opts or {}
  if type(script) ~= "string" then
    error("submit: expected the path of a pipeline script", 2)
  end
  local s = setmetatable({ script = script,
    checkpoint_dir = opts.checkpoint_dir or "checkpoints" }, Submission)
  local argv = { "run", "--checkpoint-dir", s.checkpoint_dir }
  if opts.parallelism then
    argv[#argv + 1] = "--parallelism"
    argv[#argv + 1] = tostring(opts.parallelism)
  end
  if opts.restore then
    argv[#argv + 1] = "--restore"
    argv[#argv + 1] = opts.restore
  end
  for _, f in ipairs(opts.flags or {}) do argv[#argv + 1] = tostring(f) end
  argv[#argv + 1] = script
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = tostring(a) end
  local proc, err = core.spawn(M.executable(), argv,
    environment({ "WEIR_NO_STATUS=1" }), function(status, signal)
      s.exit_status = signal ~= 0 and 128 + signal or status
    end)
  if not proc then error("submit: cannot start weir: " .. err, 2) end
  s.proc = proc
  s.process_id = proc:pid()
  return s
end

--- The process id of the submitted `weir run`.
function Submission:pid() return self.process_id end

-- The job's status from its control socket, or nil while it does not
-- listen (yet, or any more).
local function find(self)
  for _, j in ipairs(control.jobs(self.checkpoint_dir)) do
    if j.pid == self.process_id then
      self.job_dir = j.job_dir
      return j
    end
  end
end

--- The job's status (see weir.jobs), or nil before it listens; once the
-- process ended, { state = "exited", exit_status = n }.
function Submission:status()
  if self.exit_status then
    return { state = "exited", exit_status = self.exit_status }
  end
  return find(self)
end

-- Runs the loop until fn() is true or the process ended; raises after
-- M.WAIT_MS.
local function wait_for(self, fn, what)
  local deadline = core.monotonic_ms() + M.WAIT_MS
  local timer = core.timer(function() end)
  timer:start(50, 50)
  while not fn() do
    if self.exit_status then
      timer:close()
      error(string.format("the job of %s ended (exit status %d) %s",
        self.script, self.exit_status, what), 0)
    end
    if core.monotonic_ms() > deadline then
      timer:close()
      error(string.format("the job of %s did not start listening within "
        .. "%d ms", self.script, M.WAIT_MS), 0)
    end
    core.run_once()
  end
  timer:close()
end

-- Waits until the job runs, then sends it the request of type t with
-- directory dir (default: savepoints/ in the job directory, when
-- default_dir); returns the reply.
local function request(self, t, dir, default_dir, wait_end)
  wait_for(self, function()
    local j = find(self)
    return j and j.state == "running"
  end, "before it could be reached")
  if not dir and default_dir then dir = self.job_dir .. "/savepoints" end
  local r, err = control.request(self.job_dir, { t = t,
    dir = dir and control.absolute(dir) }, nil, wait_end)
  if not r then error(err, 0) end
  return r
end

--- Takes a savepoint into dir (default: savepoints/ in the job
-- directory), waiting until the job runs; returns its path.
function Submission:savepoint(dir)
  return request(self, "savepoint", dir, true).path
end

--- Cancels the job (after a savepoint into opts.savepoint) and waits
-- until its process ended; returns the savepoint's path, if any.
function Submission:cancel(opts)
  local r = request(self, "cancel", opts and opts.savepoint, false, true)
  self:wait()
  if r.path then return r.path end
end

--- Whether v is a Submission (see M.submit).
function M.is_submission(v) return getmetatable(v) == Submission end

--- Waits until the process ends; returns its exit status (0: the job
-- finished or was cancelled).
function Submission:wait()
  while not self.exit_status do core.run_once() end
  return self.exit_status
end

function Submission:__tostring()
  return string.format("<weir submission %s, pid %d%s>", self.script,
    self.process_id, self.exit_status
      and ", exited " .. self.exit_status or "")
end

return M
