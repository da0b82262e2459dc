--- Incremental checkpoints of the RocksDB state backend (Flink's
-- RocksIncrementalSnapshotStrategy). For a task's database (see
-- weir.state_backend task_db):
-- - the synchronous part (M.take) writes the changed cached entries of
--   its operators back and takes a RocksDB checkpoint: hard links of its
--   files in a local directory, a consistent view of every column family
--   at the barrier;
-- - the asynchronous part (M.upload) copies into the job's shared
--   directory (weir.incremental) only the SST files the task's last
--   completed checkpoint did not hold (SST files never change), and keeps
--   RocksDB's small files (CURRENT, MANIFEST, OPTIONS) inline, in the
--   reference it hands back for the state files;
-- - M.confirm and M.forget follow the checkpoint's completion or abort: a
--   shared file is reused only once a completed checkpoint holds it, so a
--   retained checkpoint always references it (Flink's rule too).
-- A restore (M.each_entry) puts a reference's files in a local directory,
-- opens them as a database and reads the key groups a subtask owns: the
-- same or another parallelism, either backend. At the same parallelism on
-- this backend, M.adopt takes the files as the task's database itself
-- (Flink's restore of one state handle without rescaling): it costs the
-- copy of the files, not a read and a write of every key.
local core = require "weir.core"
local failpoint = require "weir.failpoint"
local fsutil = require "weir.fsutil"
local RocksState = require "weir.rocksdb_state"
local rundir = require "weir.rundir"

local M = {}

-- Entries read from a restored database per call.
local SCAN_KEYS = 4096

local group_prefix = RocksState.group_prefix

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local bytes = f:read("*a")
  f:close()
  return bytes
end

-- Whether directories a and b are the same one (device and inode).
local function same_dir(a, b)
  local sa, sb = a and core.stat(a), b and core.stat(b)
  return sa and sb and sa.dev == sb.dev and sa.ino == sb.ino or false
end

local function write_all(path, bytes)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(bytes)
  f:close()
  if not ok then return nil, werr end
  return true
end

--- The synchronous part of checkpoint id for task database t: its
-- operators' states compact and write their changed entries back, and a
-- RocksDB checkpoint of it lands in a local directory.
-- @return the directory | nil, message
function M.take(t, id)
  local timer_keys = {}
  for uid, state in pairs(t.states) do
    state:compact()
    state:flush()
    timer_keys[uid] = state:timer_keys()
  end
  t.timer_keys = t.timer_keys or {}
  t.timer_keys[id] = timer_keys
  local dir = t.dir .. "-chk-" .. id
  rundir.remove(dir)
  local ok, err = t.db:checkpoint(dir)
  if not ok then
    return nil, string.format("cannot take a RocksDB checkpoint into %s: "
      .. "%s", dir, tostring(err))
  end
  return dir
end

--- The asynchronous part: copies the SST files of the local checkpoint
-- dir (of M.take) that are new since the task's last completed
-- checkpoint into shared_dir, on the thread pool, then removes dir.
-- started() and ended() run around each copy (the host counts writes in
-- flight). cb(nil, ref) once all are durable, with ref = { dbid, files =
-- { { name, sst, size_bytes, checksum, new }, ... }, private = { [file]
-- = bytes }, timer_keys = { [uid] = the operator's timers at the barrier
-- (weir.rocksdb_timers' timer_keys) } }; cb(message) when one failed. The
-- files of a database taken over by M.adopt are referenced where they
-- are, in the checkpoint it came from, when that is in the same
-- shared_dir.
function M.upload(t, id, dir, shared_dir, started, ended, cb)
  local ok, merr = fsutil.mkdir_p(shared_dir)
  if not ok then return cb(merr) end
  local names = core.scandir(dir)
  if not names then return cb("cannot list " .. dir) end
  table.sort(names)
  local ref = { dbid = t.dbid, files = {}, private = {},
    timer_keys = t.timer_keys and t.timer_keys[id] }
  if t.timer_keys then t.timer_keys[id] = nil end
  local confirmed = t.confirmed or {}
  local inherited = t.inherited and same_dir(t.inherited_dir, shared_dir)
    and t.inherited or {}
  local uploads, failed, listed = 0, nil, false
  local function finish()
    if uploads > 0 or not listed then return end
    rundir.remove(dir)
    if failed then return cb(failed) end
    local files_of = {}
    for _, f in ipairs(ref.files) do files_of[f.name] = f end
    t.files_of = t.files_of or {}
    t.files_of[id] = files_of
    cb(nil, ref)
  end
  for _, sst in ipairs(names) do
    local path = dir .. "/" .. sst
    if sst:match("%.sst$") then
      local name = inherited[sst] and inherited[sst].name
        or t.dbid .. "-" .. sst
      local known = confirmed[name] or inherited[sst]
      local f = { name = name, sst = sst }
      ref.files[#ref.files + 1] = f
      if known then
        f.size_bytes, f.checksum = known.size_bytes, known.checksum
      else
        f.new = true
        -- Read and written on the thread pool: the file's bytes never
        -- become a Lua string.
        local wok, werr = core.snapshot_copy_async(path,
          shared_dir .. "/" .. name, function(err, size, checksum)
            ended()
            uploads = uploads - 1
            if err then
              failed = failed or string.format("cannot write %s/%s: %s",
                shared_dir, name, err)
            end
            f.size_bytes, f.checksum = size, checksum
            if not err then failpoint.hit("shared.after_upload") end
            finish()
          end)
        if wok then
          uploads = uploads + 1
          started()
        else
          failed = failed or string.format("cannot copy %s to %s: %s",
            path, shared_dir, tostring(werr))
        end
      end
    else
      local bytes, rerr = read_all(path)
      if not bytes then
        failed = failed or string.format("cannot read %s: %s", path, rerr)
      end
      ref.private[sst] = bytes
    end
  end
  listed = true
  finish()
end

--- Checkpoint id completed: its files are those the task may reuse.
function M.confirm(t, id)
  local files_of = t.files_of or {}
  if files_of[id] then t.confirmed = files_of[id] end
  for done in pairs(files_of) do
    if done <= id then files_of[done] = nil end
  end
end

--- Checkpoint id was aborted: what it uploaded is not reused.
function M.forget(t, id)
  if t.files_of then t.files_of[id] = nil end
  if t.timer_keys then t.timer_keys[id] = nil end
  rundir.remove(t.dir .. "-chk-" .. id)
end

-- Whether name is a plain file name (no directory, not hidden).
local function plain_name(name)
  return type(name) == "string" and name:match("^[%w_.-]+$") ~= nil
    and name:sub(1, 1) ~= "."
end

-- Puts the files of ref in directory dir: each shared file read back
-- verified (size, checksum), the private ones as they are. Raises a
-- message naming a damaged or missing file, or a file name that would
-- leave dir.
local function materialize(ref, dir)
  local ok, err = fsutil.mkdir_p(dir)
  if not ok then error(err, 0) end
  for name in pairs(ref.private) do
    if not plain_name(name) then
      error(string.format("%s: a RocksDB file name that is not a plain "
        .. "name (%q)", ref.shared_dir, tostring(name)), 0)
    end
  end
  for _, f in ipairs(ref.files) do
    local path = ref.shared_dir .. "/" .. tostring(f.name)
    if not plain_name(f.sst) or not plain_name(f.name) then
      error(string.format("%s: a RocksDB file name that is not a plain "
        .. "name (%q)", path, tostring(f.sst)), 0)
    end
    local size, checksum = core.snapshot_extract(path, dir .. "/" .. f.sst)
    if not size then error(path .. ": " .. tostring(checksum), 0) end
    if size ~= f.size_bytes or checksum ~= f.checksum then
      error(path .. ": size or checksum differs from the manifest", 0)
    end
  end
  for name, bytes in pairs(ref.private) do
    ok, err = write_all(dir .. "/" .. name, bytes)
    if not ok then error(err, 0) end
  end
end

--- Makes the files of the checkpointed database ref (a state file's
-- rocksdb reference, shared_dir set) the database of task t (see
-- weir.state_backend task_db, whose database must hold nothing yet):
-- t.db is closed, its directory replaced by ref's files (each shared file
-- verified) and opened again; its later checkpoints reference ref's
-- shared files instead of copying them again. Raises naming a damaged or
-- missing file, t then holding an empty database again.
function M.adopt(t, ref)
  t.db:close()
  rundir.remove(t.dir)
  local ok, err = pcall(materialize, ref, t.dir)
  if not ok then rundir.remove(t.dir) end
  local db, oerr = core.rocksdb_open(t.dir)
  if not db then
    error(string.format("cannot open the RocksDB state backend in %s: %s",
      t.dir, tostring(oerr)), 0)
  end
  t.db = db
  if not ok then error(err, 0) end
  t.inherited, t.inherited_dir = {}, ref.shared_dir
  for _, f in ipairs(ref.files) do
    t.inherited[f.sst] = { name = f.name, size_bytes = f.size_bytes,
      checksum = f.checksum }
  end
end

--- Reads the entries of operator uid in key groups first .. last from
-- the checkpointed database ref (a state file's rocksdb reference, with
-- shared_dir set by weir.checkpoint_storage.load), put together in a
-- fresh directory under tmp_root and removed after. Calls fn(batch) per
-- batch of entries { kg, entry = { key, state, timers, ptimers,
-- written }, db_key, bytes }. Raises naming a damaged or missing shared file, or a
-- value that cannot be decoded.
function M.each_entry(ref, uid, first, last, tmp_root, fn)
  if not core.rocksdb_open then
    error("the checkpoint holds RocksDB state and this weir was built "
      .. "without RocksDB (librocksdb-dev was missing): run scripts/setup "
      .. "and build again", 0)
  end
  local lo, hi = math.max(first, ref.first), math.min(last, ref.last)
  if lo > hi then return end
  local dir = string.format("%s/restore-%s-%d-%d", tmp_root, ref.dbid, lo,
    math.floor(core.monotonic_ms()))
  local ok, err = pcall(function()
    materialize(ref, dir)
    local db, oerr = core.rocksdb_open(dir)
    if not db then error("cannot open " .. dir .. ": " .. tostring(oerr), 0) end
    local cf = assert(db:column_family(uid))
    local from, to = group_prefix(lo), group_prefix(hi + 1)
    while true do
      local kvs = db:scan(cf, from, to, SCAN_KEYS)
      if not kvs then error("cannot read " .. dir, 0) end
      local batch = {}
      for i = 1, #kvs, 2 do
        local k, v = kvs[i], kvs[i + 1]
        local t, why = RocksState.decode_value(v)
        if not t then
          error(string.format("%s: a value of %s cannot be decoded (%s)",
            dir, uid, why), 0)
        end
        batch[#batch + 1] = { kg = k:byte(1) * 256 + k:byte(2), entry = t,
          db_key = k, bytes = v }
      end
      fn(batch)
      if #kvs < 2 * SCAN_KEYS then break end
      from = kvs[#kvs - 1] .. "\0"
    end
    db:close()
  end)
  rundir.remove(dir)
  if not ok then error(err, 0) end
end

return M
