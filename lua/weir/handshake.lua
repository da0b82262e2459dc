--- Authentication of every connection between the processes of a job
-- (engine/auth.h): worker to worker (data), worker to coordinator (control
-- and heartbeats).
--
-- The coordinator makes a secret for the job and hands it to each worker
-- it starts in the worker's environment (never on the command line, which
-- other users read in /proc), with the job's attempt the worker belongs to.
-- The accepting side of a connection sends a fresh nonce; the connecting
-- side answers with its claim (role, worker index, attempt) and the
-- HMAC-SHA256 of nonce and claim under the secret. Until that answer is
-- verified the accepting side reads frames of at most RESPONSE_BYTES and
-- decodes none: a peer that does not know the secret is refused and its
-- connection closed, with one "weir: " line, and nothing it sent reaches
-- the job. Frames of an authenticated peer are trusted (DESIGN.md, "Trust
-- boundary").
local ffi = require "ffi"
local core = require "weir.core"
local errors = require "weir.errors"

local M = {}

M.SECRET_ENV = "WEIR_JOB_SECRET"    -- the job's secret, in hex
M.ATTEMPT_ENV = "WEIR_JOB_ATTEMPT"  -- the attempt a worker belongs to
M.SECRET_BYTES = 32
M.NONCE_BYTES = 32
M.RESPONSE_BYTES = 44               -- role, worker, attempt, HMAC

--- A new secret for a job: SECRET_BYTES from the system's random source.
function M.new_secret()
  return assert(core.random_bytes(M.SECRET_BYTES))
end

--- bytes (a string) in lower-case hex, two digits a byte.
function M.hex(bytes)
  return (bytes:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end))
end

