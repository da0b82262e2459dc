--- A redis-server of the specs' own: started on a free loopback port in a
-- temporary directory, stopped by the spec; and blocking calls to it
-- through weir.redis (the loop runs until the reply came, bounded).
local core = require "weir.core"
local h = require "helpers"
local redis = require "weir.redis"

local M = {}

--- Whether specs can use Redis: weir has its client (hiredis) and
-- redis-server is installed. Returns true, or false and why not.
function M.available()
  if not redis.available() then
    return false, "weir was built without hiredis (libhiredis-dev)"
  end
  local _, status = h.sh("command -v redis-server >/dev/null")
  if status ~= 0 then return false, "redis-server is not installed" end
  return true
end

-- Whether something answers on 127.0.0.1:port.
local function answers(port)
  local _, status = h.sh("redis-cli -p " .. port .. " ping 2>/dev/null "
    .. "| grep -q PONG")
  return status == 0
end

--- Starts redis-server (opts.appendonly: AOF on, fsync always) in a fresh
-- directory, on a port nothing listens on. Returns { port, url, dir, pid }.
function M.start(opts)
  opts = opts or {}
  local dir = opts.dir or h.tmpdir()
  -- Ports from this process and the time, so runs side by side (and
  -- leftovers of killed ones) pick different ones.
  local seed = core.getpid() * 7919 + math.floor(core.monotonic_ms())
  for attempt = 1, 20 do
    local port = opts.port or 20000 + (seed + attempt * 104729) % 40000
    if not answers(port) then
      local args = string.format("--port %d --bind 127.0.0.1 --dir %s "
        .. "--save '' --appendonly %s --appendfsync always "
        .. "--daemonize no --logfile %s/redis.log", port, h.quote(dir),
        opts.appendonly and "yes" or "no", h.quote(dir))
      os.execute(string.format("sh -c 'redis-server %s & echo $! >%s/pid' "
        .. ">/dev/null 2>&1", args:gsub("'", "'\\''"), h.quote(dir)))
      local ok = pcall(h.wait_until, function() return answers(port) end,
        10000, "redis-server on port " .. port)
      if ok then
        local pid = tonumber(h.read_file(dir .. "/pid"):match("%d+"))
        return { port = port, url = "redis://127.0.0.1:" .. port, dir = dir,
          pid = pid }
      end
      if opts.port then error("redis-server did not start on port " .. port
        .. ": " .. tostring(h.read_file(dir .. "/redis.log"))) end
    end
  end
  error("no free port for redis-server")
end

--- Stops server (SIGKILL unless how is "TERM") and waits until it is gone.
function M.stop(server, how)
  os.execute(string.format("kill -%s %d 2>/dev/null", how or "KILL",
    server.pid))
  h.wait_until(function()
    local _, status = h.sh("kill -0 " .. server.pid .. " 2>/dev/null")
    return status ~= 0
  end, 10000, "redis-server to exit")
end

--- Removes server's directory (after M.stop).
function M.remove(server) h.sh("rm -rf " .. h.quote(server.dir)) end

--- Runs the Redis command args on server; returns its reply, or raises
-- with Redis's error.
function M.call(server, args)
  local client = redis.client(server.url, "spec")
  local done, reply, err = false, nil, nil
  client:call(args, function(r, e) done, reply, err = true, r, e end)
  local deadline = core.monotonic_ms() + 10000
  while not done do
    if core.monotonic_ms() > deadline then error("no reply to " .. args[1]) end
    core.run_once()
  end
  client:close()
  core.drain()
  if err then error(err, 2) end
  return reply
end

--- The entries of stream name: { { id, fields = { field = value } } }.
function M.entries(server, name)
  local out = {}
  for _, e in ipairs(M.call(server, { "XRANGE", name, "-", "+" })) do
    local fields = {}
    for j = 1, #e[2] - 1, 2 do fields[e[2][j]] = e[2][j + 1] end
    out[#out + 1] = { id = e[1], fields = fields }
  end
  return out
end

return M
