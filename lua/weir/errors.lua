--- Errors a user sees: one table of messages, and the attribution of a
-- failure to the operator (and the line of the script) that caused it.
--
-- Operator wrappers and user functions are registered here; when a step
-- of the job raises, `handler` (an xpcall message handler, so the stack is
-- still intact) walks the stack to the innermost registered function,
-- which names the operator, and reads the record from the wrapper's local
-- `record`. Nothing is paid per record.
local M = {}

M.messages = {
  user_function = "%s failed on record %s: %s",
  user_function_key = "%s failed for key %s: %s",
  invalid_key = "%s: key %s is %s; keys are strings, numbers, booleans "
    .. "or arrays of those",
  unserializable = "checkpoint %d failed: %s cannot serialize the state of "
    .. "key %s: %s is a %s (state holds only nil, booleans, numbers, "
    .. "strings and tables)",
  unsendable = "%s cannot send record %s to another worker: %s is a %s "
    .. "(records that cross workers hold only nil, booleans, numbers, "
    .. "strings and tables)",
  unsendable_other = "%s cannot send record %s to another worker: %s",
  map_nil = "map returned nil; use filter or flat_map to drop records",
  bad_timestamp = "the timestamp is %s; with_timestamps needs a number "
    .. "(ms since the epoch)",
  no_timestamp = "the record has no timestamp; call with_timestamps before "
    .. "key_by(...):window(...)",
}

local registered = setmetatable({}, { __mode = "k" })

-- LuaJIT shortens a chunk name "@path" of LUA_IDSIZE (60) bytes or more
-- to "..." and its last 56 bytes in every message it makes (a syntax
-- error, error("...") at a level, a runtime error): a script in a deep
-- directory would be named by a fragment. Chunks named here are put
-- back in full: shortened name -> path.
local LUA_IDSIZE = 60
local shortened = {}

--- Remembers that the chunk loaded as "@" .. path is path, so that
-- messages naming it (see M.full_names) name it as the user gave it.
function M.name_chunk(path)
  if #path >= LUA_IDSIZE then
    shortened["..." .. path:sub(-(LUA_IDSIZE - 4))] = path
  end
end

--- Returns msg (a string) with the chunk names LuaJIT shortened in it
-- put back in full (for the chunks named by M.name_chunk).
function M.full_names(msg)
  for short, path in pairs(shortened) do
    msg = msg:gsub(short:gsub("%p", "%%%0"), (path:gsub("%%", "%%%%")))
  end
  return msg
end

