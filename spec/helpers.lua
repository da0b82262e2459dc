--- Shared helpers for the specs: temporary directories, running the weir
-- executable, background processes that can be killed, bounded waits and
-- reading a job's committed output.
local core = require "weir.core"

local M = {}

M.root = os.getenv("PWD")
M.weir = M.root .. "/build/weir"
M.shakespeare = M.root .. "/examples/data/tinyshakespeare.txt"
M.shared_data = M.root .. "/../shared/data"

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

function M.write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- Quotes a string for /bin/sh.
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs a shell command; returns its stdout and exit status.
function M.sh(cmd)
  local p = io.popen(cmd .. "; echo \"__status=$?\"")
  local out = p:read("*a")
  p:close()
  local body, status = out:match("^(.*)__status=(%d+)%s*$")
  return body, tonumber(status)
end

--- A loopback TCP port no one listens on now (a spec's servers take it).
local ports_taken = 0  -- so that two calls within a millisecond differ
function M.free_port()
  ports_taken = ports_taken + 1
  local seed = core.getpid() * 7919 + math.floor(core.monotonic_ms())
    + ports_taken * 15485863
  for attempt = 1, 50 do
    local port = 20000 + (seed + attempt * 104729) % 40000
    local s = core.listen("tcp:127.0.0.1:" .. port, function() end)
    if s then
      s:close()
      core.run()
      return port
    end
  end
  error("no free loopback port")
end

--- Creates a fresh temporary directory and returns its path.
function M.tmpdir()
  local out = M.sh("mktemp -d /tmp/weir-spec-XXXXXX")
  return (out:gsub("%s+$", ""))
end

-- The jobs specs run serve no HTTP API unless a spec asks (--http, or
-- WEIR_HTTP in env / prefix, which comes after this and wins): many run
-- at once; spec/http_spec.lua tests the API. Exported, so that it holds
-- when env or prefix is a command of its own (ulimit ...; timeout ...).
local NO_HTTP = "export WEIR_HTTP=off; "

-- The time and level that start each of weir run's log lines.
local LOG_PREFIX = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ %u+ +"

--- text (a weir run's stderr) with the time and level taken off the start
-- of every log line, so specs compare what the lines say ("weir: ...").
function M.log_text(text)
  if not text then return text end
  text = text:gsub("^" .. LOG_PREFIX, ""):gsub("\n" .. LOG_PREFIX, "\n")
  return text
end

--- Runs `weir` with the given arguments (a list, each quoted). Returns
-- { status = exit status, stdout = text, stderr = text with the time and
-- level of each log line taken off (M.log_text), log = stderr as it was }.
function M.run_weir(args, env)
  local dir = M.tmpdir()
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = M.quote(a) end
  local _, status = M.sh(string.format("%s%s %s %s >%s/out 2>%s/err",
    NO_HTTP, env or "", M.quote(M.weir), table.concat(quoted, " "), dir,
    dir))
  local log = read_file(dir .. "/err")
  local r = { status = status, stdout = read_file(dir .. "/out"),
              stderr = M.log_text(log), log = log }
  M.sh("rm -rf " .. M.quote(dir))
  return r
end

--- Sleeps ms milliseconds on the libuv loop.
function M.sleep(ms)
  local t = core.timer(function() end)
  t:start(ms, 0)
  core.run()
  t:close()
  core.run()
end

--- Calls fn every 5 ms until it returns a true value, for at most
-- timeout_ms; returns that value, or raises naming what was awaited.
function M.wait_until(fn, timeout_ms, what)
  local deadline = core.monotonic_ms() + (timeout_ms or 20000)
  while true do
    local v = fn()
    if v then return v end
    if core.monotonic_ms() > deadline then
      error("timed out waiting for " .. (what or "a condition"), 2)
    end
    M.sleep(5)
  end
end

--- Starts `weir ARGS...` in the background. Returns a process handle:
-- { pid = weir's pid, dir = where stdout/stderr/status land }. prefix,
-- if given, is shell code run before (e.g. "umask 000;").
function M.spawn_weir(args, prefix)
  local dir = M.tmpdir()
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = M.quote(a) end
  local cmd = string.format("%s%s%s %s >%s/out 2>%s/err & echo $! >%s/pid; "
    .. "wait $!; echo $? >%s/status", NO_HTTP, prefix or "", M.quote(M.weir),
    table.concat(quoted, " "), dir, dir, dir, dir)
  os.execute("sh -c " .. M.quote(cmd) .. " >/dev/null 2>&1 &")
  local pid = M.wait_until(function()
    local s = read_file(dir .. "/pid")
    return s and tonumber(s:match("%d+"))
  end, 10000, "the weir process to start")
  return { pid = pid, dir = dir }
end

--- Starts a job over followed files in the background (see M.spawn_weir):
-- `weir run --parallelism 2 --checkpoint-interval 100 --checkpoint-dir
-- DIR/ck EXTRA... FIXTURE DIR/logs/*.log DIR/out`; it runs until
-- cancelled.
function M.spawn_followed(fixture, dir, extra)
  local args = { "run", "--parallelism", "2", "--checkpoint-interval",
    "100", "--checkpoint-dir", dir .. "/ck" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  for _, a in ipairs({ fixture, dir .. "/logs/*.log", dir .. "/out" }) do
    args[#args + 1] = a
  end
  return M.spawn_weir(args)
end

--- Sends a signal ("KILL", "TERM", ...) to a spawned process.
function M.kill(proc, sig)
  os.execute(string.format("kill -%s %d 2>/dev/null", sig or "KILL",
    proc.pid))
end

--- Waits (bounded) for a spawned process to exit; returns its exit status
-- (128 + signal number if a signal killed it), stdout, stderr and log (as
-- M.run_weir).
-- A process still running at the bound is killed with its workers (so a
-- failed spec leaves nothing running), and the wait raises.
function M.wait_exit(proc, timeout_ms)
  local ok, status = pcall(M.wait_until, function()
    local s = read_file(proc.dir .. "/status")
    return s and s:match("%d+") and tonumber(s:match("%d+"))
  end, timeout_ms or 60000, "weir to exit")
  if not ok then
    for _, w in ipairs(M.workers_of(proc.pid)) do
      os.execute("kill -KILL " .. w .. " 2>/dev/null")
    end
    M.kill(proc, "KILL")
    error(tostring(status) .. "; its stderr:\n"
      .. (read_file(proc.dir .. "/err") or ""), 0)
  end
  local log = read_file(proc.dir .. "/err")
  local r = { status = status, stdout = read_file(proc.dir .. "/out"),
              stderr = M.log_text(log), log = log }
  M.sh("rm -rf " .. M.quote(proc.dir))
  return r
end

--- Returns the committed output of a write_lines sink: every line of
-- every part-* file in dir, sorted (a multiset), and the list of files.
function M.committed_lines(dir)
  local names = core.scandir(dir) or {}
  local lines, files = {}, {}
  table.sort(names)
  for _, name in ipairs(names) do
    if name:match("^part%-") then
      files[#files + 1] = name
      for line in (read_file(dir .. "/" .. name)):gmatch("([^\n]*)\n") do
        lines[#lines + 1] = line
      end
    end
  end
  table.sort(lines)
  return lines, files
end

--- Word counts of a text file computed without weir: { word = n }.
function M.reference_wordcount(path)
  local counts = {}
  for line in io.lines(path) do
    for w in line:gmatch("%a+") do
      w = w:lower()
      counts[w] = (counts[w] or 0) + 1
    end
  end
  return counts
end

--- The output of spec/fixtures/running_count.lua on a file, computed
-- without weir: a set of "word<TAB>count so far" lines and its size.
function M.running_count_reference(path)
  local lines, total, counts = {}, 0, {}
  for line in io.lines(path) do
    for w in line:gmatch("%a+") do
      w = w:lower()
      counts[w] = (counts[w] or 0) + 1
      lines[w .. "\t" .. counts[w]] = true
      total = total + 1
    end
  end
  return lines, total
end

--- Raises unless the committed output in dir holds every line of the set
-- `reference` exactly once and nothing else (total = size of the set).
function M.assert_exactly_once(dir, reference, total)
  local seen, n = {}, 0
  for _, name in ipairs(select(2, M.committed_lines(dir))) do
    for line in io.lines(dir .. "/" .. name) do
      if not reference[line] then error("unexpected line " .. line, 2) end
      if seen[line] then error("duplicated line " .. line, 2) end
      seen[line] = true
      n = n + 1
    end
  end
  if n ~= total then
    error(string.format("%d of %d lines committed", n, total), 2)
  end
end

--- The pids of the worker processes the weir process `pid` started.
function M.workers_of(pid)
  local out = M.sh("pgrep -P " .. pid)
  local pids = {}
  for p in out:gmatch("%d+") do pids[#pids + 1] = tonumber(p) end
  return pids
end

--- The lines word count must write for a file ("word<TAB>count"),
-- computed without weir, sorted.
function M.wordcount_lines(path)
  local lines = {}
  for w, n in pairs(M.reference_wordcount(path)) do
    lines[#lines + 1] = w .. "\t" .. n
  end
  table.sort(lines)
  return lines
end

--- Writes `times` copies of the file src into dst.
function M.repeat_file(src, dst, times)
  local s = read_file(src)
  local f = assert(io.open(dst, "wb"))
  for _ = 1, times do f:write(s) end
  f:close()
end

--- The input of spec/fixtures/running_count.lua runs: a new temporary
-- directory holding tinyshakespeare `copies` times as input.txt. Returns
-- the directory, the input's path, and its reference output and size
-- (running_count_reference). The caller removes the directory.
function M.running_count_input(copies)
  local dir = M.tmpdir()
  local input = dir .. "/input.txt"
  M.repeat_file(M.shakespeare, input, copies)
  return dir, input, M.running_count_reference(input)
end

--- Runs `weir ARGS...` once per entry k of ks, each time killing it with
-- SIGKILL once k more checkpoints of the job in job_dir completed (raises
-- if the job ended before the kill); then runs it once more to the end
-- and returns that run's result (see run_weir). args should hold
-- --restore latest.
function M.kill_after_checkpoints(args, job_dir, ks)
  for _, k in ipairs(ks) do
    local ids = M.complete_checkpoints(job_dir)
    local before = ids[#ids] or 0
    local proc = M.spawn_weir(args)
    M.wait_until(function()
      local now = M.complete_checkpoints(job_dir)
      return (now[#now] or 0) >= before + k
    end, 30000, "checkpoint " .. (before + k))
    M.kill(proc, "KILL")
    local status = M.wait_exit(proc).status
    if status ~= 137 then
      error("the job ended before the kill (status " .. status .. ")", 2)
    end
  end
  return M.run_weir(args)
end

--- How many times pattern occurs in s.
function M.count(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

--- Waits (bounded) until a checkpoint of the job in job_dir newer than
-- id `after` completed; returns its id.
function M.wait_checkpoint(job_dir, after)
  return M.wait_until(function()
    local ids = M.complete_checkpoints(job_dir)
    local id = ids[#ids] or 0
    return id > after and id
  end, 30000, "a checkpoint after " .. after)
end

--- Runs disturb() against a job held at a pace while the file hold
-- exists (see spec/fixtures/chaos_wordcount.lua), then lets it run to its
-- end: removes hold and waits (bounded) for the exit. If disturb raises,
-- the job is killed and the error raised with the job's log.
-- @return the job's result (see M.wait_exit)
function M.disturb_held(proc, hold, disturb)
  local ok, err = pcall(disturb)
  os.remove(hold)
  if not ok then
    M.kill(proc, "KILL")
    error(tostring(err) .. "; the job's log:\n"
      .. (read_file(proc.dir .. "/err") or ""), 0)
  end
  return M.wait_exit(proc, 120000)
end

--- Starts etcd (Debian's etcd-server) on free loopback ports with its
-- data in dir; returns its pid and its "etcd://HOST:PORT" once it
-- answers (bounded), or nil when etcd is not installed. The caller kills
-- it. at, if given, = { ip, prefix }: listen on ip (ports 2379 and 2380)
-- and start it with the shell words prefix (e.g. "ip netns exec NS ").
function M.start_etcd(dir, at)
  if not M.sh("command -v etcd"):find("%S") then return nil end
  local ip = at and at.ip or "127.0.0.1"
  local port = at and 2379 or M.free_port()
  local peer = at and 2380 or M.free_port()
  local url = "http://" .. ip .. ":" .. port
  local peer_url = "http://" .. ip .. ":" .. peer
  os.execute(string.format("%setcd --name spec --data-dir %s "
    .. "--listen-client-urls %s --advertise-client-urls %s "
    .. "--listen-peer-urls %s --initial-advertise-peer-urls %s "
    .. "--initial-cluster spec=%s >%s/etcd.log 2>&1 & echo $! >%s/etcd.pid",
    at and at.prefix or "", M.quote(dir .. "/etcd-data"), url, url,
    peer_url, peer_url, peer_url, M.quote(dir), M.quote(dir)))
  local pid = tonumber(read_file(dir .. "/etcd.pid"))
  M.wait_until(function()
    return (read_file(dir .. "/etcd.log") or ""):find("ready to serve "
      .. "client requests", 1, true)
  end, 20000, "etcd to serve")
  return pid, "etcd://" .. ip .. ":" .. port
end

--- Lists a job's checkpoint directories that have a manifest.
function M.complete_checkpoints(job_dir)
  local out = {}
  for _, name in ipairs(core.scandir(job_dir) or {}) do
    local id = name:match("^chk%-(%d+)$")
    if id and core.stat(job_dir .. "/" .. name .. "/_manifest") then
      out[#out + 1] = tonumber(id)
    end
  end
  table.sort(out)
  return out
end

-- -- HTTP ----------------------------------------------------------------------

--- Sends raw request bytes to a loopback port and returns everything the
-- server sent until it closed the connection (bounded: 10 s).
function M.http_exchange(port, bytes)
  local got, done = {}, false
  core.connect("tcp:127.0.0.1:" .. port, function(err, c)
    if err then got[1], done = "connect failed: " .. err, true return end
    c:on_data(function(b)
      if not b then done = true c:close() return end
      got[#got + 1] = b
    end)
    c:write(bytes)
  end)
  M.wait_until(function() return done end, 10000, "the HTTP response")
  return table.concat(got)
end

--- An HTTP/1.1 request to a loopback port: method (default GET), path,
-- body (optional) and headers (optional, { name = value }).
-- @return status, content type, body, the response's head
function M.http_request(port, path, method, body, headers)
  local head = { (method or "GET") .. " " .. path .. " HTTP/1.1",
    "Host: 127.0.0.1:" .. port, "Connection: close",
    "Content-Length: " .. #(body or "") }
  for k, v in pairs(headers or {}) do head[#head + 1] = k .. ": " .. v end
  local r = M.http_exchange(port, table.concat(head, "\r\n") .. "\r\n\r\n"
    .. (body or ""))
  local status, rhead, rbody = r:match("^HTTP/1%.1 (%d+) [^\r]*\r\n(.-)\r\n"
    .. "\r\n(.*)$")
  assert(status, "not an HTTP response: " .. r)
  return tonumber(status), rhead:match("Content%-Type: ([^\r]+)"), rbody,
    rhead
end

--- Waits for a spawned job's "weir: http://127.0.0.1:PORT/" line; returns
-- the port.
function M.http_announced(proc)
  local port
  M.wait_until(function()
    local err = read_file(proc.dir .. "/err") or ""
    port = err:match("weir: http://127%.0%.0%.1:(%d+)/\n")
    return port
  end, 20000, "the job to announce its HTTP API")
  return tonumber(port)
end

return M
