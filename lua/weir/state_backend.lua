--- State backends (Flink's): where the keyed operators of a process keep
-- their working state, apart from checkpoint storage (where snapshots go,
-- weir.checkpoint_storage).
-- - "heap" (the default): Lua tables in the process (weir.state); large
--   states are checkpointed by a forked copy-on-write process
--   (weir.task_checkpoint). State must fit in memory.
-- - "rocksdb": one RocksDB database per process on local disk, a column
--   family per operator, a bounded cache of decoded entries in front
--   (weir.rocksdb_state). State may be larger than memory.
-- Both take snapshots in one format, so either restores the other's.
local core = require "weir.core"
local errors = require "weir.errors"
local fsutil = require "weir.fsutil"
local rundir = require "weir.rundir"
local rocksdb_checkpoint = require "weir.rocksdb_checkpoint"
local RocksState = require "weir.rocksdb_state"
local State = require "weir.state"

local M = {}

local Backend = {}
Backend.__index = Backend

--- Whether backend kind ("heap", "rocksdb") is built into this weir.
function M.available(kind)
  return kind == "heap" or (kind == "rocksdb" and core.rocksdb_open ~= nil)
end

-- The file system type of the mount that holds path, from /proc/mounts,
-- or nil where it cannot be told.
local function fs_type(path)
  local f = io.open("/proc/mounts", "rb")
  if not f then return nil end
  local best, best_type = "", nil
  for line in f:lines() do
    local mount, t = line:match("^%S+ (%S+) (%S+)")
    if mount and (path == mount or path:sub(1, #mount + 1) == mount .. "/"
        or mount == "/") and #mount > #best then
      best, best_type = mount, t
    end
  end
  f:close()
  return best_type
end

local warned_tmpfs = false

--- Opens the state backend of a host.
-- @param options the job's options: state_backend ("heap" | "rocksdb"),
--   state_cache_mb (the RocksDB backend's cache per process, MiB; a
--   database per task, a column family per operator),
--   state_dir (where its working files go: a directory of their own is
--   made in it, or in /tmp, and removed by close(); one a killed process
--   left is removed by the next weir that makes one there)
-- @return the backend: new_state(node, env, init), close(). Raises when
--   rocksdb is asked for and this weir was built without it, or its
--   database cannot be opened (the message names the directory).
function M.open(options)
  local kind = options.state_backend or "heap"
  local self = setmetatable({ kind = kind, states = {} }, Backend)
  if kind == "heap" then return self end
  if not M.available(kind) then
    error("state_backend \"rocksdb\": this weir was built without RocksDB "
      .. "(librocksdb-dev was missing): run scripts/setup to install it "
      .. "and build again, or use the heap backend", 0)
  end
  if options.state_dir then
    local ok, err = fsutil.mkdir_p(options.state_dir)
    if not ok then
      error(string.format("cannot create state_dir %s: %s",
        options.state_dir, tostring(err)), 0)
    end
  end
  self.dir = rundir.create(options.state_dir or nil)
  local t = fs_type(self.dir)
  if t == "tmpfs" and not warned_tmpfs then
    warned_tmpfs = true
    errors.warn(string.format("the RocksDB state backend's files are in "
      .. "%s, on tmpfs, which holds them in memory; give --state-dir a "
      .. "directory on disk for state larger than memory", self.dir))
  end
  self.cache_bytes = (options.state_cache_mb or 256) * 1048576
  self.tasks = {}
  return self
end

--- The RocksDB database of task task_id of this host, opened on first
-- use: { db, dir, dbid (names its files in shared checkpoint storage),
-- states = { [uid] = state } }. Raises naming the directory when it
-- cannot be opened.
function Backend:task_db(task_id)
  local t = self.tasks[task_id]
  if t then return t end
  local dir = string.format("%s/task-%s", self.dir, tostring(task_id))
  local db, err = core.rocksdb_open(dir)
  if not db then
    error(string.format("cannot open the RocksDB state backend in %s: %s",
      dir, tostring(err)), 0)
  end
  local dbid = core.random_bytes(6):gsub(".", function(c)
    return string.format("%02x", c:byte())
  end)
  t = { db = db, dir = dir, dbid = dbid, states = {} }
  self.tasks[task_id] = t
  return t
end

-- The column families of operator uid (named where in messages) in db:
-- its keys' and its timers' (weir.rocksdb_timers), made when missing.
local function column_families(db, uid, where)
  local cf, err = db:column_family(uid)
  local tcf, terr
  if cf then tcf, terr = db:column_family("timers:" .. uid) end
  if not tcf then
    error(string.format("%s: cannot open its RocksDB column families: %s",
      where, tostring(err or terr)), 0)
  end
  return cf, tcf
end

--- The keyed state of an operator's subtask on this backend.
-- @param node the operator (its uid names the column family)
-- @param env the operator's environment (weir.host): max_parallelism,
--   parallelism, subtask
-- @param init function() -> initial state of a new key, or nil
-- @return a weir.state or a weir.rocksdb_state
function Backend:new_state(node, env, init)
  if self.kind == "heap" then
    return State.new(env.max_parallelism, init)
  end
  local t = self:task_db(env.task_id)
  local cf, tcf = column_families(t.db, node.uid, errors.describe(node))
  local first, last = core.key_group_range(env.max_parallelism,
    env.parallelism, env.subtask)
  local states = self.states
  local state = RocksState.new(t.db, cf, tcf, env.max_parallelism, init,
    first, last, function()
      return self.cache_bytes / math.max(1, #states)
    end, errors.describe(node))
  states[#states + 1] = state
  t.states[node.uid] = state
  return state
end

--- Restores from an incremental RocksDB checkpoint on this backend:
-- fn(batch) gets the entries of operator uid in key groups first .. last
-- of ref (see weir.rocksdb_checkpoint.each_entry), put together in this
-- backend's directory (or, on the heap, a run directory of its own).
function Backend:import(ref, uid, first, last, fn)
  local root, own = self.dir, false
  if not root then root, own = rundir.create(), true end
  local ok, err = pcall(rocksdb_checkpoint.each_entry, ref, uid, first,
    last, root, fn)
  if own then rundir.remove(root) end
  if not ok then error(err, 0) end
end

-- Whether the database of task t holds nothing: no cached entry and no
-- stored key in any of its operators' column families.
local function holds_nothing(t)
  for _, state in pairs(t.states) do
    if next(state.entries) ~= nil then return false end
    local kvs = t.db:scan(state.cf, "", nil, 1)
    if not kvs or #kvs > 0 then return false end
  end
  return true
end

--- Restores task task_id's database from an incremental RocksDB
-- checkpoint by taking ref's files as the database itself
-- (weir.rocksdb_checkpoint.adopt; Flink's restore without rescaling),
-- when that is possible: this backend is RocksDB, ref holds exactly the
-- key groups first .. last and lists its keys with timers (checkpoints
-- since that list was added), and the task's database holds nothing yet
-- or was made from ref already (another operator of the task). Every
-- operator state of the task then reads the new database.
-- @return true when the task's database is ref's, false when ref must be
--   imported key by key (Backend:import). Raises naming a damaged or
--   missing file.
function Backend:adopt(ref, task_id, first, last)
  if self.kind ~= "rocksdb" or ref.first ~= first or ref.last ~= last
      or type(ref.timer_keys) ~= "table" then
    return false
  end
  local t = self:task_db(task_id)
  if t.adopted then return t.adopted == ref.dbid end
  if not holds_nothing(t) then return false end
  -- Whether it failed or not, t.db is a database opened anew.
  local ok, aerr = pcall(rocksdb_checkpoint.adopt, t, ref)
  for uid, state in pairs(t.states) do
    state.db, state.cf, state.tcf = t.db,
      column_families(t.db, uid, state.where)
  end
  if not ok then error(aerr, 0) end
  t.adopted = ref.dbid
  errors.debug(string.format("task %s: its RocksDB database is the "
    .. "checkpoint's files (%d shared) as they are, key groups %d-%d",
    tostring(task_id), #ref.files, first, last))
  return true
end

--- Closes the backend: its RocksDB databases and their directory go.
function Backend:close()
  if self.dir then
    for _, t in pairs(self.tasks) do t.db:close() end
    self.tasks = {}
    rundir.remove(self.dir)
    self.dir = nil
  end
end

return M
