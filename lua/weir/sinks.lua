--- Runtime instances of sinks. make(node, emit, env) returns:
--   open()              prepares the output; raises a clear error if unusable
--   push(record)        receives a record
--   snapshot(id) -> st  pre-commit at the barrier of checkpoint id
--   restore(st)         recover the transactions of a restored checkpoint
--   notify_complete(id) commit what was pre-committed for checkpoints <= id
--   commit()            commit everything now (when checkpoints are off)
--   stop(), close()     the job stops (connections close once what is
--                       due went out) / its files close (optional)
local core = require "weir.core"
local errors = require "weir.errors"
local failpoint = require "weir.failpoint"
local fsutil = require "weir.fsutil"

local M = {}

local fail = errors.fail

local function check(node, ok, err)
  if not ok then fail(node, "%s", err) end
  return ok
end

-- -- write_lines: the part files of a subtask -----------------------------

-- The file of subtask j's sequence number s in a state ("committed",
-- "pending", "inprogress").
local function part_path(dir, j, s, state)
  if state == "committed" then return dir .. "/part-" .. j .. "-" .. s end
  return dir .. "/.part-" .. j .. "-" .. s .. "." .. state
end

-- Subtask j's files in dir: { seq = { committed = bool, pending = bool,
-- inprogress = bool } }.
local function scan_parts(node, dir, j)
  local names = check(node, core.scandir(dir))
  local files = {}
  local pat = "^(%.?)part%-" .. j .. "%-(%d+)%.?(%a*)$"
  for _, name in ipairs(names) do
    local dot, s, state = name:match(pat)
    if s and (dot == "") == (state == "") then
      s = tonumber(s)
      files[s] = files[s] or {}
      files[s][dot == "" and "committed" or state] = true
    end
  end
  return files
end

local function commit_part(node, dir, j, s)
  check(node, core.rename(part_path(dir, j, s, "pending"),
    part_path(dir, j, s, "committed")))
end

-- Settles old subtask j's files as its snapshot says: below next_seq
-- committed, from it on discarded.
local function recover_parts(node, dir, j, next_seq)
  local files = scan_parts(node, dir, j)
  for s = 0, next_seq - 1 do
    local st = files[s] or {}
    if st.pending then
      commit_part(node, dir, j, s)
    elseif not st.committed then
      fail(node, "output file %s of the restored checkpoint is missing; "
        .. "cannot restore exactly once",
        part_path(dir, j, s, "committed"))
    end
  end
  for s, st in pairs(files) do
    if s >= next_seq then
      for state in pairs(st) do
        core.unlink(part_path(dir, j, s, state))
      end
    elseif st.inprogress then
      core.unlink(part_path(dir, j, s, "inprogress"))
    end
  end
end

--- write_lines: exactly-once by two-phase commit.
-- Record files are written as .part-<subtask>-<seq>.inprogress; the
-- pre-commit at a barrier fsyncs and renames the file to
-- .part-<subtask>-<seq>.pending; once the checkpoint is complete it is
-- renamed to part-<subtask>-<seq>. Sequence numbers are consecutive, so a
-- snapshot holds only the next one: on restore every file below it is
-- committed and every file from it on is discarded.
function M.write_lines(node, emit, env)
  local dir, fmt = node.dir, errors.register(node.fn, node)
  local me = env.subtask
  local seq, f, fpath = 0, nil, nil
  local pending = {}     -- { { id = checkpoint id, seqs = { seq, ... } } }
  local restored = nil   -- old subtasks' states this subtask recovers
  local inst = {}

  function inst.open()
    check(node, fsutil.mkdir_p(dir))
    check(node, fsutil.check_writable(dir))
    if restored then
      local own
      for _, o in ipairs(restored) do
        recover_parts(node, dir, o.subtask, o.state.next_seq)
        if o.subtask == me then own = o.state.next_seq end
      end
      if not own then
        -- A subtask the snapshot did not have (restored at a higher
        -- parallelism) writes after whatever committed files it finds.
        own = 0
        for s, st in pairs(scan_parts(node, dir, me)) do
          if st.committed and s >= own then own = s + 1 end
        end
      end
      seq = own
      core.fsync_parent(part_path(dir, me, 0, "committed"))
    else
      -- A fresh run replaces what earlier runs of this sink wrote.
      for s, st in pairs(scan_parts(node, dir, me)) do
        for state in pairs(st) do
          core.unlink(part_path(dir, me, s, state))
        end
      end
    end
  end

  local function close_current()
    local ok, err = f:close()
    f = nil
    check(node, ok, err)
    check(node, core.fsync(fpath))
  end

  inst.push = errors.register(function(record)
    local line = record
    if fmt then line = fmt(record) end
    local t = type(line)
    if t ~= "string" and t ~= "number" then
      error(string.format("write_lines: %s is a %s; give write_lines a "
        .. "format function that returns a string",
        fmt and "the format function's result" or "the record", t), 0)
    end
    if not f then
      fpath = part_path(dir, me, seq, "inprogress")
      f = check(node, io.open(fpath, "wb"))
      core.unlocked_file(f)  -- only the loop thread writes it
    end
    if not f:write(line, "\n") then
      fail(node, "cannot write %s (is the disk full?)", fpath)
    end
  end, node)

  function inst.snapshot(id)
    if f then
      close_current()
      check(node, core.rename(fpath, part_path(dir, me, seq, "pending")))
      failpoint.hit("sink.pre_commit")
      check(node, core.fsync_parent(fpath))
      pending[#pending + 1] = { id = id, seqs = { seq } }
      seq = seq + 1
    end
    return { next_seq = seq }
  end

  -- Recovers the old subtasks j with j % parallelism == this subtask.
  function inst.restore(olds)
    restored = {}
    for _, o in ipairs(olds) do
      if o.subtask % env.parallelism == me then
        restored[#restored + 1] = o
      end
    end
  end

  function inst.notify_complete(id)
    local keep, committed = {}, 0
    for _, p in ipairs(pending) do
      if p.id <= id then
        for _, s in ipairs(p.seqs) do
          commit_part(node, dir, me, s)
          committed = committed + 1
          if committed == 1 then failpoint.hit("sink.mid_commit") end
        end
      else
        keep[#keep + 1] = p
      end
    end
    pending = keep
    if committed > 0 then failpoint.hit("sink.after_commit") end
    core.fsync_parent(part_path(dir, me, 0, "committed"))
  end

  function inst.commit()
    if f then
      close_current()
      check(node, core.rename(fpath, part_path(dir, me, seq, "committed")))
      seq = seq + 1
    end
    inst.notify_complete(math.huge)
  end

  function inst.close()
    if f then f:close() f = nil end
  end
  return inst
end

--- collect: appends records to node.out (in-process, for specs).
function M.collect(node)
  local out, n = node.out, #node.out
  return { push = function(record)
    n = n + 1
    out[n] = record
  end }
end

--- discard: drops every record (a "blackhole" sink, for benchmarks: the
-- pipeline computes its results and the sink costs nothing); they count
-- as records out.
function M.discard()
  return { push = function() end }
end

--- print: writes tostring(record) to stdout.
function M.print()
  local stdout = io.stdout
  return { push = function(record)
    stdout:write(tostring(record), "\n")
  end }
end

return M
