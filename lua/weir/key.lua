--- Keys: validation and the canonical byte encoding that key groups hash.
-- A key is a string, a number (integral floats are integers), a boolean, or
-- an array of those (a composite key). Equal keys have equal encodings on
-- every machine, so they land in the same key group everywhere.
local core = require "weir.core"
local ffi = require "ffi"

local M = {}

local format, concat = string.format, table.concat

local function encode_scalar(k)
  local t = type(k)
  if t == "string" then
    return "s" .. #k .. ":" .. k
  elseif t == "number" then
    if k ~= k then return nil, "NaN" end
    if k == math.floor(k) and k >= -2^53 and k <= 2^53 then
      return format("i%.0f", k)
    end
    return format("f%.17g", k)
  elseif t == "boolean" then
    return k and "b1" or "b0"
  end
  return nil, "a " .. t
end

--- Encodes a key canonically.
-- @param k the key
-- @return the encoding (string), or nil and why the key is invalid
function M.encode(k)
  if type(k) ~= "table" then return encode_scalar(k) end
  local n, parts = #k, {}
  if n == 0 then return nil, "an empty or non-array table" end
  for i = 1, n do
    local e, why = encode_scalar(k[i])
    if not e then return nil, "a composite key with " .. why .. " at [" .. i .. "]" end
    parts[i] = e
  end
  for k2 in pairs(k) do
    if type(k2) ~= "number" or k2 < 1 or k2 > n or k2 % 1 ~= 0 then
      return nil, "a table that is not an array"
    end
  end
  return "a" .. n .. ":" .. concat(parts)
end

--- The key group of a string key (k, #k, max_parallelism) -> 0 ..
-- max_parallelism-1: the same as M.key_group(k, max_parallelism), without
-- building the encoding. A C function called through the FFI, so that
-- routers need no table of every key's group.
M.string_key_group = ffi.cast("uint32_t (*)(const char *, size_t, uint32_t)",
  core.key_group_string_fn())

--- Returns the key group (0 .. max_parallelism-1) of a key, or nil and why
-- the key is invalid.
function M.key_group(k, max_parallelism)
  local e, why = M.encode(k)
  if not e then return nil, why end
  return core.key_group(e, max_parallelism)
end

return M
