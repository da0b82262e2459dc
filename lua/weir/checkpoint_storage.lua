--- Checkpoint storage (as Flink's CheckpointStorage): the layout of
-- <checkpoint_dir>/<job>/chk-<n>/, the manifest, verification, listing
-- and retention.
--
-- A checkpoint exists only once its _manifest has been renamed into place
-- (written last, durably). The manifest lists every state file with its
-- size and checksum; loading a checkpoint verifies every one of them before
-- any state is returned.
local buffer = require "string.buffer"
local core = require "weir.core"
local errors = require "weir.errors"
local failpoint = require "weir.failpoint"
local fsutil = require "weir.fsutil"
local incremental = require "weir.incremental"

local M = {}

-- The file each decoded set of key groups came from (see M.file_of).
local files_of = setmetatable({}, { __mode = "k" })

M.MANIFEST = "_manifest"
M.FORMAT = 1  -- manifest content version; bump on incompatible change

--- Returns the directory of checkpoint id under job_dir.
function M.path(job_dir, id)
  return job_dir .. "/chk-" .. id
end

--- Lists the chk-<n> directories of job_dir, newest first:
-- { { id = n, path = p, complete = has a manifest } }. A missing job_dir
-- yields an empty list.
function M.list(job_dir)
  local names = core.scandir(job_dir) or {}
  local out = {}
  for _, name in ipairs(names) do
    local id = name:match("^chk%-(%d+)$")
    if id then
      local path = job_dir .. "/" .. name
      out[#out + 1] = { id = tonumber(id), path = path,
        complete = core.stat(path .. "/" .. M.MANIFEST) ~= nil }
    end
  end
  table.sort(out, function(a, b) return a.id > b.id end)
  return out
end

--- Encodes a Lua value for a snapshot file.
function M.encode(v)
  return buffer.encode(v)
end

--- Decodes one value that a file holds (bytes from any directory a user
-- names, so untrusted): the bytes are checked first (core.serialized_check:
-- counts backed by bytes, bounded nesting), so that no crafted count makes
-- string.buffer allocate gigabytes, then decoded under pcall.
-- @param what names the bytes in messages (a file's path)
-- @return the value | nil, "what: cannot be decoded (why)"
function M.decode(bytes, what)
  local used, why = core.serialized_check(bytes)
  if used and used ~= #bytes then why = "bytes after the value" end
  if not why then
    local ok, v = pcall(buffer.decode, bytes)
    if ok then return v end
    why = tostring(v)
  end
  return nil, what .. ": cannot be decoded (" .. why .. ")"
end
-- Decoding stays off traces: an error that string.buffer raises on a
-- trace crashes LuaJIT 2.1 releases before 2023, pcall or not.
jit.off(M.decode)

local decode = M.decode

local function count_entries(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function is_count(v)
  return type(v) == "number" and v >= 0 and v % 1 == 0 and v < 2^53
end

local function is_ms_or_nil(v)
  return v == nil or type(v) == "number" and v >= 0
end

-- The manifest's fields and their types: what a manifest must hold before
-- anything in it is used. A manifest is read from a directory anyone may
-- have written, so a wrong type is refused here, not met later.
local function manifest_error(m)
  local function field(name, ok, want)
    if not ok then
      return string.format("field %s is %s, not %s", name,
        type(m[name]) == "string" and string.format("%q", m[name])
          or tostring(m[name]), want)
    end
  end
  local err = field("job", type(m.job) == "string", "a string")
    or field("id", is_count(m.id), "a checkpoint id")
    or field("time_ms", type(m.time_ms) == "number", "a time in ms")
    or field("duration_ms", type(m.duration_ms) == "number", "a duration in ms")
    or field("sync_ms", is_ms_or_nil(m.sync_ms), "a duration in ms or absent")
    or field("async_ms", is_ms_or_nil(m.async_ms),
      "a duration in ms or absent")
    or field("alignment_ms", is_ms_or_nil(m.alignment_ms),
      "a duration in ms or absent")
    or field("final", type(m.final) == "boolean", "true or false")
    or field("max_parallelism", is_count(m.max_parallelism)
      and m.max_parallelism >= 1, "a count of key groups")
    or field("mode", type(m.mode) == "string", "a mode")
    or field("savepoint", m.savepoint == nil or m.savepoint == true,
      "true or absent")
    or field("run_id", m.run_id == nil or type(m.run_id) == "string",
      "a string or absent")
    or field("operators", type(m.operators) == "table", "a list")
    or field("files", type(m.files) == "table"
      and #m.files == count_entries(m.files), "a list")
    or field("operators", #m.operators == count_entries(m.operators),
      "a list")
  if err then return err end
  local parallelism = {}
  for i, op in ipairs(m.operators) do
    if type(op) ~= "table" or type(op.uid) ~= "string"
        or type(op.kind) ~= "string" or not is_count(op.parallelism)
        or op.parallelism < 1 then
      return string.format("operators[%d] is not { uid, kind, parallelism }",
        i)
    end
    parallelism[op.uid] = op.parallelism
  end
  local names = {}
  for i, f in ipairs(m.files) do
    if type(f) ~= "table" or type(f.name) ~= "string"
        or type(f.uid) ~= "string" or not is_count(f.subtask)
        or not is_count(f.size_bytes) or not is_count(f.checksum) then
      return string.format("files[%d] is not { name, uid, subtask, "
        .. "size_bytes, checksum }", i)
    end
    -- A state file lies in the checkpoint's own directory: no path.
    if f.name:find("/", 1, true) or f.name == "." or f.name == ".."
        or f.name == "" or f.name:find("\0", 1, true) or names[f.name] then
      return string.format("files[%d] has the name %q, not a file name of "
        .. "its own in the checkpoint", i, f.name)
    end
    names[f.name] = true
    local serr = incremental.entry_error(f, i)
    if serr then return serr end
    if not parallelism[f.uid] or f.subtask >= parallelism[f.uid] then
      return string.format("files[%d] (%s) is for subtask %d of operator "
        .. "'%s', which the manifest's operators do not have", i, f.name,
        f.subtask, f.uid)
    end
  end
  return nil
end

--- Reads and verifies a checkpoint's manifest.
-- @return manifest table, manifest size in bytes | nil, message
function M.read_manifest(chk_path)
  local path = chk_path .. "/" .. M.MANIFEST
  local bytes, size_or_err = core.snapshot_read(path)
  if not bytes then return nil, path .. ": " .. size_or_err end
  local m, err = M.parse_manifest(bytes, path)
  if not m then return nil, err end
  return m, size_or_err
end

--- Decodes and checks a manifest's content (bytes, as read from the
-- snapshot file at path): every field of the right type.
-- @return manifest table | nil, message naming path
function M.parse_manifest(bytes, path)
  local m, err = decode(bytes, path)
  if err then return nil, err end
  if type(m) ~= "table" or m.magic ~= "weir-checkpoint" then
    return nil, path .. ": not a weir checkpoint manifest"
  end
  if m.format ~= M.FORMAT then
    return nil, string.format("%s: manifest format %s is not supported "
      .. "(this weir reads format %d)", path, tostring(m.format), M.FORMAT)
  end
  local why = manifest_error(m)
  if why then return nil, path .. ": damaged manifest: " .. why end
  return m
end

--- The content of an operator's state file { uid, kind, subtask, state }:
-- a string, or, when state holds key_groups (each already encoded on its
-- own, see weir.state), a list of strings: the rest, encoded, naming the
-- key groups and their sizes, then each key group's bytes as they are.
-- weir.core writes such a list without joining it, so a large keyed state
-- is not copied again. M.read_file reads both.
function M.encode_file(file)
  local state = file.state
  local groups = type(state) == "table" and state.key_groups
  if type(groups) ~= "table" then return buffer.encode(file) end
  local rest, sizes, parts = {}, {}, { false }
  for k, v in pairs(state) do
    if k ~= "key_groups" then rest[k] = v end
  end
  for kg, bytes in pairs(groups) do
    sizes[#sizes + 1] = kg
    sizes[#sizes + 1] = #bytes
    parts[#parts + 1] = bytes
  end
  parts[1] = buffer.encode({ uid = file.uid, kind = file.kind,
    subtask = file.subtask, state = rest, key_group_sizes = sizes })
  return parts
end

-- What a state file's first value must be: { uid, kind, subtask, state }
-- and, with keyed state, key_group_sizes (see M.encode_file), whose key
-- groups lie in 0 .. max_parallelism - 1. Returns nil or what is wrong.
local function file_error(v, entry, max_parallelism)
  if type(v) ~= "table" or type(v.state) ~= "table" then
    return "it holds no state table"
  end
  if v.uid ~= entry.uid or v.subtask ~= entry.subtask
      or type(v.kind) ~= "string" then
    return string.format("it holds state of %s subtask %s, the manifest "
      .. "lists it for %s subtask %d", tostring(v.uid), tostring(v.subtask),
      entry.uid, entry.subtask)
  end
  local sizes = v.key_group_sizes
  if sizes == nil then return nil end
  if type(sizes) ~= "table" or #sizes % 2 ~= 0
      or v.state.key_groups ~= nil then
    return "its key group sizes are not a list of pairs"
  end
  for i = 1, #sizes, 2 do
    local kg, size = sizes[i], sizes[i + 1]
    if not is_count(kg) or kg >= max_parallelism then
      return string.format("it names key group %s, outside 0 .. %d",
        tostring(kg), max_parallelism - 1)
    end
    if not is_count(size) then
      return string.format("key group %d has the size %s", kg,
        tostring(size))
    end
  end
  return nil
end

--- Decodes a state file's content (see M.encode_file), checked as
-- M.decode does, every key group's bytes included (they are decoded
-- later, one at a time, by weir.state).
-- @param what names the file in messages
-- @param entry the manifest's entry of the file { uid, subtask, ... }
-- @param max_parallelism the manifest's: key groups lie below it
-- @return { uid, kind, subtask, state } | nil, message naming the file
function M.decode_file(bytes, what, entry, max_parallelism)
  local used, why = core.serialized_check(bytes)
  if not used then
    return nil, what .. ": cannot be decoded (" .. why .. ")"
  end
  local buf = buffer.new()
  buf:set(bytes)
  local ok, v = pcall(buf.decode, buf)
  if not ok then
    return nil, what .. ": cannot be decoded (" .. tostring(v) .. ")"
  end
  local err = file_error(v, entry, max_parallelism)
  if err then return nil, what .. ": damaged state file: " .. err end
  local sizes = v.key_group_sizes
  if sizes then
    local groups, at = {}, used
    for i = 1, #sizes, 2 do
      local kg, size = sizes[i], sizes[i + 1]
      if #buf < size then
        return nil, what .. " is shorter than the key groups it names"
      end
      if groups[kg] then
        return nil, string.format("%s: damaged state file: it holds key "
          .. "group %d twice", what, kg)
      end
      local gused, gwhy = core.serialized_check(bytes, at)
      if gused and gused ~= size then gwhy = "its size differs" end
      if gwhy then
        return nil, string.format("%s: key group %d cannot be decoded (%s)",
          what, kg, gwhy)
      end
      groups[kg] = buf:get(size)
      at = at + size
    end
    v.state.key_groups, v.key_group_sizes = groups, nil
    files_of[groups] = what
  end
  if #buf > 0 then return nil, what .. " has bytes after its state" end
  return v
end
jit.off(M.decode_file)

--- The path of the state file that key groups (a state's key_groups, as
-- M.read_file returned it) were read from, for messages; or nil.
function M.file_of(groups)
  return files_of[groups]
end

--- Reads one state file a manifest lists, verified (size, checksum, lz4
-- content checksum), checked and decoded.
-- @param file the manifest's entry { name, size_bytes, checksum, ... }
-- @param max_parallelism the manifest's: key groups lie below it
-- @return { uid, kind, subtask, state } | nil, message naming the file
function M.read_file(chk_path, file, max_parallelism)
  local path = chk_path .. "/" .. file.name
  local bytes, size, checksum = core.snapshot_read(path)
  if not bytes then return nil, path .. ": " .. size end
  if size ~= file.size_bytes or checksum ~= file.checksum then
    return nil, path .. ": size or checksum differs from the manifest"
  end
  return M.decode_file(bytes, path, file, max_parallelism)
end

--- Loads a checkpoint, verifying the manifest and every file it lists.
-- @param chk_path the checkpoint's directory
-- @param shared_verified true: the shared files (weir.incremental) were
--   verified by whoever chose the checkpoint (the coordinator) and are
--   not read here; a restore verifies each one it uses again as it reads
--   it (weir.rocksdb_checkpoint)
-- @return { manifest = m, states = { [uid] = { [subtask] = state } } }
--   | nil, message naming the damaged file
function M.load(chk_path, shared_verified)
  local m, err = M.read_manifest(chk_path)
  if not m then return nil, err end
  local states = {}
  for _, file in ipairs(m.files) do
    local s, ferr = M.read_file(chk_path, file, m.max_parallelism)
    if not s then return nil, ferr end
    if s.state.rocksdb then
      s.state.rocksdb.shared_dir = incremental.dir_of(chk_path)
    end
    states[file.uid] = states[file.uid] or {}
    states[file.uid][file.subtask] = s
  end
  if not shared_verified then
    local ok, verr = incremental.verify_all(chk_path, m.files)
    if not ok then return nil, verr end
  end
  return { manifest = m, states = states, path = chk_path }
end

--- Verifies a checkpoint without keeping its state: the manifest and
-- every file, one state file at a time, then the shared files all at once
-- (weir.incremental.verify_all). Returns the manifest | nil, message.
function M.verify(chk_path)
  local m, err = M.read_manifest(chk_path)
  if not m then return nil, err end
  for _, file in ipairs(m.files) do
    local s, ferr = M.read_file(chk_path, file, m.max_parallelism)
    if not s then return nil, ferr end
  end
  local ok, verr = incremental.verify_all(chk_path, m.files)
  if not ok then return nil, verr end
  return m
end

--- Like M.load, verified, but without the state: { manifest, path }.
function M.open_verified(chk_path)
  local m, err = M.verify(chk_path)
  if not m then return nil, err end
  return { manifest = m, path = chk_path }
end

--- Finds the newest intact checkpoint of job_dir. Each damaged one is
-- reported through warn(message) and skipped.
-- @param open M.load (the default) or M.open_verified
-- @param run_id if given, only checkpoints whose manifest carries this
--   run_id (the lineage of one run; see weir.coordinator)
-- @return what open returned for it, or nil if there is none
function M.find_latest(job_dir, warn, open, run_id)
  for _, c in ipairs(M.list(job_dir)) do
    local mine = true
    if c.complete and run_id then
      local m = M.read_manifest(c.path)
      -- A damaged manifest is reported by open below.
      mine = not m or m.run_id == run_id
    end
    if c.complete and mine then
      local loaded, err = (open or M.load)(c.path)
      if loaded then return loaded end
      warn(string.format("checkpoint %s is damaged (%s); trying an older "
        .. "one", c.path, err))
    end
  end
  return nil
end

--- Writes a manifest durably on the thread pool; cb(err, size_bytes).
function M.write_manifest_async(chk_path, manifest, cb)
  manifest.magic, manifest.format = "weir-checkpoint", M.FORMAT
  local ok, err = core.snapshot_write_async(chk_path .. "/" .. M.MANIFEST,
    buffer.encode(manifest), cb)
  if not ok then cb(err) end
end

-- Whether name is a file weir writes into a checkpoint directory: a
-- state file, or the temporary file of a state file or manifest (see
-- engine/fs.c). Removal without a manifest removes only these.
local function is_weir_file(name)
  return name:match("%.snap$") ~= nil or name:match("%.snap%.tmp$") ~= nil
    or name == M.MANIFEST .. ".tmp"
end

-- Directories already reported as not removable, so a retention pass
-- every checkpoint does not repeat the line.
local reported = {}

local function report(chk_path, msg)
  if reported[chk_path] then return end
  reported[chk_path] = true
  errors.warn(msg)
end

--- Removes a checkpoint directory: its manifest first, so a partly
-- removed checkpoint is never taken for a complete one, then only the
-- files that manifest lists (or, with no readable manifest, files named
-- as weir's state and temporary files), then the directory. Anything
-- else in it -- a file weir did not write -- is left in place, and so is
-- the directory then.
-- @param aborted true for a checkpoint aborted while state files may
--   still land in it: a directory that is not empty then is left quietly
--   to the writers (weir.host Host:abort) and a later pass
-- @return true | nil, message (also reported once through
--   weir.errors.warn; the directory stays for a later pass)
function M.remove(chk_path, aborted)
  local listed = {}
  local m = M.read_manifest(chk_path)
  if m and type(m.files) == "table" then
    for _, f in ipairs(m.files) do
      local name = type(f) == "table" and f.name
      if type(name) == "string" and name:match("^[^/]+$")
          and name ~= "." and name ~= ".." then
        listed[name] = true
      end
    end
  end
  local manifest = chk_path .. "/" .. M.MANIFEST
  local ok, err, code = core.unlink(manifest)
  if not ok and code ~= "ENOENT" then
    local msg = string.format("cannot remove checkpoint %s: cannot remove "
      .. "its manifest: %s; it stays complete", chk_path, err)
    report(chk_path, msg)
    return nil, msg
  end
  if ok then core.fsync_parent(manifest) end
  failpoint.hit("removal.after_manifest")
  local failed, foreign, removed = nil, {}, 0
  for _, name in ipairs(core.scandir(chk_path) or {}) do
    if listed[name] or is_weir_file(name) then
      local uok, uerr, ucode = core.unlink(chk_path .. "/" .. name)
      if not uok and ucode ~= "ENOENT" then
        failed = failed or string.format("%s: %s", name, uerr)
      end
      removed = removed + 1
      if removed == 1 then failpoint.hit("removal.mid_files") end
    else
      foreign[#foreign + 1] = name
    end
  end
  local msg
  if failed then
    msg = string.format("cannot remove checkpoint %s: cannot remove %s; "
      .. "it no longer counts as complete and is left for a later pass",
      chk_path, failed)
  elseif #foreign > 0 then
    table.sort(foreign)
    msg = string.format("checkpoint directory %s holds files weir did not "
      .. "write (%s); they and the directory are left in place", chk_path,
      table.concat(foreign, ", "))
  end
  if msg then
    report(chk_path, msg)
    return nil, msg
  end
  failpoint.hit("removal.before_rmdir")
  local rok, rerr, rcode = core.rmdir(chk_path)
  if not rok and rcode == "ENOTEMPTY" and aborted then
    return nil, rerr
  elseif not rok and rcode ~= "ENOENT" then
    msg = string.format("cannot remove checkpoint directory %s: %s",
      chk_path, rerr)
    report(chk_path, msg)
    return nil, msg
  end
  core.fsync_parent(chk_path)
  return true
end

--- Keeps the newest `retain` complete checkpoints of job_dir and removes
-- older complete ones and incomplete ones older than newest_id (see
-- M.remove: what cannot be removed is reported and left for a later
-- pass).
function M.apply_retention(job_dir, retain, newest_id)
  failpoint.hit("retention.before")
  local kept = 0
  for _, c in ipairs(M.list(job_dir)) do
    if c.complete and c.id <= newest_id then
      kept = kept + 1
      if kept > retain then M.remove(c.path) end
    elseif not c.complete and c.id < newest_id then
      M.remove(c.path)
    end
  end
  M.collect_shared(job_dir)
end

--- Deletes the shared files (weir.incremental) that no complete
-- checkpoint left in job_dir references. A checkpoint whose manifest
-- cannot be read keeps every shared file: it may reference any.
function M.collect_shared(job_dir)
  if not core.stat(job_dir .. "/" .. incremental.DIR) then return end
  local manifests = {}
  for _, c in ipairs(M.list(job_dir)) do
    if c.complete then
      local m = M.read_manifest(c.path)
      if not m then return end
      manifests[#manifests + 1] = m
    end
  end
  incremental.collect(job_dir, manifests)
end

--- Makes the directory of a checkpoint being taken, durably (its job
-- directory is fsynced, so the directory a manifest lands in is itself
-- on disk). Returns true | nil, message.
function M.make_dir(chk_path)
  local err = failpoint.hit("checkpoint.mkdir")
  local ok
  if not err then ok, err = core.mkdir(chk_path) end
  if not ok then
    return nil, string.format("cannot create %s: %s", chk_path, err)
  end
  ok, err = core.fsync_parent(chk_path)
  if not ok then
    core.rmdir(chk_path)
    return nil, string.format("cannot make %s durable: %s", chk_path, err)
  end
  failpoint.hit("checkpoint.after_mkdir")
  return true
end

--- The id to give the next checkpoint: above every chk-<n> in job_dir.
function M.next_id(job_dir)
  local newest = M.list(job_dir)[1]
  return newest and newest.id + 1 or 1
end

--- Moves a complete snapshot (a savepoint from the job directory) to
-- target: a rename, or across file systems a copy (manifest last) and
-- removal.
-- @return true | nil, message
function M.move(from, target)
  local ok, err, code = core.rename(from, target)
  if ok then
    core.fsync_parent(target)
    core.fsync_parent(from)
    return true
  end
  if code ~= "EXDEV" then return nil, err end
  ok, err = fsutil.copy_files(from, target, M.MANIFEST)
  if not ok then
    fsutil.remove_dir(target)
    return nil, err
  end
  M.remove(from)
  return true
end

return M
