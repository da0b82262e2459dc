--- Runtime instances of sources. make(node, emit, env) returns:
--   open()              acquires the input; raises a clear error if missing
--   produce(n) -> ended, count [, waiting]
--                       emits up to n records; ended is true once the
--                       input ended; waiting: none came and none will
--                       until the source calls env.wake()
--   snapshot(id, skip) -> state
--                       the position (operator state): the ranges still to
--                       read, so a restore at another parallelism can hand
--                       them to other subtasks. While emit runs, the
--                       position is that of the record being emitted;
--                       skip > 0 (records the chain already passed on from
--                       it, see weir.replay) is kept with the
--                       first range as `skip`
--   (a range's `skip`, when the source starts reading the range, goes to
--   env.skip_outputs(skip): the chain drops that many of what it passes on)
--   stop(), close()     the job stops / its files close (optional)
--   progress() -> bytes_read, bytes_total
--                       how far a bounded input is read (optional; cheap
--                       enough to call once a second, no system call)
--   restore(olds)       takes the ranges of the old subtasks j with
--                       j % parallelism == this subtask (olds: { { subtask,
--                       state } } of every old subtask)
local core = require "weir.core"
local ffi = require "ffi"
local line_reader = require "weir.line_reader"
local replay = require "weir.replay"

local M = {}

