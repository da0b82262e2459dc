--- Coordinator high availability through etcd (weir run --ha
-- etcd://HOST:PORT), as Flink's JobManager HA through ZooKeeper: the
-- coordinators of a job campaign for a key under a lease; the one that
-- creates it leads, the others wait as standbys without touching the job
-- directory or its control socket, and the first to create the key once
-- the leader's lease ended takes over.
--
-- Keys (weir.etcd), per job directory (the absolute path of
-- <checkpoint_dir>/<job>, so that two jobs of one name elsewhere do not
-- meet): /weir<job dir>/leader holds the leader's identity under its
-- lease; /weir<job dir>/lineage the leader's run (its run_id, the
-- checkpoint it started from, the last checkpoint it completed, and
-- "final" once the job ended), written only while it still leads (a
-- fenced put). A standby that takes over adopts that run: it restores as
-- a restart of the leader would (the newest complete checkpoint carrying
-- the leader's run_id, see weir.restore), the one case where a run
-- restores checkpoints it did not take; so output the leader committed
-- is never committed again, whatever the lag of the etcd write. A run
-- whose leader ended without finishing it is continued the same way by
-- the next coordinator of the job, unless it is started with new_run
-- (--ha-new-run).
--
-- Fencing: a leader that has not renewed its lease for two thirds of its
-- time-to-live publishes no checkpoint (the lease ends at the earliest a
-- full time-to-live after the last renewal), and one whose renewal finds
-- the lease gone exits at once: its workers die with it.
local core = require "weir.core"
local errors = require "weir.errors"
local etcd = require "weir.etcd"

local M = {}

local Leader = {}
Leader.__index = Leader

-- Runs method of client with args and waits on the loop for its answer.
local function sync(client, method, ...)
  local out
  local n = select("#", ...)
  local args = { ... }
  args[n + 1] = function(...) out = { ... } end
  client[method](client, unpack(args, 1, n + 1))
  while not out do core.run_once() end
  return unpack(out)
end

-- Waits ms on the loop.
local function pause(ms)
  local done = false
  local t = core.timer(function() done = true end)
  t:start(ms, 0)
  while not done do core.run_once() end
  t:close()
end

--- Leads job `name` or waits until it can (blocking, on the loop).
-- @param url "etcd://HOST:PORT"
-- @param name the job's name
-- @param job_dir its directory, absolute (<checkpoint_dir>/<name>)
-- @param ttl_ms the lease's time-to-live (rounded up to seconds, at
--   least 2 s): how long a dead leader holds the job
-- @param new_run true: when no leader is found, start a new run even if
--   etcd records an unfinished one (a standby that waited for a leader
--   always continues its run)
-- @return the leader: adopt (nil, or { run_id, base, last } of the run to
--   continue: base the checkpoint it started from, last its last
--   completed one, each a path or nil), lineage_key, and the methods
--   below. Raises a one-line message when etcd cannot be reached or
--   answers wrongly.
function M.lead(url, name, job_dir, ttl_ms, new_run)
  local client, perr = etcd.new(url)
  if not client then error(perr, 0) end
  local ttl_s = math.max(2, math.ceil(ttl_ms / 1000))
  local self = setmetatable({ client = client, name = name,
    ttl_ms = ttl_s * 1000, key = "/weir" .. job_dir .. "/leader",
    lineage_key = "/weir" .. job_dir .. "/lineage",
    me = string.format("%s pid %d", os.getenv("HOSTNAME") or "localhost",
      core.getpid()) }, Leader)
  local err, lease = sync(client, "grant", ttl_s)
  if err then error(err, 0) end
  local waited
  while true do
    local cerr, won, holder = sync(client, "create", self.key, self.me,
      lease)
    if cerr then error(cerr, 0) end
    if won then break end
    if not waited then
      errors.note(string.format("standby: job '%s' is led by %s; waiting "
        .. "to take over (%s)", name, tostring(holder), url))
      waited = holder or "the leader"
    end
    pause(self.ttl_ms / 3)
    local kerr, left = sync(client, "keepalive", lease)
    if kerr or left <= 0 then
      err, lease = sync(client, "grant", ttl_s)
      if err then error(err, 0) end
    end
  end
  self.lease, self.renewed = lease, core.monotonic_ms()
  local gerr, value = sync(client, "get", self.lineage_key)
  if gerr then error(gerr, 0) end
  local run_id, base, last, final = (value or ""):match(
    "^([^\t]+)\t([^\t]*)\t([^\t]*)\t?(%a*)$")
  -- A finished run is continued by its standbys (they find it finished);
  -- a coordinator that found no leader starts a new run of it.
  if run_id and not waited and final ~= "final" and new_run then
    errors.note(string.format("--ha-new-run: starting a new run of job "
      .. "'%s'; etcd's record of its unfinished run %s is replaced (that "
      .. "run's checkpoints stay)", name, run_id))
  elseif run_id and not (final == "final" and not waited) then
    self.adopt = { run_id = run_id, base = base ~= "" and base or nil,
      last = last ~= "" and last or nil }
    if not waited then
      errors.note(string.format("continuing run %s of job '%s', which "
        .. "etcd records as unfinished (its leader ended before the job "
        .. "did; --ha-new-run starts a new run instead)", run_id, name))
    end
  end
  errors.note(string.format("%s job '%s' (%s)", waited and
    "taking over from " .. waited .. ": leading" or "leading", name, url))
  self:keep()
  return self
