-- A client of read_socket with its write-ahead log, for the specs: sends
-- the lines "line-1" ... "line-N" in batches, waits for each batch's
-- "ok <n>" before the next, and when the connection is lost (the job was
-- killed) connects again and resends every line not acknowledged, as a
-- client of a durable receiver does. After every acknowledgement it
-- writes the count acknowledged so far to PROGRESS (replaced atomically).
-- With GATE, it waits before sending past line k * N / 4 (k = 1, 2) until
-- the file GATE-k exists, so a spec can act while it surely has lines
-- left to send. Exits 0 once all N are acknowledged, 1 after 60 s
-- without that.
--   luajit spec/socket_client.lua PORT N PROGRESS [BATCH [PACE_MS [GATE]]]
-- Or sends TEXT as it is (@FILE: the file's bytes), then (with "close")
-- closes the connection, or (with "acked N") waits for "ok N", or prints
-- what it receives until the other side closes it (at most 10 s):
--   luajit spec/socket_client.lua PORT raw TEXT [close | acked N]
package.cpath = "build/lib/?.so;" .. package.cpath
local core = require "weir.core"

if arg[2] == "raw" then
  local got, done = {}, false
  local t = core.timer(function() done = true end)
  t:start(10000, 0)
  core.connect("tcp:127.0.0.1:" .. arg[1], function(err, c)
    if err then io.stderr:write(err, "\n") os.exit(1) end
    local want = arg[4] == "acked" and "ok " .. arg[5] .. "\n"
    c:on_data(function(bytes)
      if bytes then
        got[#got + 1] = bytes
        if want and table.concat(got):find(want, 1, true) then
          c:close()
          done = true
        end
        return
      end
      c:close()
      done = true
    end)
    local text = arg[3]
    if text:sub(1, 1) == "@" then
      local f = assert(io.open(text:sub(2), "rb"))
      text = f:read("*a")
      f:close()
    end
    c:write(text)
    if arg[4] == "close" then
      c:shutdown()
      done = true
    end
  end)
  while not done do core.run_once() end
  t:close()
  core.run()  -- the shutdown's write goes out
  io.stdout:write(table.concat(got))
  os.exit(0)
end

local port, total, progress = tonumber(arg[1]), tonumber(arg[2]), arg[3]
local batch, pace = tonumber(arg[4] or 100), tonumber(arg[5] or 5)
local gate = arg[6]
local acked, deadline = 0, core.monotonic_ms() + 60000
local conn, base, sent, inbox
local timer

local function report()
  local f = assert(io.open(progress .. ".tmp", "w"))
  f:write(acked, "\n")
  f:close()
  os.rename(progress .. ".tmp", progress)
end

-- Whether the next batch waits at a gate that is still closed.
local function at_gate()
  if not gate then return false end
  for k = 1, 2 do
    local f = io.open(gate .. "-" .. k)
    if f then f:close() end
    if sent >= k * total / 4 and sent < k * total / 4 + batch and not f then
      return true
    end
  end
  return false
end

local function send_batch()
  if at_gate() then return timer:start(5, 0) end
  local lines = {}
  for i = sent + 1, math.min(total, sent + batch) do
    lines[#lines + 1] = "line-" .. i .. "\n"
  end
  sent = sent + #lines
  conn:write(table.concat(lines))
end

local function lost()
  if conn then conn:close() conn = nil end
  timer:start(50, 0)  -- connect again
end

local function on_data(bytes)
  if not bytes then return lost() end
  inbox = inbox .. bytes
  for n in inbox:gmatch("ok (%d+)\n") do
    acked = math.max(acked, base + tonumber(n))
  end
  inbox = inbox:match("[^\n]*$")
  report()
  if acked >= total then
    conn:close()
    conn = nil
    timer:close()
    return
  end
  if acked >= sent then timer:start(pace, 0) end
end

local function connect()
  if core.monotonic_ms() > deadline then os.exit(1) end
  core.connect("tcp:127.0.0.1:" .. port, function(err, c)
    if err then return timer:start(50, 0) end
    conn, base, sent, inbox = c, acked, acked, ""
    c:on_data(on_data)
    send_batch()
  end)
end

timer = core.timer(function()
  if conn then
    if acked >= sent then send_batch() end
  else
    connect()
  end
end)
report()
connect()
core.run()
os.exit(acked >= total and 0 or 1)
