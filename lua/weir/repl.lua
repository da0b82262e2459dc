--- `weir repl`: an interactive LuaJIT prompt with `weir` loaded.
--
-- The REPL is a plain loop at the top level. To get a line it runs the
-- libuv loop one turn at a time (core.run_once) until the line reader
-- handed one over, so timers and jobs on the loop go on while the user
-- types; it then compiles and runs the chunk outside any loop callback, so
-- the chunk may itself run the loop (p:run()). On a terminal, libedit edits
-- lines, completes names on Tab and keeps a history file; from a pipe or a
-- file, lines are read plainly and nothing but results and errors is
-- printed.
local core = require "weir.core"
local errors = require "weir.errors"
local snapshot = require "weir.snapshot"

local M = {}

--- Lines kept in the history file.
M.history_max = 1000

-- -- Printing values ------------------------------------------------------

local MAX_DEPTH = 8    -- tables nested deeper print as {...}
local MAX_ITEMS = 200  -- entries printed per table; the rest are counted
local WIDTH = 78       -- a table that fits in this many columns takes one

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[w] = true
end

local function is_name(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
    and not KEYWORDS[s]
end

-- Orders table keys: by type name, then by value (numbers and strings)
-- or by their text (anything else, which `<` cannot compare).
local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- Renders v as Lua-literal-like text for a reader. indent is the column
-- of the line it starts on, lead the columns before it on that line; open
-- holds the tables being rendered (its ancestors).
local function render(v, indent, lead, open, depth)
  if type(v) == "number" and v % 1 ~= 0 and v == v
    and math.abs(v) ~= math.huge then
    return string.format("%.14g", v)  -- as print shows it, not round-trip
  end
  if type(v) ~= "table" then return snapshot.literal(v) end
  local mt = getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") then
    return tostring(v)
  end
  if open[v] then return "<cycle>" end
  if depth > MAX_DEPTH then return "{...}" end
  open[v] = true
  local items, n, total = {}, #v, 0
  local function add(text)
    total = total + 1
    if total <= MAX_ITEMS then items[total] = text end
  end
  for i = 1, n do
    add(render(rawget(v, i), indent + 2, 0, open, depth + 1))
  end
  local keys = {}
  for k in pairs(v) do
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, key_order)
  for _, k in ipairs(keys) do
    local name = is_name(k) and k
      or "[" .. render(k, indent + 2, 1, open, depth + 1) .. "]"
    add(name .. " = " .. render(rawget(v, k), indent + 2, #name + 3, open,
      depth + 1))
  end
  open[v] = nil
  if total > MAX_ITEMS then
    items[#items + 1] = string.format("... (%d more)", total - MAX_ITEMS)
  end
  if #items == 0 then return "{}" end
  local flat = "{ " .. table.concat(items, ", ") .. " }"
  if indent + lead + #flat <= WIDTH and not flat:find("\n", 1, true) then
    return flat
  end
  local pad = string.rep(" ", indent)
  return "{\n" .. pad .. "  " .. table.concat(items, ",\n" .. pad .. "  ")
    .. "\n" .. pad .. "}"
end

--- Renders values for the prompt: each as a Lua literal (strings quoted,
-- tables nested with sorted keys, a cycle as <cycle>, an object with
-- __tostring through it; a long table one entry per line), separated by
-- tabs. Returns "" for no values.
function M.show(...)
  local parts = {}
  for i = 1, select("#", ...) do
    parts[i] = render((select(i, ...)), 0, 0, {}, 1)
  end
  return table.concat(parts, "\t")
end

-- -- Completion -----------------------------------------------------------

-- The string keys of v and of the tables its metatables' __index chain
-- leads to (an object's methods; a string's are the string library):
-- name -> value, the nearest one winning.
local function members(v)
  local out = {}
  for _ = 1, 16 do
    if type(v) == "table" then
      for k, x in pairs(v) do
        if type(k) == "string" and out[k] == nil then out[k] = x end
      end
    end
    local mt = getmetatable(v)
    v = type(mt) == "table" and rawget(mt, "__index") or nil
    if type(v) ~= "table" then break end
  end
  return out
end

--- Completes the word text (e.g. "weir.tumb", "p:ma", "pri") against the
-- globals of env (default _G): returns the sorted list of candidates that
-- may replace it. After "a.b." come fields of a.b and of its __index
-- chain; after "a:" only functions; a bare word completes globals and
-- keywords. Names starting with "__" are offered only after a "_".
function M.complete(text, env)
  env = env or _G
  local out = {}
  local path, sep, prefix = text:match("^([%a_][%w_.]*)([.:])([%w_]*)$")
  local choices = {}
  if path then
    local ok, v = pcall(function()
      local x = env
      for name in path:gmatch("[^.]+") do x = x[name] end
      return x
    end)
    if not ok or v == nil then return out end
    choices = members(v)
  elseif text:match("^[%a_]?[%w_]*$") then
    prefix = text
    choices = members(env)
    for w in pairs(KEYWORDS) do choices[w] = choices[w] or w end
  else
    return out
  end
  local hidden = prefix:sub(1, 1) ~= "_"
  for k, x in pairs(choices) do
    if k:sub(1, #prefix) == prefix and k:match("^[%a_][%w_]*$")
      and not (hidden and k:sub(1, 2) == "__")
      and (sep ~= ":" or type(x) == "function") then
      out[#out + 1] = path and (path .. sep .. k) or k
    end
  end
  table.sort(out)
  return out
end

-- -- Help -----------------------------------------------------------------

--- help(): prints how to use the prompt and what `weir` exports (read from
-- the module, so it lists whatever weir offers).
function M.help()
  local weir = require "weir"
  local out = { require("weir.command_line").description("repl"), "",
    "weir exports:" }
  local names = {}
  for k in pairs(weir) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = weir[k]
    if type(v) == "function" then
      out[#out + 1] = "  weir." .. k .. "(...)"
    elseif type(v) == "table" then
      local fields = {}
      for f in pairs(members(v)) do
        if f:sub(1, 1) ~= "_" then fields[#fields + 1] = f end
      end
      table.sort(fields)
      out[#out + 1] = "  weir." .. k .. ".{" .. table.concat(fields, ", ")
        .. "}"
    else
      out[#out + 1] = "  weir." .. k .. " = " .. snapshot.literal(v)
    end
  end
  out[#out + 1] = [[

For example:
  p = weir.pipeline { checkpoint_interval = 0 }
  squares = p:sequence(1, 5):map(function(x) return x * x end):collect()
  p:run()
  squares

In the background (the prompt stays; the job runs while it waits; a
chain over several lines goes in do ... end, or each line would run alone):
  p = weir.pipeline { name = "wc" }
  do
    p:read_lines("examples/data/tinyshakespeare.txt")
      :flat_map(function(l, emit) for w in l:gmatch("%a+") do emit(w) end end)
      :key_by(function(w) return w end)
      :reduce(function(a, b) return a end):uid("words")
      :write_lines("out/wc"):uid("output")
  end
  job = p:start()
  job:status()   job:metrics()   sp = job:savepoint("savepoints")
  job:cancel()   job:wait()      weir.jobs()   weir.inspect(sp)
weir.savepoint, weir.cancel and weir.metrics reach jobs of other
processes too, by name or job directory. A script runs as a job of its
own, with worker processes, through weir.submit:
  s = weir.submit("examples/wordcount.lua", { args = { "in.txt", "out" },
    parallelism = 2 })
  s:status()   s:savepoint("savepoints")   s:cancel()   s:wait()]]
  io.stdout:write(table.concat(out, "\n"), "\n")
end

-- -- Reading, compiling and running chunks --------------------------------

--- Compiles a chunk typed at the prompt: as an expression first (so its
-- value prints), else as statements. Returns the function, or nil, the
-- compiler's message and whether the chunk is merely unfinished (the
-- message ends at '<eof>', so more lines may complete it).
function M.compile(src)
  -- The values pass through a function call so that the expression is not
  -- a tail call: error("x") then says where it was raised (stdin:1: x).
  -- An expression ending in a comment hides the ")" and is returned as is.
  local fn = loadstring("return (function(...) return ... end)(" .. src
    .. ")", "=stdin") or loadstring("return " .. src, "=stdin")
  if fn then return fn end
  local err
  fn, err = loadstring(src, "=stdin")
  if fn then return fn end
  return nil, err, err:find("'<eof>'$") ~= nil
end

local function error_text(err)
  if type(err) == "string" then return err end
  return M.show(err)
end

local function traceback_handler(err)
  if os.getenv("WEIR_DEBUG") then
    return debug.traceback(error_text(err), 2)
  end
  return err
end

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Runs a compiled chunk and prints what it returned, or its error.
local function evaluate(fn)
  local r = pack(xpcall(fn, traceback_handler))
  if r[1] then
    if r.n > 1 then io.stdout:write(M.show(unpack(r, 2, r.n)), "\n") end
  else
    io.stdout:flush()
    io.stderr:write(error_text(r[2]), "\n")
  end
  io.stdout:flush()
end

-- Waits on the loop for the next line: returns it, or nil and "eof" or
-- "interrupt". An error that another loop callback raised meanwhile (a
-- background job failing) is printed, and the wait goes on.
local function read_line(session, prompt)
  session.line, session.why, session.done = nil, nil, false
  io.stdout:flush()
  session.reader:prompt(prompt)
  while not session.done do
    local ok, alive = pcall(core.run_once)
    if not ok then
      -- A background job's failure is the job's, not the prompt's.
      local failed = require("weir.background").fail_background(alive)
      if not failed then
        session.reader:notify("weir: " .. error_text(alive))
      end
    elseif not alive and not session.done then
      return nil, "eof"  -- nothing left that could deliver a line
    end
  end
  return session.line, session.why
end

-- Adds a typed line to the history and saves it, so that the history
-- survives even a REPL that is killed. A file that cannot be written is
-- reported once.
local function remember(session, line)
  if line:match("^%s*$") or line == session.last_line then return end
  session.last_line = line
  session.reader:add_history(line)
  if not session.history_path then return end
  local ok, err = session.reader:write_history(session.history_path,
    M.history_max)
  if not ok and not session.write_warned then
    session.write_warned = true
    session.reader:notify("weir: cannot write the history file "
      .. session.history_path .. ": " .. err)
  end
end

local function history_path()
  local path = os.getenv("WEIR_HISTORY")
  if path then return path ~= "" and path or nil end
  local home = os.getenv("HOME")
  return home and home .. "/.weir_history" or nil
end

-- The prompt loop. Returns the exit status.
local function loop(session)
  local chunk  -- the lines of an unfinished chunk
  while true do
    local line, why = read_line(session, chunk and ">> " or "> ")
    if why == "interrupt" then
      chunk = nil
    elseif line == nil then
      if session.terminal then
        io.stdout:write("\n")
      elseif chunk then
        local _, err = M.compile(chunk)
        errors.warn(err)
        return 1
      end
      return 0
    else
      if session.terminal then remember(session, line) end
      local src = chunk and chunk .. "\n" .. line or line
      local fn, err, unfinished = M.compile(src)
      chunk = nil
      if fn then
        evaluate(fn)
      elseif unfinished then
        chunk = src
      else
        io.stdout:flush()
        io.stderr:write(err, "\n")
      end
    end
  end
end

--- Entry point of `weir repl` (weir.command_line has checked that it has
-- no arguments). Returns the exit status: 0 at the end of input, 1 if the
-- input ended in an unfinished chunk.
function M.main()
  local weir = require "weir"
  _G.weir, _G.help = weir, M.help
  local session = {}
  local reader, err = core.line_reader(function(line, why)
    session.line, session.why, session.done = line, why, true
  end)
  if not reader then
    errors.warn("cannot read standard input: " .. err)
    return 1
  end
  session.reader = reader
  session.terminal = reader:mode() == "terminal"
  -- A job run from the prompt says when it ended.
  require("weir.background").on_background_end = function(job)
    local s = job:status()
    reader:notify(string.format("weir: job '%s' %s after %.1f s%s", s.job,
      s.state, s.uptime_ms / 1000, s.error and ": " .. s.error or ""))
  end
  if session.terminal then
    reader:set_completer(function(text) return M.complete(text) end)
    session.history_path = history_path()
    if session.history_path then
      local ok, rerr, name = reader:read_history(session.history_path)
      if not ok and name ~= "ENOENT" then
        errors.warn("cannot read the history file " .. session.history_path
          .. ": " .. rerr)
      end
    end
    io.stdout:write(string.format("weir %s — %s with weir loaded; help() "
      .. "for help, Ctrl-D to quit\n", weir.version, jit.version))
  end
  local ok, status = xpcall(loop, traceback_handler, session)
  reader:close()
  if not ok then
    errors.warn(error_text(status))
    return 1
  end
  return status
end

return M
