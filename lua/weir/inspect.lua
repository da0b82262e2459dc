--- Showing the state in a checkpoint or savepoint, readable: what
-- `weir inspect` prints and weir.inspect(path, opts) writes. The snapshot
-- is opened through weir.snapshot, so every checksum is verified before
-- anything is written; any failure is one message naming the snapshot.
local kinds = require "weir.kinds"
local snapshot = require "weir.snapshot"

local M = {}

--- Writes the state of an opened snapshot (weir.snapshot.open) to out, as
-- `weir inspect` shows it (opts: uid, key, format "lua" | "json").
-- Returns whether an operator matched opts.uid (or any had state).
-- Raises what reading or encoding the state raises.
function M.list_state(snap, opts, out)
  local json = require("weir.json").encode
  local found = false
  for _, op in ipairs(snap:operators()) do
    if not opts.uid or opts.uid == op.uid then
      found = true
      if opts.format == "lua" then
        out:write(string.format("-- %s (%s), parallelism %d\n", op.uid,
          op.kind, op.parallelism))
      end
      snap:each_subtask(op.uid, function(subtask, state)
        local own = {}
        for k, v in pairs(state) do
          if k ~= "key_groups" and k ~= "rocksdb" then own[k] = v end
        end
        -- An incremental RocksDB checkpoint's files, in short.
        if state.rocksdb then
          own.rocksdb_files = #state.rocksdb.files
        end
        if opts.key then return end
        if opts.format == "lua" then
          out:write(string.format("subtask %d: %s\n", subtask,
            snapshot.literal(own)))
        else
          out:write(json({ uid = op.uid, subtask = subtask, state = own }),
            "\n")
        end
      end)
      if kinds.kinds[op.kind] and kinds.is(op.kind, "keyed") then
        snap:each_key(op.uid, function(k, state, timers)
          if opts.key and tostring(k) ~= opts.key then return end
          if opts.format == "lua" then
            out:write(string.format("[%s] = %s%s\n", snapshot.literal(k),
              snapshot.literal(state), timers and ("  -- timers "
              .. snapshot.literal(timers)) or ""))
          else
            out:write(json({ uid = op.uid, key = k, state = state,
              timers = timers }), "\n")
          end
        end)
      end
    end
  end
  return found
end

--- Opens the snapshot at path and writes its state to out (see
-- list_state).
-- @param opts { uid = operator or nil, key = key as text or nil,
--   format = "lua" | "json" }
-- @return true | nil, message (a format other than lua or json, a
--   snapshot that cannot be opened or read, no operator opts.uid with
--   state in it)
function M.write(path, opts, out)
  if opts.format ~= "lua" and opts.format ~= "json" then
    return nil, "format must be lua or json, not " .. tostring(opts.format)
  end
  local snap, err = snapshot.open(path)
  if not snap then return nil, "cannot inspect " .. err end
  -- Whatever goes wrong while listing is one line naming the snapshot.
  local ok, found = pcall(M.list_state, snap, opts, out)
  if not ok then
    return nil, "cannot inspect " .. path .. ": " .. tostring(found)
  end
  if opts.uid and not found then
    return nil, "no operator '" .. opts.uid .. "' with state in " .. path
  end
  return true
end

return M
