--- The shared files of incremental checkpoints (the RocksDB state
-- backend's SST files, weir.rocksdb_checkpoint): they live in
-- <job_dir>/shared/, written once and referenced by every checkpoint
-- that holds them, as Flink's SharedStateRegistry keeps them. A state
-- file's manifest entry lists the shared files it references:
-- shared = { { name, size_bytes, checksum, new = true when this
-- checkpoint wrote it }, ... }.
--
-- A shared file is deleted only when no complete checkpoint in the job
-- directory references it any more (M.collect, after retention). The
-- order -- shared files durable, then the manifest, then old checkpoints
-- removed, then unreferenced shared files -- leaves an intact newest
-- checkpoint whatever step a crash interrupts; a shared file a crash
-- left unreferenced is deleted by the next collection.
local core = require "weir.core"
local failpoint = require "weir.failpoint"

local M = {}

M.DIR = "shared"

--- The shared directory of the job whose checkpoint is chk_path
-- (<job_dir>/chk-<n>).
function M.dir_of(chk_path)
  return (chk_path:gsub("/+$", ""):gsub("/[^/]*$", "")) .. "/" .. M.DIR
end

local function is_count(v)
  return type(v) == "number" and v >= 0 and v % 1 == 0
end

--- What is wrong with a manifest entry's shared list (f.shared), or nil:
-- absent, or a list of { name (a file name, no path), size_bytes,
-- checksum, new = true or absent }.
function M.entry_error(f, i)
  local shared = f.shared
  if shared == nil then return nil end
  if type(shared) ~= "table" then
    return string.format("files[%d].shared is not a list", i)
  end
  for j, s in ipairs(shared) do
    if type(s) ~= "table" or type(s.name) ~= "string"
        or not s.name:match("^[%w_.-]+$") or s.name:match("^%.")
        or not is_count(s.size_bytes) or not is_count(s.checksum)
        or (s.new ~= nil and s.new ~= true) then
      return string.format("files[%d].shared[%d] is not { name, "
        .. "size_bytes, checksum }", i, j)
    end
  end
  local n = 0
  for _ in pairs(shared) do n = n + 1 end
  if n ~= #shared then
    return string.format("files[%d].shared is not a list", i)
  end
  return nil
end

--- Verifies every shared file the manifest entries files (a list) of
-- checkpoint chk_path reference: each exists, and its size and checksum
-- (and its content's lz4 checksums) are the manifest's. The files are
-- verified on as many threads as there are CPUs (core.snapshot_verify_all).
-- @return true | nil, message naming the first damaged file
function M.verify_all(chk_path, files)
  local dir = M.dir_of(chk_path)
  local paths, wanted = {}, {}
  for _, f in ipairs(files) do
    for _, s in ipairs(f.shared or {}) do
      paths[#paths + 1] = dir .. "/" .. s.name
      wanted[#wanted + 1] = { s = s, f = f }
    end
  end
  if #paths == 0 then return true end
  local results = core.snapshot_verify_all(paths, core.cpu_count())
  for i, r in ipairs(results) do
    local s, f = wanted[i].s, wanted[i].f
    if not r[1] then
      return nil, string.format("%s (a shared file %s references): %s",
        paths[i], f.name, tostring(r[2]))
    end
    if r[1] ~= s.size_bytes or r[2] ~= s.checksum then
      return nil, string.format("%s (a shared file %s references): size "
        .. "or checksum differs from the manifest", paths[i], f.name)
    end
  end
  return true
end

--- Verifies every shared file the manifest entry f of checkpoint
-- chk_path references, as M.verify_all does.
-- @return true | nil, message naming the file
function M.verify(chk_path, f)
  return M.verify_all(chk_path, { f })
end

--- The bytes a manifest's files add to storage and reference in all:
-- size_bytes (state files and the shared files written for it) and
-- full_bytes (state files and every shared file once).
function M.sizes(files)
  local size, full, seen = 0, 0, {}
  for _, f in ipairs(files) do
    size, full = size + f.size_bytes, full + f.size_bytes
    for _, s in ipairs(f.shared or {}) do
      if not seen[s.name] then
        seen[s.name] = true
        full = full + s.size_bytes
        if s.new then size = size + s.size_bytes end
      end
    end
  end
  return size, full
end

--- Deletes the shared files of job_dir that none of manifests (those of
-- every complete checkpoint left in job_dir) references. Run it only
-- while no checkpoint is being taken. Temporary files of interrupted
-- writes go too.
-- @return the number of files deleted
function M.collect(job_dir, manifests)
  local dir = job_dir .. "/" .. M.DIR
  local names = core.scandir(dir)
  if not names then return 0 end
  local referenced = {}
  for _, m in ipairs(manifests) do
    for _, f in ipairs(m.files) do
      for _, s in ipairs(f.shared or {}) do referenced[s.name] = true end
    end
  end
  local deleted = 0
  for _, name in ipairs(names) do
    if not referenced[name] then
      core.unlink(dir .. "/" .. name)
      deleted = deleted + 1
      if deleted == 1 then failpoint.hit("shared.mid_collect") end
    end
  end
  return deleted
end

return M
