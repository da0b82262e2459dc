--- Reading a checkpoint's or savepoint's state from Lua (as Flink's State
-- Processor API does): require "weir".snapshot.open(path). Every checksum
-- is verified when the snapshot is opened; state is then decoded one file
-- and one key group at a time, so large state is never loaded all at once.
local checkpoint = require "weir.checkpoint_storage"
local core = require "weir.core"
local incremental = require "weir.incremental"
local key = require "weir.key"
local rocksdb_checkpoint = require "weir.rocksdb_checkpoint"
local rundir = require "weir.rundir"
local state = require "weir.state"

local M = {}

local Snapshot = {}
Snapshot.__index = Snapshot

local verify

--- Opens the snapshot directory at path (chk-<n> or a savepoint), which
-- anyone may have written: the manifest, every file and every key group
-- are checked (each key group decoded once, then dropped).
-- @return Snapshot | nil, message (missing, not a weir snapshot, damaged
--   or of another format version; a damaged file is named)
function M.open(path)
  local st = core.stat(path)
  if not st then return nil, path .. ": no such snapshot" end
  if st.type ~= "directory" then
    return nil, path .. ": not a weir snapshot (a snapshot is a directory "
      .. "holding a _manifest)"
  end
  local manifest, err = checkpoint.read_manifest(path)
  if not manifest then return nil, err end
  local snap = setmetatable({ path = path, manifest = manifest }, Snapshot)
  local ok, verr = pcall(verify, snap)
  if not ok then return nil, tostring(verr) end
  return snap
end

--- The operators with state: { { uid, kind, parallelism, files } }, in
-- the manifest's order.
function Snapshot:operators()
  local files = {}
  for _, f in ipairs(self.manifest.files) do
    files[f.uid] = (files[f.uid] or 0) + 1
  end
  local out = {}
  for _, op in ipairs(self.manifest.operators) do
    if files[op.uid] then
      out[#out + 1] = { uid = op.uid, kind = op.kind,
        parallelism = op.parallelism, files = files[op.uid] }
    end
  end
  return out
end

-- The files of operator uid, by subtask.
function Snapshot:files(uid)
  local out = {}
  for _, f in ipairs(self.manifest.files) do
    if f.uid == uid then out[#out + 1] = f end
  end
  table.sort(out, function(a, b) return a.subtask < b.subtask end)
  return out
end

local function read(self, f)
  local s, err = checkpoint.read_file(self.path, f,
    self.manifest.max_parallelism)
  if not s then error(err, 0) end
  return s
end

-- Decodes key group kg of file f (see weir.state.decode_group); raises a
-- message naming the file.
local function decode_group(self, f, kg, bytes)
  local flat, err = state.decode_group(bytes, kg,
    self.manifest.max_parallelism)
  if not flat then
    error(string.format("%s/%s: damaged state file: %s", self.path, f.name,
      err), 0)
  end
  return flat
end

-- Reads every file of snap and decodes each key group once, one at a
-- time, so that a damaged one is reported when the snapshot is opened and
-- never in the middle of a listing. Raises a message naming the file.
function verify(snap)
  for _, f in ipairs(snap.manifest.files) do
    local ok, err = incremental.verify(snap.path, f)
    if not ok then error(err, 0) end
    local groups = read(snap, f).state.key_groups
    for kg, bytes in pairs(groups or {}) do
      decode_group(snap, f, kg, bytes)
    end
  end
end

--- Calls fn(subtask, state) for each subtask of operator uid. For keyed
-- operators state holds key_groups (encoded) plus its own fields; use
-- each_key for their keys.
function Snapshot:each_subtask(uid, fn)
  for _, f in ipairs(self:files(uid)) do
    local s = read(self, f)
    fn(s.subtask, s.state)
  end
end

-- Calls fn(key, state, event_timers, processing_timers) for the keys in
-- key groups first .. last of an incremental RocksDB checkpoint's state
-- (ref), read from its files put together in a run directory of its own.
local function each_native(self, uid, ref, first, last, fn)
  ref.shared_dir = incremental.dir_of(self.path)
  local tmp = rundir.create()
  local ok, err = pcall(rocksdb_checkpoint.each_entry, ref, uid, first,
    last, tmp, function(batch)
      for _, r in ipairs(batch) do
        local t = r.entry
        fn(t[1], t[2], t[3], t[4])
      end
    end)
  rundir.remove(tmp)
  if not ok then error(err, 0) end
end

local function timers_of(event, processing)
  if event or processing then
    return { event = event, processing = processing }
  end
end

--- Calls fn(key, state, timers) for every key of keyed operator uid (one
-- key group decoded at a time); timers is { event = set, processing = set }
-- or nil.
function Snapshot:each_key(uid, fn)
  for _, f in ipairs(self:files(uid)) do
    local s = read(self, f).state
    if s.rocksdb then
      each_native(self, uid, s.rocksdb, s.rocksdb.first, s.rocksdb.last,
        function(k, v, ev, pt) fn(k, v, timers_of(ev, pt)) end)
    end
    local groups = s.key_groups or {}
    local kgs = {}
    for kg in pairs(groups) do kgs[#kgs + 1] = kg end
    table.sort(kgs)
    for _, kg in ipairs(kgs) do
      local flat = decode_group(self, f, kg, groups[kg])
      for i = 1, flat.n, 4 do
        local timers
        if flat[i + 2] or flat[i + 3] then
          timers = { event = flat[i + 2], processing = flat[i + 3] }
        end
        fn(flat[i], flat[i + 1], timers)
      end
    end
  end
end

--- Returns the state of key k in keyed operator uid, or nil; decodes only
-- the key group that holds it.
function Snapshot:get(uid, k)
  local maxp = self.manifest.max_parallelism
  local kg = key.key_group(k, maxp)
  local enc = key.encode(k)
  for _, f in ipairs(self:files(uid)) do
    local s = read(self, f).state
    local found
    if s.rocksdb then
      each_native(self, uid, s.rocksdb, kg, kg, function(k2, v)
        if key.encode(k2) == enc then found = v end
      end)
      if found ~= nil then return found end
    end
    local groups = s.key_groups or {}
    if groups[kg] then
      local flat = decode_group(self, f, kg, groups[kg])
      for i = 1, flat.n, 4 do
        if key.encode(flat[i]) == enc then return flat[i + 1] end
      end
    end
  end
  return nil
end

--- Renders a Lua value as a readable Lua literal (keys sorted).
function M.literal(v, seen)
  local t = type(v)
  if t == "string" then
    return (string.format("%q", v):gsub("\\\n", "\\n"))
  end
  if t == "number" then
    if v ~= v then return "0/0" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    if v % 1 == 0 and math.abs(v) < 2^53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if t ~= "table" then return tostring(v) end
  seen = seen or {}
  if seen[v] then return "<cycle>" end
  seen[v] = true
  local parts, n = {}, #v
  for i = 1, n do parts[i] = M.literal(v[i], seen) end
  local keys = {}
  for k in pairs(v) do
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) < type(b)
  end)
  for _, k in ipairs(keys) do
    local name = type(k) == "string" and k:match("^[%a_][%w_]*$") and k
      or "[" .. M.literal(k, seen) .. "]"
    parts[#parts + 1] = name .. " = " .. M.literal(v[k], seen)
  end
  seen[v] = nil
  if #parts == 0 then return "{}" end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

return M
