--- The messages between the coordinator and its workers, listed once.
--
-- Every message is a table { t = type, field = value, ... } encoded with
-- string.buffer and sent as one frame on a worker's control connection
-- (or, for "hb", its heartbeat connection) after the handshake
-- (weir.handshake) proved the sender knows the job's secret. Both sides
-- build a message with M.encode(type, fields) and read one with
-- M.decode(bytes, from): each checks the message against its entry in
-- MESSAGES, so a field that is missing or of the wrong type, or a message
-- a side does not expect, is an error naming the message and the field
-- rather than a nil read somewhere later.
--
-- A job's life on the wire (one attempt):
--   worker -> coordinator  hello      once set up, with its data address
--   coordinator -> worker  peers      every worker's data address
--   worker -> coordinator  ready      connected to every peer
--   coordinator -> worker  start      every worker is ready: sources run
--   coordinator -> worker  trigger    checkpoint id (final: the last one;
--                                     savepoint: the directory of a full,
--                                     portable one)
--   worker -> coordinator  ack        a task's files for checkpoint id,
--                                     and its timing (ms)
--   worker -> coordinator  decline    checkpoint id cannot complete
--   coordinator -> worker  complete   checkpoint id is published
--   coordinator -> worker  abort      checkpoint id was abandoned
--   coordinator -> worker  commit     commit the sinks (no checkpoints)
--   coordinator -> worker  drain      sources end once their input is
--                                     through (a cancel that drains)
--   worker -> coordinator  ended      a task reached the end of its input
--   worker -> coordinator  metrics    the worker's metric samples
--   worker -> coordinator  error      the worker failed (and exits)
--   coordinator -> worker  stop       stop every task and exit
--   worker -> coordinator  hb         heartbeat (its own thread)
--
-- Between a coordinator and a weir agent (weir.agent, weir.agents), on
-- a connection both ends authenticated with the agents' shared secret:
--   agent -> coordinator   offer      its slots and the host its workers
--                                     listen on
--   coordinator -> agent   ship       the job's script (content-addressed)
--   coordinator -> agent   spawn      start worker process `worker`
--   coordinator -> agent   kill       send a signal to one
--   agent -> coordinator   exited     one ended (status, signal), or could
--                                     not start (message)
--   coordinator -> agent   ping       every HEARTBEAT_MS: the coordinator
--                                     lives (the agent kills its workers
--                                     after AGENT_TIMEOUT_MS without)
--   agent -> coordinator   alive      every HEARTBEAT_MS: the agent lives
--                                     (heartbeat_timeout without: lost)
local buffer = require "string.buffer"

local M = {}

M.HEARTBEAT_MS = 200          -- a worker's (and an agent's) heartbeat period
M.AGENT_TIMEOUT_MS = 5000     -- a coordinator silent this long is lost

local encode, decode = buffer.encode, buffer.decode

--- Every message: who sends it ("worker" or "coordinator") and its
-- fields, name -> Lua type; a type ending in "?" may be nil.
M.MESSAGES = {
  hello = { from = "worker", fields = { worker = "number",
    address = "string" } },
  peers = { from = "coordinator", fields = { addresses = "table" } },
  ready = { from = "worker", fields = {} },
  start = { from = "coordinator", fields = {} },
  trigger = { from = "coordinator", fields = { id = "number",
    final = "boolean?", savepoint = "string?" } },
  ack = { from = "worker", fields = { task = "number", id = "number",
    files = "table", sync_ms = "number?", async_ms = "number?",
    alignment_ms = "number?" } },
  decline = { from = "worker", fields = { id = "number",
    reason = "string" } },
  complete = { from = "coordinator", fields = { id = "number" } },
  abort = { from = "coordinator", fields = { id = "number" } },
  commit = { from = "coordinator", fields = {} },
  drain = { from = "coordinator", fields = {} },
  ended = { from = "worker", fields = { task = "number",
    late_records = "number", failed_records = "number?" } },
  metrics = { from = "worker", fields = { samples = "table" } },
  error = { from = "worker", fields = { worker = "number",
    message = "string", fatal = "boolean" } },
  stop = { from = "coordinator", fields = {} },
  hb = { from = "worker", fields = { worker = "number" } },

  offer = { from = "agent", fields = { slots = "number", host = "string" } },
  ship = { from = "coordinator", to = "agent", fields = { sha = "string",
    bytes = "string" } },
  spawn = { from = "coordinator", to = "agent", fields = {
    worker = "number", args = "table", script_sha = "string",
    script_path = "string",
    script_args = "table", cwd = "string", dirs = "table",
    secret = "string",
    attempt = "number" } },
  kill = { from = "coordinator", to = "agent", fields = { worker = "number",
    signal = "string" } },
  ping = { from = "coordinator", to = "agent", fields = {} },
  alive = { from = "agent", fields = {} },
  exited = { from = "agent", fields = { worker = "number",
    status = "number", signal = "number", message = "string?",
    fatal = "boolean?" } },
}

-- nil when msg is a well-formed message of type t from side `from`, else
-- what is wrong with it.
local function check(msg, from, to)
  if type(msg) ~= "table" then return "not a message" end
  local spec = M.MESSAGES[msg.t]
  if not spec then
    return string.format("unknown message type %q", tostring(msg.t))
  end
  if from and spec.from ~= from then
    return string.format("a %q message comes from the %s, not the %s", msg.t,
      spec.from, from)
  end
  if from and spec.to ~= to then
    return string.format("a %q message is not for the %s", msg.t,
      to or "worker")
  end
  for name, want in pairs(spec.fields) do
    local optional = want:sub(-1) == "?"
    local base = optional and want:sub(1, -2) or want
    local v = msg[name]
    if not (type(v) == base or (optional and v == nil)) then
      return string.format("%q message: field %s is %s, not a %s", msg.t,
        name, type(v), base)
    end
  end
  return nil
end

--- Builds message t with fields and encodes it for the wire.
-- @param t a type of MESSAGES
-- @param fields table of its fields (may be nil for a message without)
-- @return the encoded message (a string)
-- Raises when a field is missing or of the wrong type (a defect of the
-- sending side).
function M.encode(t, fields)
  local msg = { t = t }
  for k, v in pairs(fields or {}) do msg[k] = v end
  local bad = check(msg, nil)
  if bad then error("cannot send " .. bad, 2) end
  return encode(msg)
end

--- Decodes and checks a message that side `from` sent.
-- @param bytes the frame (a string)
-- @param from "worker", "coordinator" or "agent": who may send it
-- @param to nil (a message between a coordinator and its workers) or
--   "agent" (from a coordinator to an agent)
-- @return the message table, or nil and what is wrong with it (bytes
--   string.buffer cannot decode, an unknown type, a bad field)
function M.decode(bytes, from, to)
  local ok, msg = pcall(decode, bytes)
  if not ok then return nil, "undecodable message: " .. tostring(msg) end
  local bad = check(msg, from, to)
  if bad then return nil, bad end
  return msg
end
-- Off trace: Debian's LuaJIT crashes when string.buffer raises from a
-- compiled trace, and these bytes come from another process.
jit.off(M.decode, true)

return M
