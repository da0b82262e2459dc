--- Who may use a job's HTTP API (weir.http_api). On a loopback address
-- anyone on the machine may read (GET), and a request that changes the
-- job (POST: savepoint, cancel) is accepted from a connection of the
-- job's own user -- looked up in the kernel's socket table,
-- /proc/net/tcp and /proc/net/tcp6, by the peer's address and port -- or
-- with the token. On any other address every request needs the token
-- (--http-token-file FILE: the file's first line), sent as
-- "Authorization: Bearer TOKEN". There is no encryption: a token crosses
-- the network in the clear (use a private network or a tunnel).
--
-- A POST that a web page of another origin makes a browser send
-- (cross-site request forgery) carries that page's Origin header: such a
-- POST is refused whoever sends it.
local core = require "weir.core"

local M = {}

--- Whether host (an address as --http takes it) is a loopback address.
function M.is_loopback(host)
  return host == "localhost" or host == "::1" or host:match("^127%.") ~= nil
end

--- Reads the token of --http-token-file path: its first line, which
-- must hold at least 16 characters.
-- @return token | nil, message
function M.read_token(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "--http-token-file: cannot open " .. err end
  local line = f:read("*l") or ""
  f:close()
  line = line:gsub("%s+$", "")
  if #line < 16 then
    return nil, string.format("--http-token-file: %s holds no token of at "
      .. "least 16 characters on its first line", path)
  end
  return line
end

-- Compares two strings in time that depends on their lengths only.
local function same(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    diff = bit.bor(diff, bit.bxor(a:byte(i), b:byte(i)))
  end
  return diff == 0
end

-- The hexadecimal form of "HOST:PORT" in /proc/net/tcp (IPv4: the
-- address as a little-endian 32-bit word) or /proc/net/tcp6 (::1 only),
-- and which of the two files lists it.
local function proc_address(host, port)
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  local p = string.format("%04X", port)
  if a then
    return string.format("%02X%02X%02X%02X:%s", d, c, b, a, p), "tcp"
  elseif host == "::1" then
    return "00000000000000000000000001000000:" .. p, "tcp6"
  end
end

--- The user id that owns the client socket of a connection to this
-- process from peer ("tcp:HOST:PORT", conn:peer()), found in the
-- kernel's socket table.
-- @return uid | nil when it is not found (not a local peer)
function M.peer_uid(peer)
  local host, port = tostring(peer):match("^tcp:%[?(.-)%]?:(%d+)$")
  if not host then return nil end
  local addr, file = proc_address(host, tonumber(port))
  if not addr then return nil end
  local f = io.open("/proc/net/" .. file, "rb")
  if not f then return nil end
  local uid
  for line in f:lines() do
    local l, u = line:match("^%s*%d+: (%x+:%x+) %x+:%x+ %x+ %x+:%x+ "
      .. "%x+:%x+ %x+%s+(%d+)")
    if l == addr then uid = tonumber(u) break end
  end
  f:close()
  return uid
end

--- Checks a request against the server's policy.
-- @param policy { token = string or nil, loopback = bool (the server's
--   address), host = "HOST:PORT" it listens on }
-- @param req a request of weir.http ({ method, headers, peer })
-- @return nil when allowed | status (401, 403), message
function M.check(policy, req)
  local h = req.headers or {}
  local auth = h["authorization"]
  local given = auth and auth:match("^[Bb]earer%s+(%S+)")
  local has_token = policy.token and given and same(given, policy.token)
  if req.method == "POST" and h["origin"]
      and h["origin"] ~= "http://" .. (h["host"] or "") then
    return 403, "a POST from a page of another origin ("
      .. h["origin"] .. ") is refused"
  end
  if has_token then return nil end
  if given and policy.token then return 401, "the token is not valid" end
  if not policy.loopback then
    return 401, "this address needs the token of --http-token-file "
      .. "(header Authorization: Bearer TOKEN)"
  end
  if req.method == "GET" or req.method == "HEAD" then return nil end
  local uid = M.peer_uid(req.peer)
  if uid == core.getuid() then return nil end
  return 403, string.format("only the job's own user (uid %d) or a "
    .. "client with the token may %s here", core.getuid(), req.method)
end

return M