-- The ranges old subtasks left that fall to this subtask.
local function restored_ranges(olds, env)
  local ranges = {}
  for _, o in ipairs(olds) do
    if o.subtask % env.parallelism == env.subtask then
      for _, r in ipairs(o.state.ranges) do
        ranges[#ranges + 1] = { unpack(r) }
        ranges[#ranges].skip = r.skip
      end
    end
  end
  return ranges
end

-- The bytes a subtask restored from olds (see restored_ranges) counts as
-- already read of an input of total bytes: what the old subtasks had read
-- (the input less the bytes their ranges left, left_bytes(range) each),
-- shared among the new subtasks in proportion to the bytes each took over.
-- Every subtask computes the same cumulative shares, so that they add up
-- to what was read exactly.
local function restored_read(olds, env, total, left_bytes)
  local p, left, all = env.parallelism, {}, 0
  for k = 0, p - 1 do left[k] = 0 end
  for _, o in ipairs(olds) do
    local k = o.subtask % p
    for _, range in ipairs(o.state.ranges) do
      local n = left_bytes(range)
      left[k], all = left[k] + n, all + n
    end
  end
  local read = math.max(0, total - all)
  if all == 0 then return env.subtask == 0 and read or 0 end
  local function share(upto)
    if upto >= all then return read end
    return math.floor(read * upto / all)
  end
  local before = 0
  for k = 0, env.subtask - 1 do before = before + left[k] end
  return share(before + left[env.subtask]) - share(before)
end

-- The source starts reading range: the outputs its first record already
-- gave before a checkpoint (see snapshot's skip) are dropped.
local start_range = replay.resume_skip

-- Keeps skip with the first range of a snapshot's ranges.
local function keep_skip(ranges, skip)
  if skip and skip > 0 and ranges[1] then ranges[1].skip = skip end
  return ranges
end

ffi.cdef [[
typedef struct {
  size_t gl_pathc;
  char** gl_pathv;
  size_t gl_offs;
  int gl_flags;
  void* gl_closedir;
  void* gl_readdir;
  void* gl_opendir;
  void* gl_lstat;
  void* gl_stat;
} weir_glob_t;
int glob(const char* pattern, int flags, void* errfunc, weir_glob_t* pglob);
void globfree(weir_glob_t* pglob);
]]
local GLOB_NOMATCH = 3

--- The paths pattern matches, sorted by name: glibc's glob(3), so `*`,
-- `?` and `[...]` work in any component and never match a name that
-- starts with "." (such as weir's uncommitted `.part-*` files).
-- @return { paths } (empty when nothing matches) | nil, why it failed
function M.glob(pattern)
  local g = ffi.new("weir_glob_t")
  local r = ffi.C.glob(pattern, 0, nil, g)
  if r == GLOB_NOMATCH then return {} end
  if r ~= 0 then
    return nil, r == 1 and "out of memory" or "a directory cannot be read"
  end
  local out = {}
  for i = 0, tonumber(g.gl_pathc) - 1 do out[i + 1] = ffi.string(g.gl_pathv[i]) end
  ffi.C.globfree(g)
  return out
end

-- The files node.path names: one path, a list of paths, or a pattern with
-- *, ? or [...] (a glob, see M.glob), expanded in name order.
local function input_files(node)
  local path = node.path
  if type(path) == "table" then return path end
  if not path:find("[*?%[]") then return { path } end
  local files, err = M.glob(path)
  if not files then
    error(string.format("read_lines (%s): cannot expand %s: %s",
      node.defined_at, path, err), 0)
  end
  if #files == 0 then
    error(string.format("read_lines (%s): no file matches %s",
      node.defined_at, path), 0)
  end
  return files
end

-- How node.path reads in a message and in a checkpoint.
local function describe_input(path)
  if type(path) == "table" then return table.concat(path, ", ") end
  return path
end

M.SPLITS_PER_SUBTASK = 64   -- splits of a file input per subtask, at most
M.MIN_SPLIT_BYTES = 65536   -- the smallest split of a file input

--- The byte ranges { { first, last } } (last exclusive; math.huge for the
-- end of the input) that subtask i of p reads of an input of total bytes:
-- the input is cut into splits of equal size (at most SPLITS_PER_SUBTASK
-- per subtask, none under MIN_SPLIT_BYTES) and split k goes to subtask
-- k % p. The subtasks thus read the input in interleaved splits, all of
-- them near the same place in it at any time, rather than each from its
-- own part: in a time-ordered file their records stay close in event time
-- (contiguous parts would start the second reader halfway through the
-- file's time, and every window downstream would wait for the first
-- reader to get there). Flink's file source hands out splits in order
-- the same way.
function M.splits(total, i, p)
  if p == 1 then return { { 0, math.huge } } end
  local size = math.max(M.MIN_SPLIT_BYTES,
    math.ceil(total / (p * M.SPLITS_PER_SUBTASK)))
  local parts, k = {}, i
  while k * size < total do
    local last = (k + 1) * size
    parts[#parts + 1] = { k * size, last >= total and math.huge or last }
    k = k + p
  end
  return parts
end

-- The ranges { from, to, file } a fresh subtask reads of files (of sizes
-- bytes each): its splits (M.splits) of all their bytes, cut where files
-- end, each from the first line that starts in it (first_line(path, byte)
-- gives its offset). Also returns, for the progress count, the bytes of
-- its splits before their first line (all of a split in which no line
-- starts): the subtask with the line before reads them.
local function fresh_ranges(files, sizes, env, first_line)
  local total = 0
  for _, size in ipairs(sizes) do total = total + size end
  local ranges, before_lines = {}, 0
  for _, part in ipairs(M.splits(total, env.subtask, env.parallelism)) do
    local base = 0
    for k, path in ipairs(files) do
      local first, to = part[1] - base, part[2] - base
      if first < sizes[k] and to > 0 then
        first = math.max(first, 0)
        local from = first_line(path, first)
        if to >= sizes[k] then to = math.huge end
        if from < sizes[k] and from < to then
          ranges[#ranges + 1] = { from, to, path }
          before_lines = before_lines + from - first
        else
          before_lines = before_lines + math.min(to, sizes[k]) - first
        end
      end
      base = base + sizes[k]
    end
  end
  return ranges, before_lines
end

--- read_lines: ranges { from, to, file } of byte offsets in a file (to
-- exclusive; lines that start before `to` belong to the range). The input
-- is one file, several, or a glob; a fresh subtask reads the lines that
-- start in its splits of all the input's bytes (the files one after the
-- other; see M.splits), so a split may span files. Lines are what
-- weir.line_reader says they are, and offsets count every byte it
-- consumed, so they are exact whatever bytes the lines hold.
function M.read_lines(node, emit, env)
  if node.follow then
    return require("weir.follow").read_lines(node, emit, env, M.glob)
  end
  local reader, ranges, r, offset, stop = nil, nil, 1, nil, nil
  local current  -- the file reader reads
  local inst = {}
  -- The progress count: bytes_done counts the ranges left behind and the
  -- bytes counted as read at the start (see fresh_ranges and
  -- restored_read); the rest is the bytes of the ranges, each from its
  -- first line to its end (span), so that it is what a checkpoint's
  -- ranges leave at any time.
  local size_of, restored = {}, nil
  local bytes_done, bytes_total = 0, 0
  local function span(range)
    return math.max(0, math.min(range[2], size_of[range[3]]) - range[1])
  end
  local function open_file(path)
    if reader and current == path then return end
    if reader then reader:close() end
    local err
    reader, err = line_reader.open(path, { keep_cr = node.keep_cr,
      context = "read_lines (" .. node.defined_at .. ")" })
    if not reader then
      error(string.format("read_lines (%s): cannot open input: %s",
        node.defined_at, err), 0)
    end
    current = path
  end
  local function enter(k)
    if k > 1 then bytes_done = bytes_done + span(ranges[k - 1]) end
    r = k
    local range = ranges[k]
    if range then
      offset, stop = range[1], range[2]
      open_file(range[3])
      reader:seek(offset)
      start_range(range, env)
    else
      offset, stop = nil, nil
    end
  end
  -- The offset of the first line that starts at or after byte `from`:
  -- past the line that holds byte from - 1. The splits of a long line all
  -- end where it ends: the last answer is kept for them (it holds for
  -- every from in last_from..last_start of the same file).
  local last_path, last_from, last_start
  local function line_start(from)
    if from == 0 then return 0 end
    if current == last_path and from >= last_from and from <= last_start then
      return last_start
    end
    reader:seek(from - 1)
    last_path, last_from = current, from
    last_start = from - 1 + (reader:skip() or 0)
    return last_start
  end
  function inst.open()
    local files = input_files(node)
    local sizes, total = {}, 0
    for k, path in ipairs(files) do
      open_file(path)
      sizes[k] = reader.size_bytes
      size_of[path] = sizes[k]
      total = total + sizes[k]
    end
    if ranges then
      bytes_done = restored_read(restored, env, total, function(range)
        -- A restored range may name a file the input no longer matches.
        local path = range[3]
        if not size_of[path] then
          local st = core.stat(path)
          size_of[path] = st and st.size or 0
        end
        return span(range)
      end)
    else
      ranges, bytes_done = fresh_ranges(files, sizes, env,
        function(path, byte)
          open_file(path)
          return line_start(byte)
        end)
    end
    bytes_total = bytes_done
    for _, range in ipairs(ranges) do
      bytes_total = bytes_total + span(range)
    end
    enter(1)
  end
  -- The bytes of this subtask's share of the input read, and in all. The
  -- range being read counts up to the line being emitted, and at most up
  -- to its end (its last line may end past it).
  function inst.progress()
    if not offset then return bytes_done, bytes_total end
    local range = ranges[r]
    return bytes_done + math.min(offset - range[1], span(range)), bytes_total
  end
  -- `offset` is the start of the line being emitted until emit returns;
  -- it advances past the line's bytes right after, here and nowhere else.
  function inst.produce(n)
    local count = 0
    while count < n do
      if not offset then return true, count end
      if offset >= stop then
        enter(r + 1)
      else
        local line, consumed = reader:next()
        if line == nil then
          enter(r + 1)
        else
          emit(line)
          offset = offset + consumed
          count = count + 1
        end
      end
    end
    return false, count
  end
  function inst.snapshot(_, skip)
    local left = {}
    if ranges[r] then left[1] = { offset, stop, ranges[r][3] } end
    for k = r + 1, #ranges do left[#left + 1] = ranges[k] end
    return { path = describe_input(node.path), ranges = keep_skip(left, skip) }
  end
  function inst.restore(olds)
    local path = describe_input(node.path)
    for _, o in ipairs(olds) do
      if o.state.path ~= path then
        error(string.format("read_lines (%s): the checkpoint's position is "
          .. "in %s, the job reads %s", node.defined_at, o.state.path,
          path), 0)
      end
      -- Ranges of checkpoints from before several files were read name
      -- no file: theirs is the one path.
      for _, range in ipairs(o.state.ranges) do
        range[3] = range[3] or o.state.path
      end
    end
    ranges = restored_ranges(olds, env)
    restored = olds
  end
  function inst.close()
    if reader then reader:close() reader = nil end
  end
  return inst
end

--- sequence: ranges { next, last }. A fresh subtask i of p emits the i-th
-- of p contiguous parts of first..last.
function M.sequence(node, emit, env)
  local count = math.max(0, node.last - node.first + 1)
  local i, p = env.subtask, env.parallelism
  local ranges = { { node.first + math.floor(count * i / p),
                     node.first + math.floor(count * (i + 1) / p) - 1 } }
  local inst = {}
  function inst.produce(n)
    local range = ranges[1]
    while range and range[1] > range[2] do
      table.remove(ranges, 1)
      range = ranges[1]
    end
    if not range then return true, 0 end
    start_range(range, env)
    local nxt = range[1]
    local stop = math.min(range[2], nxt + n - 1)
    for record = nxt, stop do
      emit(record)
      range[1] = record + 1
    end
    return false, stop - nxt + 1
  end
  function inst.snapshot(_, skip)
    local left = {}
    for k, range in ipairs(ranges) do
      left[k] = { range[1], range[2], skip = range.skip }
    end
    return { ranges = keep_skip(left, skip) }
  end
  function inst.restore(olds) ranges = restored_ranges(olds, env) end
  return inst
end

--- nexmark: the Nexmark benchmark's events (weir.nexmark); ranges
-- { instance, instances, next } of generator instances, next being the
-- number of events the instance emitted. A fresh subtask i of p is
-- instance i of p; a subtask that took over several instances in a
-- restore at another parallelism emits their rest one after the other,
-- each with its own timestamps.
function M.nexmark(node, emit, env)
  local nexmark = require "weir.nexmark"
  local o = node.generator
  local ranges = { { env.subtask, env.parallelism, 0 } }
  local range, generate, size   -- the range being emitted and its instance
  local inst = {}
  local function enter()
    range = ranges[1]
    if range then
      local g = nexmark.generator { events = o.events, rate = o.rate,
        seed = o.seed, base_time = o.base_time, instance = range[1],
        instances = range[2] }
      generate, size = g.generate, g.size
      start_range(range, env)
    end
  end
  function inst.produce(n)
    if range ~= ranges[1] then enter() end
    while range and range[3] >= size do
      table.remove(ranges, 1)
      enter()
    end
    if not range then return true, 0 end
    local first = range[3]
    local stop = math.min(size, first + n) - 1
    for k = first, stop do
      emit(generate(k))
      range[3] = k + 1
    end
    return false, stop - first + 1
  end
  function inst.snapshot(_, skip)
    local left = {}
    for k, r in ipairs(ranges) do
      left[k] = { r[1], r[2], r[3], skip = r.skip }
    end
    return { generator = { events = o.events, rate = o.rate, seed = o.seed,
      base_time = o.base_time }, ranges = keep_skip(left, skip) }
  end
  function inst.restore(olds)
    for _, old in ipairs(olds) do
      for _, k in ipairs({ "events", "rate", "seed", "base_time" }) do
        if old.state.generator[k] ~= o[k] then
          error(string.format("nexmark (%s): the checkpoint's generator has "
            .. "%s = %s, the job's has %s", node.defined_at, k,
            tostring(old.state.generator[k]), tostring(o[k])), 0)
        end
      end
    end
    ranges = restored_ranges(olds, env)
    range = nil
  end
  return inst
end

return M
