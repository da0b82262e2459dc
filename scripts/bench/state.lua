-- scripts/bench-state's body: the keyed count of state_job.lua at each
-- number of keys, in one process (parallelism 1), three variants taking
-- turns RUNS times: checkpoints off (the baseline), a checkpoint every
-- second taken by a forked copy-on-write process (the default from
-- fork_snapshot_keys keys), and the same with the state serialized in the
-- job's own process (--fork-snapshot-keys -1); then the RocksDB state
-- backend with checkpoints off and every second (incremental). Reports
-- medians of wall
-- time, records/s, peak resident memory (GNU time's maximum RSS of the
-- weir process; a forked process is counted apart by the kernel), and,
-- from the checkpoints' manifests, the synchronous part (sync_ms: how long
-- the task held its records up, the fork included) and the whole
-- checkpoint (duration_ms), and what each checkpoint added to storage
-- against what it references (size_bytes / full_bytes, MiB).
--   luajit scripts/bench/state.lua RECORDS RUNS KEYS...
local common = dofile("scripts/bench/common.lua")
local checkpoint = require "weir.checkpoint_storage"
local checkpoint_record = require "weir.checkpoint_record"
local sh = common.runner("bench-state")
local median = common.median

local records, runs = tonumber(arg[1]), tonumber(arg[2])
-- Each KEYS argument is a number of keys, or COLD/HOT: COLD keys written
-- once, then every later record on one of HOT keys.
local key_counts = {}
for i = 3, #arg do
  local cold, hot = arg[i]:match("^(%d+)/(%d+)$")
  key_counts[#key_counts + 1] = cold and { tonumber(cold), tonumber(hot) }
    or { tonumber(arg[i]) }
end

local dir = os.tmpname()
os.remove(dir)
sh("mkdir -p " .. dir)

local VARIANTS = {
  { name = "checkpoints off", flags = "--checkpoint-interval 0" },
  { name = "every 1 s, forked", flags = "--checkpoint-interval 1000" },
  { name = "every 1 s, in process",
    flags = "--checkpoint-interval 1000 --fork-snapshot-keys -1" },
  { name = "rocksdb, checkpoints off",
    flags = "--checkpoint-interval 0 --state-backend rocksdb" },
  { name = "rocksdb, every 1 s, incremental",
    flags = "--checkpoint-interval 1000 --state-backend rocksdb" },
}

-- Runs variant v once; returns wall s, peak RSS MiB, and the sync_ms and
-- duration_ms of its checkpoints (all but the final one, which waits for
-- nothing).
local function run(v, keys, hot)
  local ck = dir .. "/ck"
  sh("rm -rf " .. ck)
  sh(string.format("/usr/bin/time -f '%%e %%M' -o %s/time build/weir run "
    .. "--parallelism 1 --checkpoint-dir %s --retain 1000 %s "
    .. "scripts/bench/state_job.lua %d %d %s 2>%s/err", dir, ck, v.flags,
    records, keys, hot or "", dir))
  local f = assert(io.open(dir .. "/time"))
  local wall, rss_kb = f:read("*n", "*n")
  f:close()
  local sync, duration, sizes = {}, {}, {}
  for _, c in ipairs(checkpoint.list(ck .. "/bench_state")) do
    local m = checkpoint.read_manifest(c.path)
    if m and not m.final then
      sync[#sync + 1] = m.sync_ms
      duration[#duration + 1] = m.duration_ms
    end
  end
  for _, r in ipairs(checkpoint_record.describe(ck .. "/bench_state", print)) do
    if r.marker ~= "final" then
      sizes[#sizes + 1] = { r.size_bytes / 1048576, r.full_bytes / 1048576 }
    end
  end
  return wall, rss_kb / 1024, sync, duration, sizes
end

local function max(t)
  local m = 0
  for _, v in ipairs(t) do if v > m then m = v end end
  return m
end

print(string.format("%d records, parallelism 1, %d runs per variant, "
  .. "medians", records, runs))
print("| keys | variant | s | records/s | x off | peak RSS MiB | "
  .. "sync_ms median / max | checkpoint ms median | added / referenced "
  .. "MiB |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for _, kh in ipairs(key_counts) do
  local keys, hot = kh[1], kh[2]
  local label = hot and string.format("%d cold, %d hot", keys, hot)
    or tostring(keys)
  local results = {}
  for k = 1, #VARIANTS do
    results[k] = { wall = {}, rss = {}, sync = {}, duration = {},
      added = {}, full = {} }
  end
  for _ = 1, runs do
    for k, v in ipairs(VARIANTS) do
      local wall, rss, sync, duration, sizes = run(v, keys, hot)
      local r = results[k]
      for _, sz in ipairs(sizes) do
        r.added[#r.added + 1], r.full[#r.full + 1] = sz[1], sz[2]
      end
      r.wall[#r.wall + 1], r.rss[#r.rss + 1] = wall, rss
      for _, s in ipairs(sync) do r.sync[#r.sync + 1] = s end
      for _, d in ipairs(duration) do r.duration[#r.duration + 1] = d end
    end
  end
  local off = median(results[1].wall)
  for k, v in ipairs(VARIANTS) do
    local r = results[k]
    local wall = median(r.wall)
    local sync = #r.sync > 0 and string.format("%.1f / %.1f",
      median(r.sync), max(r.sync)) or "-"
    local duration = #r.duration > 0 and string.format("%.0f",
      median(r.duration)) or "-"
    local sizes = #r.added > 0 and string.format("%.1f / %.1f",
      median(r.added), median(r.full)) or "-"
    print(string.format("| %s | %s | %.2f | %.2f M | %.2f | %.0f | %s | %s "
      .. "| %s |", label, v.name, wall, records / wall / 1e6, off / wall,
      median(r.rss), sync, duration, sizes))
  end
end
sh("rm -rf " .. dir)
