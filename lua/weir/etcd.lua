--- A client of etcd's v3 JSON API (the gRPC gateway every etcd 3.4
-- serves, https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/) on
-- weir's own loop: leases, keys and the compare-and-put transaction that
-- leader election is made of (etcd's own election recipe: a key created
-- under a lease by whoever finds it absent; the lease's end deletes it).
--
-- Each request is one HTTP/1.1 POST on a connection of its own
-- (core.connect), answered JSON parsed by lua-cjson (weir.json); keys and
-- values travel in base64, 64-bit numbers as strings, as the API has them.
-- Every call is asynchronous: cb(err, ...) runs on the loop, err a
-- one-line message naming etcd's address and what failed.
local core = require "weir.core"
local errors = require "weir.errors"
local json = require "weir.json"

local M = {}

M.TIMEOUT_MS = 5000  -- a request not answered by then fails

local guard = errors.guard

local Client = {}
Client.__index = Client

--- Parses "etcd://HOST:PORT".
-- @return { host, port, address = "HOST:PORT" } | nil, message
function M.parse(url)
  local host, port = tostring(url):match("^etcd://([^:/]+):(%d+)/?$")
  if not host then
    return nil, string.format("--ha must be etcd://HOST:PORT, got '%s'",
      tostring(url))
  end
  return { host = host, port = tonumber(port), address = host .. ":" .. port }
end

--- A client of the etcd at url ("etcd://HOST:PORT").
-- @return the client | nil, message (a malformed url)
function M.new(url)
  local where, err = M.parse(url)
  if not where then return nil, err end
  return setmetatable({ where = where }, Client)
end

--- POSTs body (a table, as JSON) to path ("/v3/..."); cb(err, reply)
-- with the decoded JSON reply of a 200 answer.
function Client:call(path, body, cb)
  local address = self.where.address
  local done = false
  local conn, timer
  local function finish(err, reply)
    if done then return end
    done = true
    if timer then timer:close() end
    if conn then conn:close() end
    cb(err, reply)
  end
  timer = core.timer(guard(function()
    finish(string.format("etcd %s: %s did not answer within %d ms", address,
      path, M.TIMEOUT_MS))
  end))
  timer:start(M.TIMEOUT_MS, 0)
  local text = json.encode(body)
  local parser = core.http_parser("response")
  local ok, err = core.connect("tcp:" .. address, guard(function(cerr, c)
    if cerr then
      return finish(string.format("cannot reach etcd %s: %s", address, cerr))
    end
    conn = c
    local function feed(bytes)
      local responses, perr = parser:feed(bytes)
      if not responses then
        return finish(string.format("etcd %s: %s: %s", address, path, perr))
      end
      local r = responses[1]
      if not r then return end
      local reply = r.body ~= "" and select(2, pcall(json.decode, r.body))
      if r.status ~= 200 or type(reply) ~= "table" then
        return finish(string.format("etcd %s: %s answered %d: %s", address,
          path, r.status, (r.body:gsub("%s+", " "))))
      end
      finish(nil, reply)
    end
    c:on_data(guard(function(bytes)
      if bytes then return feed(bytes) end
      feed("")
      finish(string.format("etcd %s: %s: the connection ended without an "
        .. "answer", address, path))
    end))
    c:write(string.format("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: "
      .. "application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
      .. "%s", path, address, #text, text))
  end))
  if not ok then
    return finish(string.format("cannot reach etcd %s: %s", address, err))
  end
  -- The connection in progress: finish closes it (giving up the connect
  -- when the timer fires first).
  conn = conn or err
end

--- Grants a lease of ttl_s seconds; cb(err, id) with its id (a string).
function Client:grant(ttl_s, cb)
  self:call("/v3/lease/grant", { TTL = ttl_s }, function(err, reply)
    if err then return cb(err) end
    if not reply.ID then return cb("etcd granted no lease") end
    cb(nil, tostring(reply.ID))
  end)
end

--- Renews lease id; cb(err, ttl_s) with the seconds it now has left (0
-- or less: it had expired, and whatever it held is gone).
function Client:keepalive(id, cb)
  self:call("/v3/lease/keepalive", { ID = id }, function(err, reply)
    if err then return cb(err) end
    local result = reply.result or reply
    cb(nil, tonumber(result.TTL) or 0)
  end)
end

--- Revokes lease id (what it holds is deleted at once); cb(err).
function Client:revoke(id, cb)
  self:call("/v3/lease/revoke", { ID = id }, function(err) cb(err) end)
end

--- Puts key = value (strings), under lease id if given; cb(err,
-- revision).
function Client:put(key, value, lease, cb)
  self:call("/v3/kv/put", { key = core.base64(key),
    value = core.base64(value), lease = lease }, function(err, reply)
    if err then return cb(err) end
    cb(nil, tonumber(reply.header and reply.header.revision))
  end)
end

--- Reads key; cb(err, value or nil, kv) where kv is etcd's record
-- (create_revision, mod_revision, lease as strings).
function Client:get(key, cb)
  self:call("/v3/kv/range", { key = core.base64(key) }, function(err, reply)
    if err then return cb(err) end
    local kv = reply.kvs and reply.kvs[1]
    if not kv then return cb(nil, nil) end
    cb(nil, core.unbase64(kv.value or ""), kv)
  end)
end

--- Creates key = value under lease id only if the key does not exist
-- (the campaign of an election); cb(err, won, holder) with won true and
-- holder the revision it was created at, or won false and holder the
-- value of whoever holds it.
function Client:create(key, value, lease, cb)
  local k = core.base64(key)
  self:call("/v3/kv/txn", {
    compare = { { key = k, target = "CREATE", result = "EQUAL",
      create_revision = "0" } },
    success = { { request_put = { key = k, value = core.base64(value),
      lease = lease } } },
    failure = { { request_range = { key = k } } },
  }, function(err, reply)
    if err then return cb(err) end
    if reply.succeeded then
      return cb(nil, true, tonumber(reply.header and reply.header.revision))
    end
    local range = reply.responses and reply.responses[1]
      and reply.responses[1].response_range
    local kv = range and range.kvs and range.kvs[1]
    cb(nil, false, kv and core.unbase64(kv.value or "") or nil)
  end)
end

--- Puts key = value only while guard_key still holds guard_value (a
-- leader's write, fenced: a deposed leader's is refused); cb(err, done).
function Client:put_if(guard_key, guard_value, key, value, cb)
  self:call("/v3/kv/txn", {
    compare = { { key = core.base64(guard_key), target = "VALUE",
      result = "EQUAL", value = core.base64(guard_value) } },
    success = { { request_put = { key = core.base64(key),
      value = core.base64(value) } } },
  }, function(err, reply)
    if err then return cb(err) end
    cb(nil, reply.succeeded == true)
  end)
end

return M
