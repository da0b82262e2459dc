--- JSON as weir writes it (`weir inspect --format json`, `--metrics`,
-- and `weir.json.encode` in a job) and reads it (`weir.json.decode`):
-- every JSON text weir produces goes through M.encode, which encodes
-- strings and fractional numbers with lua-cjson and decides itself how a
-- Lua table becomes JSON, so that no table loses a field.
--
-- lua-cjson (2.1.0, as Debian ships it) turns a table with numeric keys
-- that is not a sequence into nulls or refuses it, refuses boolean and
-- table keys, writes the numeric keys of a mixed table as strings, and
-- prints at most 14 significant digits. The rule here, for a Lua value v:
--
-- * nil is null; booleans and strings are themselves; NaN and the
--   infinities are null (JSON has no such numbers).
-- * An integral number of magnitude up to 2^53 prints with every digit
--   (1436918400123); any other number with up to 14 significant digits
--   (1436918400123.5, 0.33333333333333, 1e+300).
-- * An empty table is [], and a table whose keys are exactly 1..n an array.
-- * A table whose keys are all strings is an object, its keys sorted.
-- * Any other table (numeric keys that are not 1..n, such as windows by
--   start time or timers by time; boolean or table keys, such as
--   composite keys; or string keys mixed with numeric ones) is a list of
--   entries { "key": k, "value": v }, k and v encoded by the same rule,
--   sorted by key: numbers ascending, then strings, then false and true,
--   then tables (by their JSON text).
--
-- A table that contains itself, or a value of another type (function,
-- coroutine, userdata, cdata), is an error.
--
-- Debian's lua-cjson installs its module for Lua 5.1 in
-- /usr/lib/<triplet>/lua/5.1/, which Debian's LuaJIT (and so the weir
-- executable) searches by default.
local cjson = require("cjson").new()

local M = {}

-- lua-cjson 2.1.0 accepts at most 14.
cjson.encode_number_precision(14)

local MAX_EXACT = 2 ^ 53  -- integers beyond may not be represented exactly

local function encode_number(v)
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if v % 1 == 0 and v >= -MAX_EXACT and v <= MAX_EXACT then
    if v == 0 then return "0" end  -- not "-0"
    return string.format("%.0f", v)
  end
  return cjson.encode(v)
end

-- lua-cjson escapes "/" as "\/", which JSON allows but does not need.
-- Every "/" is escaped so, and a backslash of the text as "\\", so a
-- backslash followed by "/" in its output is always such an escape.
local function encode_string(s)
  return (cjson.encode(s):gsub("\\/", "/"))
end

local encode

-- The order of entry keys: numbers, strings, booleans, tables.
local rank = { number = 1, string = 2, boolean = 3, table = 4 }

local function entry_less(a, b)
  local ra, rb = rank[type(a.key)], rank[type(b.key)]
  if ra ~= rb then return ra < rb end
  if ra == 3 then return not a.key and b.key end
  if ra == 4 then return a.text < b.text end
  return a.key < b.key
end

-- Returns "array", "object" or "entries" for table t, and its size.
local function shape(t)
  local n, strings = 0, true
  for k in pairs(t) do
    n = n + 1
    if type(k) ~= "string" then strings = false end
  end
  if n == 0 then return "array", 0 end
  if strings then return "object", n end
  for i = 1, n do
    if t[i] == nil then return "entries", n end
  end
  return "array", n
end

local function encode_table(t, seen)
  if seen[t] then error("json: a table contains itself", 0) end
  seen[t] = true
  local kind, n = shape(t)
  local parts = {}
  if kind == "array" then
    for i = 1, n do parts[i] = encode(t[i], seen) end
    seen[t] = nil
    return "[" .. table.concat(parts, ",") .. "]"
  elseif kind == "object" then
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    for i, k in ipairs(keys) do
      parts[i] = encode_string(k) .. ":" .. encode(t[k], seen)
    end
    seen[t] = nil
    return "{" .. table.concat(parts, ",") .. "}"
  end
  local entries = {}
  for k, v in pairs(t) do
    local text = encode(k, seen)
    entries[#entries + 1] = { key = k, text = text, value = v }
  end
  table.sort(entries, entry_less)
  for i, e in ipairs(entries) do
    parts[i] = '{"key":' .. e.text .. ',"value":' .. encode(e.value, seen)
      .. "}"
  end
  seen[t] = nil
  return "[" .. table.concat(parts, ",") .. "]"
end

function encode(v, seen)
  local t = type(v)
  if t == "string" then return encode_string(v) end
  if t == "number" then return encode_number(v) end
  if t == "table" then return encode_table(v, seen) end
  if t == "boolean" then return v and "true" or "false" end
  if t == "nil" then return "null" end
  error("json: cannot encode a " .. t .. " (JSON holds nil, booleans, "
    .. "numbers, strings and tables)", 0)
end

local cjson_null = cjson.null

-- v with every JSON null removed: an object's null field is absent, an
-- array's null element a hole.
local function drop_nulls(v)
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do
    if x == cjson_null then v[k] = nil else drop_nulls(x) end
  end
  return v
end

local function cjson_decode(text) return cjson.decode(text) end

--- Decodes one JSON text (lua-cjson): objects and arrays become tables,
-- null becomes nil (an object's field is absent, an array's element a
-- hole), numbers are Lua numbers (doubles). For use in operators:
-- `map(weir.json.decode)`.
-- @param text a string
-- @return the value
-- Raises "weir.json.decode: invalid JSON (<where and why>)" on text that
-- is not JSON, nested deeper than 1000, or not a string; an operator
-- that raises so names itself and the record in the job's error.
function M.decode(text)
  if type(text) ~= "string" then
    error("weir.json.decode: expected a string, got a " .. type(text), 0)
  end
  local ok, v = pcall(cjson_decode, text)
  if not ok then
    error("weir.json.decode: invalid JSON (" .. tostring(v):gsub(
      "^.-: ", "", 1) .. ")", 0)
  end
  if v == cjson_null then return nil end
  return drop_nulls(v)
end

--- Encodes v (nil, a boolean, number, string or table of those) as one
-- line of JSON text, by the rule in this module's header. Raises
-- "json: ..." on a table that contains itself or a value of another type.
function M.encode(v)
  return encode(v, {})
end

return M