--- The environment entries ("NAME=VALUE") that hand secret and attempt
-- to a worker, added to this process's own environment.
function M.worker_env(secret, attempt)
  local env = {}
  for _, entry in ipairs(core.environ()) do
    local name = entry:match("^([^=]*)=")
    if name ~= M.SECRET_ENV and name ~= M.ATTEMPT_ENV then
      env[#env + 1] = entry
    end
  end
  env[#env + 1] = M.SECRET_ENV .. "=" .. M.hex(secret)
  env[#env + 1] = M.ATTEMPT_ENV .. "=" .. attempt
  return env
end

--- Takes the secret and attempt from a worker's environment (removing
-- them, so that processes the script starts do not inherit the secret).
-- @return secret, attempt | nil, message
function M.take_worker_env()
  local hex, attempt = core.take_env(M.SECRET_ENV),
    tonumber(core.take_env(M.ATTEMPT_ENV))
  if not hex or #hex ~= 2 * M.SECRET_BYTES or hex:find("[^%x]")
      or not attempt then
    return nil, string.format("no job secret in the environment (%s, %s): "
      .. "workers are started by weir run", M.SECRET_ENV, M.ATTEMPT_ENV)
  end
  return hex:gsub("%x%x", function(b) return string.char(tonumber(b, 16))
  end), attempt
end

--- The rule for a peer that authenticates while another connection of
-- the same peer and role may exist: a newer attempt replaces the old
-- connection (a worker that reconnects after a network partition healed,
-- or that was restarted), an older or equal one is refused, and so is any
-- attempt older than floor (a worker of an attempt that was given up).
-- @param current attempt of the peer's connection, or nil when none
-- @param claimed attempt the new connection claims
-- @param floor oldest attempt accepted
-- @return "new" | "replace" | nil, reason
function M.admit(current, claimed, floor)
  if claimed < floor then
    return nil, string.format("attempt %d is older than attempt %d",
      claimed, floor)
  end
  if current == nil then return "new" end
  if claimed <= current then
    return nil, string.format("it is already connected with attempt %d",
      current)
  end
  return "replace"
end

-- The bytes of a frame received as a string or as (pointer, length).
local function frame_string(b, len)
  if type(b) == "string" then return b end
  return ffi.string(ffi.cast("const char *", b), len)
end

--- The secret agents and the coordinators that use them share (weir
-- agent, weir run --agents): the first line of path (--secret-file), or
-- without one of ~/.config/weir/secret, which is created (mode 0600, 32
-- random bytes in hex) when missing, so a user's own hosts that share a
-- home directory need no set-up.
-- @param path the secret file, or nil for the default
-- @return the secret (a string of at least 16 bytes) | nil, message
--   naming the file and what is wrong with it
function M.shared_secret(path)
  local default = not path
  if default then
    local home = os.getenv("HOME")
    if not home or home == "" then
      return nil, "HOME is not set: name a secret file with --secret-file"
    end
    core.mkdir(home .. "/.config", tonumber("700", 8))
    core.mkdir(home .. "/.config/weir", tonumber("700", 8))
    path = home .. "/.config/weir/secret"
  end
  local f = io.open(path, "rb")
  if not f and default then
    -- Written empty, made private, filled, then renamed into place: no
    -- other user ever reads it, and no reader sees a short secret.
    local tmp = path .. ".tmp." .. core.getpid()
    local out = io.open(tmp, "wb")
    if not out then return nil, "cannot create the secret file " .. path end
    core.chmod(tmp, tonumber("600", 8))
    out:write(M.hex(M.new_secret()), "\n")
    out:close()
    local ok, err = core.rename(tmp, path)
    if not ok then return nil, "cannot create " .. path .. ": " .. err end
    f = io.open(path, "rb")
  end
  if not f then
    return nil, "cannot read the secret file " .. path .. " (--secret-file)"
  end
  local secret = (f:read("*l") or ""):gsub("%s+$", "")
  f:close()
  if #secret < 16 then
    return nil, string.format("the secret file %s must hold at least 16 "
      .. "characters on its first line", path)
  end
  return secret
end

--- Challenges a connection just accepted, and decodes nothing of it
-- until it answered (see the module's comment).
-- @param conn the accepted connection
-- @param secret the job's secret
-- @param mode nil (frames as strings) or "pointer" (see conn:on_frame)
-- @param where who accepts, for the log ("worker 2", "the coordinator")
-- @param admit fn(role, worker, attempt, conn) -> handler | nil, reason:
--   decides on an authenticated claim; handler(b, len, code) then gets
--   every later frame as on_frame would
-- @param secret_name what the secret is called in the log (default
--   "job's secret")
-- Runs in a loop callback; raises nothing for what the peer sends.
function M.accept(conn, secret, mode, where, admit, secret_name)
  local nonce = assert(core.random_bytes(M.NONCE_BYTES))
  local handler
  local function refuse(reason)
    errors.warn(string.format("%s refused a connection: %s", where, reason))
    conn:close()
  end
  conn:on_frame(function(b, len, code)
    if handler then return handler(b, len, code) end
    if not b then
      -- A peer that leaves before answering did nothing; a frame over the
      -- limit is a malformed answer.
      if code ~= "EOF" and code ~= "ECONNRESET" then
        refuse("before authenticating, it sent " .. tostring(len))
      else
        conn:close()
      end
      return
    end
    local role, worker, attempt = core.auth_verify(secret, nonce, b,
      type(b) == "string" and #b or len)
    if not role then
      return refuse(string.format("it did not prove it knows the %s",
        secret_name or "job's secret"))
    end
    local h, reason = admit(role, worker, attempt, conn)
    if not h then
      return refuse(string.format("%s connection of worker %d: %s", role,
        worker, reason))
    end
    handler = h
    conn:set_max_frame(core.MAX_FRAME_BYTES)
  end, mode, M.RESPONSE_BYTES)
  conn:send(nonce)
end

--- Answers the challenge of the accepting side on a connection just
-- made, then passes frames on.
-- @param conn the connection
-- @param secret the job's secret
-- @param mode nil or "pointer" (see conn:on_frame)
-- @param claim { role = "data" | "control" | "heartbeat", worker = index,
--   attempt = n }
-- @param on_ready fn() once the answer is sent: the caller may send
-- @param handler fn(b, len, code) for every later frame (as on_frame);
--   fn(nil, message) also when the challenge was not one
function M.connect(conn, secret, mode, claim, on_ready, handler)
  local answered = false
  conn:on_frame(function(b, len, code)
    if answered or not b then return handler(b, len, code) end
    local nonce = frame_string(b, len)
    if #nonce ~= M.NONCE_BYTES then
      return handler(nil, "its challenge is not one", "EAUTH")
    end
    answered = true
    conn:set_max_frame(core.MAX_FRAME_BYTES)
    conn:send(assert(core.auth_respond(secret, nonce, claim.role,
      claim.worker, claim.attempt)))
    on_ready()
  end, mode, M.NONCE_BYTES)
end

return M
