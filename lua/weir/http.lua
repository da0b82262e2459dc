--- HTTP/1.1 for the coordinator's API: requests read from weir's own libuv
-- TCP connections (core.listen) and parsed by Debian's libhttp-parser
-- (core.http_parser, engine/lua_http.c), responses written back on the
-- same connection. libhttp-parser rather than libh2o or libmicrohttpd:
-- it is a parser only, so the server stays on the job's own loop and
-- sockets (no second event loop, no threads calling into Lua), and the
-- rest — routing a handful of paths, writing a response — is a page of
-- Lua.
--
-- A connection's requests are answered one at a time, in order
-- (pipelined requests wait for the one before); a malformed request gets
-- 400 and the connection is closed.
local core = require "weir.core"
local errors = require "weir.errors"

local M = {}

M.DEFAULT_HOST = "127.0.0.1"
M.DEFAULT_PORT = 8081   -- Flink's
M.LAST_PORT = 8090      -- the default port taken: the next free one up to

local REASONS = { [200] = "OK", [400] = "Bad Request", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed",
  [500] = "Internal Server Error", [503] = "Service Unavailable" }

--- Whether weir was built with libhttp-parser.
function M.available() return core.http_parser ~= nil end

--- Parses an --http value: "off", "PORT" or "ADDR:PORT".
-- @return { host, port } | false for off | nil, message
function M.parse(spec)
  if spec == "off" then return false end
  local host, port = tostring(spec):match("^(.-):?(%d+)$")
  port = tonumber(port)
  if not port or port < 1 or port > 65535 then
    return nil, string.format("--http must be [ADDR:]PORT or off, got '%s'",
      tostring(spec))
  end
  if host == "" then host = M.DEFAULT_HOST end
  return { host = host, port = port }
end

-- Writes one response on conn.
local function respond(conn, status, ctype, body, keep_alive)
  conn:write(string.format("HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
    .. "Content-Length: %d\r\nCache-Control: no-store\r\nConnection: %s"
    .. "\r\n\r\n", status, REASONS[status] or "Status", ctype, #body,
    keep_alive and "keep-alive" or "close") .. body)
  if not keep_alive then conn:shutdown() end
end

-- Serves one connection: handler(request, reply) per request, where
-- request is { method, url, path, query, headers, body, peer } and
-- reply(status, content_type, body) answers it (now or later).
local function serve_conn(conn, handler, conns)
  local parser = core.http_parser()
  conns[conn] = true
  local queue, busy, closed = {}, false, false
  local peer = conn:peer()
  local function next_request()
    if busy or closed or #queue == 0 then return end
    local req = table.remove(queue, 1)
    busy = true
    req.path, req.query = req.url:match("^([^?]*)%??(.*)$")
    req.peer = peer
    local replied = false
    local ok, err = pcall(handler, req, function(status, ctype, body)
      if replied or closed then return end
      replied, busy = true, false
      respond(conn, status, ctype, body, req.keep_alive)
      if not req.keep_alive then closed = true return end
      next_request()
    end)
    if not ok and not replied then
      errors.warn("http: " .. req.method .. " " .. req.path .. " failed: "
        .. tostring(err))
      replied, busy = true, false
      respond(conn, 500, "application/json", '{"error":"internal error"}',
        false)
      closed = true
    end
  end
  conn:on_data(function(bytes)
    if not bytes then
      closed = true
      conns[conn] = nil
      return conn:close()
    end
    if closed then return end
    local reqs, err = parser:feed(bytes)
    if not reqs then
      closed = true
      return respond(conn, 400, "text/plain", err .. "\n", false)
    end
    for _, r in ipairs(reqs) do queue[#queue + 1] = r end
    next_request()
  end)
end

--- Listens for HTTP on addr ({ host, port }, see M.parse); when the port
-- is taken and try_next, on the next free one up to LAST_PORT.
-- @param handler fn(request, reply) (see serve_conn)
-- @return server (:close() stops listening and closes every connection),
--   "HOST:PORT" | nil, message
function M.listen(addr, handler, try_next)
  if not M.available() then
    return nil, "weir was built without libhttp-parser (libhttp-parser-dev)"
  end
  local last = try_next and math.max(addr.port, M.LAST_PORT) or addr.port
  local first_err
  for port = addr.port, last do
    local conns = {}
    local server, err = core.listen(string.format("tcp:%s:%d", addr.host,
      port), errors.guard(function(conn) serve_conn(conn, handler, conns) end))
    if server then
      local where = server:address():gsub("^tcp:", "")
      return { close = function()
        server:close()
        for conn in pairs(conns) do conn:close() end
        conns = {}
      end }, where
    end
    first_err = first_err or err
  end
  if try_next and last > addr.port then
    return nil, string.format("ports %d to %d on %s are taken (%s)",
      addr.port, last, addr.host, first_err)
  end
  return nil, string.format("cannot listen on %s:%d: %s", addr.host,
    addr.port, first_err)
end

return M