end

-- Renews the lease every third of its time-to-live; exits the process
-- when the lease is gone (another coordinator may lead by now).
function Leader:keep()
  self.timer = core.timer(errors.guard(function()
    self.client:keepalive(self.lease, function(err, left)
      if not err and left > 0 then
        self.renewed = core.monotonic_ms()
        return
      end
      if not err or core.monotonic_ms() - self.renewed > self.ttl_ms then
        errors.log("error", string.format("lost the leadership of job "
          .. "'%s' (its lease in etcd ended%s): stopping at once, without "
          .. "publishing or committing anything", self.name,
          err and ": " .. err or ""))
        core.exit(1)
      end
    end)
  end))
  self.timer:start(self.ttl_ms / 3, self.ttl_ms / 3)
  -- The job's own handles keep the loop running, not the renewal.
  self.timer:unref()
end

--- Why this coordinator may not publish a checkpoint now (its lease may
-- have ended), or nil.
function Leader:fence()
  local since = core.monotonic_ms() - self.renewed
  if since > self.ttl_ms * 2 / 3 then
    return string.format("the lease of its leadership was last renewed "
      .. "%d ms ago", since)
  end
end

--- Records the run's lineage after a completed checkpoint (path), while
-- this coordinator leads. lineage = { run_id, base }; final: the job
-- ended.
function Leader:record(lineage, path, final)
  self.client:put_if(self.key, self.me, self.lineage_key,
    table.concat({ lineage.run_id, lineage.base or "", path or "",
      final and "final" or "" }, "\t"), function(err, done)
      if err or not done then
        errors.warn("could not record checkpoint " .. tostring(path)
          .. " in etcd: " .. (err or "this coordinator no longer leads"))
      end
    end)
end

--- Gives the leadership up after the job failed: the lease is revoked
-- at once (the next coordinator need not wait for its end) and the
-- lineage stays as recorded, unfinished. Errors of etcd are ignored: the
-- lease then ends by itself.
function Leader:resign()
  if self.timer then self.timer:close() self.timer = nil end
  sync(self.client, "revoke", self.lease)
end

--- Ends the leadership once the job ended: the lineage is marked final
-- (standbys then find the job finished) and the leader key deleted.
function Leader:close(lineage)
  if self.timer then self.timer:close() self.timer = nil end
  sync(self.client, "put_if", self.key, self.me, self.lineage_key,
    table.concat({ lineage.run_id, lineage.base or "", lineage.last or "",
      "final" }, "\t"))
  sync(self.client, "revoke", self.lease)
end

return M