--- Registers fn (a user function or an operator's wrapper) as belonging to
-- node, so failures inside it are attributed to that operator.
function M.register(fn, node)
  if fn then registered[fn] = node end
  return fn
end

--- Returns "kind (file:line)" for a graph node, naming where the script
-- defined it.
function M.describe(node)
  return node.kind .. " (" .. node.defined_at .. ")"
end

--- Raises "kind (file:line): message" for graph node (message formatted
-- from fmt and its arguments, as string.format does), with no position
-- added: what a source or sink says when its input or output fails.
function M.fail(node, fmt, ...)
  error(string.format("%s: " .. fmt, M.describe(node), ...), 0)
end

--- Returns a short, readable rendering of a value (at most max bytes).
function M.repr(v, max)
  max = max or 80
  local s
  if type(v) == "string" then
    s = string.format("%q", #v > max and v:sub(1, max) .. "..." or v)
    s = s:gsub("\\\n", "\\n")
  elseif type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do
      parts[#parts + 1] = tostring(k) .. "=" .. tostring(x)
      if #parts >= 8 then parts[#parts + 1] = "..." break end
    end
    s = "{" .. table.concat(parts, ", ") .. "}"
  else
    s = tostring(v)
  end
  if #s > max + 10 then s = s:sub(1, max) .. "..." end
  return s
end

local Error = {}
Error.__index = Error
Error.__tostring = function(e) return e.message end

--- Creates an error object with a message (and optional fields).
function M.new(message, fields)
  local e = fields or {}
  e.message = message
  return setmetatable(e, Error)
end

--- Returns true if v is an error object made by this module.
function M.is(v) return getmetatable(v) == Error end

--- Raises an invalid-key error; the handler adds the operator.
function M.raise_invalid_key(k, why)
  error(M.new(nil, { kind = "invalid_key", key = k, why = why }), 0)
end

--- Raises an unserializable-state error; the checkpoint adds the operator.
function M.raise_unserializable(k, path, t)
  error(M.new(nil, { kind = "unserializable", key = k, path = path,
                     type = t }), 0)
end

local function find_local(level, name)
  for i = 1, 200 do
    local n, v = debug.getlocal(level + 1, i)
    if n == nil then return nil end
    if n == name then return v, true end
  end
end

--- xpcall message handler for a job's steps: turns any error into an
-- error object whose message names the operator, where the script
-- defined it and the record (truncated); keeps the traceback.
function M.handler(err)
  if M.is(err) and err.message then return err end
  local tb = debug.traceback(tostring(err), 2)
  for level = 2, 100 do
    local info = debug.getinfo(level, "f")
    if not info then break end
    local node = registered[info.func]
    if node then
      local where = M.describe(node)
      if M.is(err) and err.kind == "invalid_key" then
        return M.new(string.format(M.messages.invalid_key, where,
          M.repr(err.key), err.why), { traceback = tb })
      end
      local rec, has = find_local(level, "record")
      if not has then rec, has = find_local(level + 1, "record") end
      local msg = M.full_names(tostring(err))
      if has then
        msg = string.format(M.messages.user_function, where, M.repr(rec), msg)
      else
        local k, has_key = find_local(level + 1, "key")
        if has_key then
          msg = string.format(M.messages.user_function_key, where, M.repr(k),
                              msg)
        else
          msg = where .. " failed: " .. msg
        end
      end
      return M.new(msg, { traceback = tb })
    end
  end
  return M.new(M.full_names(tostring(err)), { traceback = tb,
    internal = true })
end

-- -- Log lines ---------------------------------------------------------------

local LEVELS = { error = 1, warn = 2, info = 3, debug = 4 }
local TAGS = { "ERROR", "WARN ", "INFO ", "DEBUG" }
local log = { level = LEVELS.info, timestamps = false }

--- Configures the log lines on stderr.
-- @param opts { level = "error" | "warn" | "info" | "debug" (lines less
--   severe are not written; default info), timestamps = true (each line
--   starts with its UTC time to the ms and its level, as
--   "2026-12-07T07:05:01.123Z WARN  weir: ...") }; raises on an unknown
--   level
function M.configure_log(opts)
  if opts.level ~= nil then
    log.level = LEVELS[opts.level]
      or error("unknown log level '" .. tostring(opts.level) .. "'", 2)
  end
  if opts.timestamps ~= nil then log.timestamps = opts.timestamps end
end

--- Writes one log line "weir: message" on stderr at level ("error",
-- "warn", "info", "debug"), if the configured level lets it through.
function M.log(level, msg)
  local rank = LEVELS[level]
  if rank > log.level then return end
  if log.timestamps then
    local ms = require("weir.core").time_ms()
    io.stderr:write(os.date("!%Y-%m-%dT%H:%M:%S", math.floor(ms / 1000)),
      string.format(".%03dZ ", math.floor(ms % 1000)), TAGS[rank],
      " weir: ", msg, "\n")
  else
    io.stderr:write("weir: ", msg, "\n")
  end
end

--- Reports something the user should know that is not a failure (a
-- damaged checkpoint skipped, a restart, an expired checkpoint) on stderr
-- as one line "weir: message" at level warn. Replaceable, e.g. by specs.
function M.warn(msg) M.log("warn", msg) end

--- Tells the user what the job does (which checkpoint it restores, ...)
-- on stderr, as one "weir: " line at level info.
function M.note(msg) M.log("info", msg) end

--- A line for whoever looks into the job's workings, at level debug.
function M.debug(msg) M.log("debug", msg) end

-- The innermost operator whose registered function is on the stack
-- (level and up), or nil.
local function failing_node(level)
  for l = level + 1, 200 do
    local info = debug.getinfo(l, "f")
    if not info then return nil end
    local node = registered[info.func]
    if node then return node end
  end
end

--- For an operator with on_error = "skip": push(record, ...) that
-- catches a failure of node's own code (not of the operators after it in
-- its chain, which fail as usual) and calls on_failed(record, message,
-- ...) instead; message names what failed, as a job error would.
-- @return the wrapped push
function M.skipping(push, node, on_failed)
  local function handler(err)
    if failing_node(2) == node then
      return { skipped = M.full_names(tostring(M.is(err) and err.message
        or err)) }
    end
    return M.handler(err)
  end
  return function(record, ...)
    local ok, e = xpcall(push, handler, record, ...)
    if not ok then
      if type(e) == "table" and e.skipped then
        return on_failed(record, e.skipped, ...)
      end
      error(e, 0)
    end
  end
end

--- Wraps a loop callback so an error raised in it is attributed to an
-- operator while the stack is still intact (see M.handler), then raised
-- on (so core.run() raises it).
function M.guard(fn)
  return function(...)
    local ok, err = xpcall(fn, M.handler, ...)
    if not ok then error(err, 0) end
  end
end

return M
