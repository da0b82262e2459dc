--- CSV records (RFC 4180) for line sources: weir.csv.decode(line) gives
-- a line's fields, weir.csv.decoder{ columns } a function that gives them
-- by column name, weir.csv.encode(fields) the line for write_lines.
--
-- The grammar is LPeg's (Debian's lua-lpeg; the CSV example of the LPeg
-- manual, with the separator a parameter): fields are separated by the
-- separator (default ","); a field in double quotes may hold the
-- separator and doubled quotes ("" for "); a quote inside an unquoted
-- field, or text after a closing quote, is malformed. A line source gives
-- one line per record, so a quoted field cannot hold a line break: such a
-- record is reported as an unterminated quote. One "\r" at the end of a
-- line is already stripped by the line sources (RFC 4180's CRLF).
local lpeg = require "lpeg"

local M = {}

local P, C, Cs, Ct, Cp = lpeg.P, lpeg.C, lpeg.Cs, lpeg.Ct, lpeg.Cp

local grammars = {}

-- The pattern of a record for separator sep (one byte), cached:
-- matches a whole line, capturing { fields } and the position after.
local function grammar(sep)
  local g = grammars[sep]
  if g then return g end
  local quoted = P'"' * Cs(((P(1) - '"') + P'""' / '"')^0) * P'"'
  local plain = C((1 - (P(sep) + '"'))^0)
  local field = quoted + plain
  g = Ct(field * (P(sep) * field)^0) * Cp()
  grammars[sep] = g
  return g
end

local function check_separator(sep, level)
  if sep == nil then return "," end
  if type(sep) ~= "string" or #sep ~= 1 or sep == '"' or sep == "\n" then
    error("weir.csv: the separator must be one byte other than '\"' and "
      .. "\"\\n\", got " .. tostring(sep), level + 1)
  end
  return sep
end

-- Why line does not parse: at is the byte where the record stops making
-- sense (sep its separator).
local function malformed(line, at, sep)
  local rest = line:sub(at)
  local quotes = select(2, rest:gsub('"', ""))
  local field_start = at == 1 or line:sub(at - 1, at - 1) == sep
  if field_start and rest:sub(1, 1) == '"' and quotes % 2 == 1 then
    return string.format("weir.csv.decode: unterminated quoted field "
      .. "(a quoted field cannot hold a line break here): %q", line:sub(1, 60))
  end
  return string.format("weir.csv.decode: malformed CSV at byte %d (near "
    .. "%q): a quote may only start a field, and a quoted field must end "
    .. "at a separator", at, rest:sub(1, 20))
end

--- The fields of one CSV record.
-- @param line a string (one record, without its line end)
-- @param opts { separator = one byte (default ",") } (optional)
-- @return { field, ... } (strings; an empty line is { "" })
-- Raises "weir.csv.decode: ..." naming the byte where line is malformed,
-- or an unterminated quote.
function M.decode(line, opts)
  if type(line) ~= "string" then
    error("weir.csv.decode: expected a string, got " .. type(line), 2)
  end
  local sep = check_separator(opts and opts.separator, 2)
  local fields, after = grammar(sep):match(line)
  if after ~= #line + 1 then  -- the match stopped where it went wrong
    error(malformed(line, after or 1, sep), 2)
  end
  return fields
end

--- A function(line) -> { column = field } for map: the fields of each
-- record by the names of its columns.
-- @param opts { columns = { names } (needed), separator = one byte
--   (default ","), skip_header = true to give nil for a record whose
--   fields are the column names (the header line; use filter after it, or
--   flat_map) }
-- The function raises like M.decode, and when a record has another number
-- of fields than there are columns.
function M.decoder(opts)
  if type(opts) ~= "table" or type(opts.columns) ~= "table"
      or #opts.columns == 0 then
    error("weir.csv.decoder: expected { columns = { names } }", 2)
  end
  local columns, n = opts.columns, #opts.columns
  local sep = check_separator(opts.separator, 2)
  local header = table.concat(columns, sep)
  local skip = opts.skip_header == true
  return function(line)
    if skip and line == header then return nil end
    local fields = M.decode(line, { separator = sep })
    if #fields ~= n then
      error(string.format("weir.csv: a record of %d fields, for %d "
        .. "columns (%s)", #fields, n, table.concat(columns, ", ")), 2)
    end
    local out = {}
    for i = 1, n do out[columns[i]] = fields[i] end
    return out
  end
end

--- One CSV line (without line end) for fields: a field that holds the
-- separator, a quote, "\r" or "\n" is quoted, its quotes doubled.
-- @param fields { field, ... } (strings or numbers)
-- @param opts { separator = one byte (default ",") } (optional)
function M.encode(fields, opts)
  if type(fields) ~= "table" then
    error("weir.csv.encode: expected a list of fields, got "
      .. type(fields), 2)
  end
  local sep = check_separator(opts and opts.separator, 2)
  local out = {}
  for i, v in ipairs(fields) do
    local s = tostring(v)
    if s:find('[\r\n"]') or s:find(sep, 1, true) then
      s = '"' .. s:gsub('"', '""') .. '"'
    end
    out[i] = s
  end
  return table.concat(out, sep)
end

return M
