--- A Redis client on the job's loop (hiredis's asynchronous client, bound
-- as core.redis_connect): commands go in order on one connection; one
-- that the connection lost before its reply is sent again once the client
-- has reconnected, so only commands that may run twice go through it
-- (reads from given positions, and the sink's commit scripts, which check
-- a marker). Reconnects with exponential backoff (100 ms doubling to 5 s),
-- like Flink's and Kafka's clients, and says so on stderr.
local core = require "weir.core"
local errors = require "weir.errors"

local M = {}

M.BACKOFF_MIN_MS = 100
M.BACKOFF_MAX_MS = 5000

--- Whether weir was built with hiredis (libhiredis-dev).
function M.available() return core.redis_connect ~= nil end

--- Parses a Redis URL: redis://HOST[:PORT][/DB] (port 6379, db 0).
-- @return { host, port, db } | nil, why it is not one
function M.parse_url(url)
  if type(url) ~= "string" then return nil, "not a string" end
  local rest = url:match("^redis://(.+)$")
  if not rest then return nil, "expected redis://HOST[:PORT][/DB]" end
  local hostport, db = rest:match("^([^/]+)/?(%d*)$")
  if not hostport then return nil, "expected redis://HOST[:PORT][/DB]" end
  local host, port = hostport:match("^%[(.+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]+):?(%d*)$") end
  if not host then return nil, "no host" end
  port = port ~= "" and tonumber(port) or 6379
  if port < 1 or port > 65535 then return nil, "port out of range" end
  return { host = host, port = port, db = db ~= "" and tonumber(db) or 0 }
end

local Client = {}
Client.__index = Client

--- Creates a client of the server at url and connects (without blocking).
-- @param url redis://HOST[:PORT][/DB]
-- @param where what the client is for, in messages ("write_redis_stream
--   (job.lua:12)")
-- @return client; raises when url is malformed or hiredis is missing
function M.client(url, where)
  if not M.available() then
    error(where .. ": weir was built without hiredis (install "
      .. "libhiredis-dev and build again: scripts/setup)", 0)
  end
  local addr, why = M.parse_url(url)
  if not addr then error(where .. ": bad url '" .. tostring(url) .. "': "
    .. why, 0) end
  local self = setmetatable({ addr = addr, url = url, where = where,
    queue = {}, inflight = {}, up = false, closed = false,
    backoff = M.BACKOFF_MIN_MS, failures = 0 }, Client)
  self:connect()
  return self
end

-- Sends command c ({ args, cb }) on the connection.
function Client:send(c)
  self.inflight[#self.inflight + 1] = c
  local function on_reply(reply, rerr, lost)
    self:on_reply(c, reply, rerr, lost)
  end
  local ok, err
  if c.raw then
    ok, err = self.conn:command_raw(c.raw, on_reply)
  else
    ok, err = self.conn:command(c.args, on_reply)
  end
  if not ok then
    self.inflight[#self.inflight] = nil
    self:lost(err, self.conn)
  end
end

-- The reply to c; lost: the connection went first (c stays in flight,
-- and lost() queues it again, in order).
function Client:on_reply(c, reply, err, lost)
  if lost then return end
  local inflight = self.inflight
  for i = 1, #inflight do
    if inflight[i] == c then table.remove(inflight, i) break end
  end
  c.cb(reply, err)
end

function Client:connect()
  local a = self.addr
  local conn, err
  conn, err = core.redis_connect(a.host, a.port, function(kind, why)
    if kind == "connected" then
      if self.conn == conn then self:on_connected() end
    else
      self:lost(why, conn)
    end
  end)
  if not conn then return self:lost(err) end
  self.conn = conn
  if a.db ~= 0 then
    self:send({ args = { "SELECT", a.db }, cb = function(_, serr)
      if serr then
        errors.log("error", self.where .. ": cannot select database "
          .. a.db .. ": " .. serr)
      end
    end })
  end
end

function Client:on_connected()
  self.up = true
  if self.failures > 0 then
    errors.note(string.format("%s: reconnected to %s", self.where,
      self.url))
  end
  self.failures, self.backoff = 0, M.BACKOFF_MIN_MS
  local queue = self.queue
  self.queue = {}
  for _, c in ipairs(queue) do self:send(c) end
end

-- The connection conn went (or never came; conn nil: it could not even
-- be made): what was in flight waits in the queue; a new connection after
-- the backoff. News of a connection already given up is ignored.
function Client:lost(why, conn)
  if conn and conn ~= self.conn then return end
  self.up, self.conn = false, nil
  for i = #self.inflight, 1, -1 do
    table.insert(self.queue, 1, self.inflight[i])
  end
  self.inflight = {}
  if self.closed then return end
  self.failures = self.failures + 1
  if self.failures == 1 or self.failures % 10 == 0 then
    errors.warn(string.format("%s: lost %s (%s); reconnecting every %d ms "
      .. "at most", self.where, self.url, tostring(why or "closed"),
      M.BACKOFF_MAX_MS))
  end
  local timer
  timer = core.timer(function()
    timer:close()
    self.timer = nil
    if not self.closed then self:connect() end
  end)
  self.timer = timer
  timer:start(self.backoff, 0)
  self.backoff = math.min(self.backoff * 2, M.BACKOFF_MAX_MS)
end

--- Sends command args (e.g. { "XADD", "s", "*", "f", "v" }); cb(reply,
-- err) gets the reply (weir.core's shapes: strings, numbers, false for
-- nil, tables for arrays) or nil and Redis's error. A command the
-- connection lost is sent again after the reconnect (see the header).
function Client:call(args, cb)
  local c = { args = args, cb = cb }
  if self.up then self:send(c) else self.queue[#self.queue + 1] = c end
end

--- Sends a command already in the Redis protocol (RESP bytes, see
-- M.bulk), as call does otherwise.
function Client:call_raw(bytes, cb)
  local c = { raw = bytes, cb = cb }
  if self.up then self:send(c) else self.queue[#self.queue + 1] = c end
end

--- Appends s (a string or number) to string.buffer buf as a RESP bulk
-- string ("$<length>\r\n<bytes>\r\n").
function M.bulk(buf, s)
  s = tostring(s)
  buf:put("$", #s, "\r\n", s, "\r\n")
end

--- Whether a command is queued or waits for its reply.
function Client:busy() return #self.queue > 0 or #self.inflight > 0 end

--- Closes the connection once the replies due have come (queued commands
-- not yet sent are dropped). Safe to call more than once.
function Client:close()
  self.closed = true
  if self.timer then self.timer:close() self.timer = nil end
  if self.conn then self.conn:close() end
end

return M
