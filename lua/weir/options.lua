--- The options of a pipeline (weir.pipeline{...}, overridden by the flags
-- of weir run): each option's default, type and description, and what a
-- valid value is. The command line checks its flags here too, so a value
-- is judged the same wherever it comes from.

local M = {}

--- The options: name -> { default, expected type, description }.
M.specs = {
  name = { "job", "string", "job name; names its checkpoint directory" },
  checkpoint_interval = { 1000, "number",
    "ms between checkpoints; 0 turns checkpoints off" },
  checkpoint_dir = { "checkpoints", "string",
    "directory holding <name>/chk-<n> checkpoints" },
  retain = { 3, "number", "complete checkpoints kept" },
  retain_on_cancel = { false, "boolean",
    "keep the complete checkpoints when the job is cancelled" },
  savepoint_on_stop = { false, "string", "directory for a savepoint taken "
    .. "when SIGTERM or SIGINT stops the job (weir run)" },
  max_parallelism = { 128, "number", "number of key groups" },
  mode = { "exactly_once", "string",
    "exactly_once (aligned barriers) or at_least_once" },
  restore = { false, "string",
    "\"latest\" or the path of a checkpoint to restore from" },
  parallelism = { false, "number",
    "subtasks per operator (weir run: the number of cores; from Lua: 1)" },
  allow_non_restored_state = { false, "boolean",
    "restore even if the snapshot holds state for operators the job lacks" },
  metrics = { false, "string",
    "file to append a JSON line of metrics to every second" },
  transport = { "unix", "string",
    "channels between workers: unix (domain sockets) or tcp (loopback)" },
  heartbeat_timeout = { 3000, "number",
    "ms without a heartbeat after which a worker counts as hung" },
  checkpoint_timeout = { 600000, "number",
    "ms after which an incomplete checkpoint is aborted" },
  tolerable_failed_checkpoints = { 0, "number",
    "checkpoints that may fail in a row before the job fails" },
  restart = { false, "table", "restart strategy: weir.fixed_delay{...}, "
    .. "weir.exponential_delay{...}, weir.failure_rate{...} or weir.none()" },
  gc_pause = { 400, "number", "% of the heap left after a garbage "
    .. "collection that starts the next one, while the job runs (at most "
    .. "200 on the rocksdb state backend)" },
  fork_snapshot_keys = { 10000, "number", "keys from which a keyed "
    .. "operator's checkpoint is serialized and written by a forked "
    .. "copy-on-write process while the job goes on (0: always; -1: never)" },
  state_backend = { "heap", "string", "where keyed state lives: heap (Lua "
    .. "tables, fits in memory) or rocksdb (RocksDB on local disk, may be "
    .. "larger than memory)" },
  state_cache_mb = { 256, "number", "MiB of decoded keys the rocksdb "
    .. "state backend caches per process" },
  http = { false, "string", "\"[ADDR:]PORT\" or \"off\": serve the "
    .. "job's HTTP API (weir run: on 127.0.0.1:8081 unless off)" },
  http_token_file = { false, "string", "file whose first line is the "
    .. "token HTTP requests must carry (Authorization: Bearer TOKEN): every "
    .. "request on a non-loopback address, savepoint and cancel requests "
    .. "of other users on loopback" },
  log_level = { "info", "string", "the least severe log lines written on "
    .. "stderr: error, warn, info (what the job does; default) or debug" },
  agents = { false, "string", "\"HOST:PORT,...\": run the job's worker "
    .. "processes on these weir agents (weir run only)" },
  ha = { false, "string", "\"etcd://HOST:PORT\": coordinators of the "
    .. "job elect a leader there; the others wait as standbys (weir run "
    .. "only)" },
  ha_new_run = { false, "boolean", "with ha: start a new run of the job "
    .. "even if etcd records an unfinished one (weir run only)" },
  secret_file = { false, "string", "file whose first line is the secret "
    .. "shared with the agents (default: ~/.config/weir/secret)" },
  state_dir = { false, "string", "directory for the rocksdb state "
    .. "backend's working files (default: /tmp); a directory of each "
    .. "process's own is made in it and removed at its end" },
}

local function integer(v) return v % 1 == 0 end

-- What a valid value of an option is, beyond its type, in the order they
-- are checked: { name, test(value) -> true if valid, what it must be }.
local RULES = {
  { "checkpoint_interval", function(v) return v >= 0 end, "must be >= 0 ms" },
  { "retain", function(v) return v >= 1 and integer(v) end,
    "must be an integer >= 1" },
  { "max_parallelism", function(v)
      return v >= 1 and v <= 32768 and integer(v)
    end, "must be an integer in 1..32768" },
  { "parallelism", function(v) return v >= 1 and integer(v) end,
    "must be an integer >= 1" },
  { "gc_pause", function(v) return v >= 100 and integer(v) end,
    "must be an integer >= 100 (%)" },
  { "transport", function(v) return v == "unix" or v == "tcp" end,
    "must be \"unix\" or \"tcp\"" },
  { "mode", function(v)
      return v == "exactly_once" or v == "at_least_once"
    end, "must be \"exactly_once\" or \"at_least_once\"" },
  { "name", function(v) return v:match("^[%w_.-]+$") ~= nil end,
    "may hold only letters, digits, '_', '.' and '-'" },
  { "heartbeat_timeout", function(v) return v > 0 end,
    "must be a number of ms > 0" },
  { "checkpoint_timeout", function(v) return v > 0 end,
    "must be a number of ms > 0" },
  { "fork_snapshot_keys", function(v) return v >= -1 and integer(v) end,
    "must be an integer >= -1" },
  { "state_backend", function(v) return v == "heap" or v == "rocksdb" end,
    "must be \"heap\" or \"rocksdb\"" },
  { "state_cache_mb", function(v) return v > 0 end, "must be > 0 (MiB)" },
  { "http", function(v) return v == "off" or v:match("^.-:?%d+$") ~= nil end,
    "must be [ADDR:]PORT or off" },
  { "agents", function(v)
      for a in (v .. ","):gmatch("([^,]*),") do
        if not a:match("^.+:%d+$") then return false end
      end
      return true
    end, "must be HOST:PORT[,HOST:PORT...]" },
  { "ha", function(v) return v:match("^etcd://[^:/]+:%d+/?$") ~= nil end,
    "must be etcd://HOST:PORT" },
  { "log_level", function(v)
      return v == "error" or v == "warn" or v == "info" or v == "debug"
    end, "must be \"error\", \"warn\", \"info\" or \"debug\"" },
  { "tolerable_failed_checkpoints", function(v)
      return v >= 0 and integer(v)
    end, "must be an integer >= 0" },
}
local rule_of = {}
for _, rule in ipairs(RULES) do rule_of[rule[1]] = rule end

--- Raises, for a connector's options table opts, unless it is a table
-- whose every key is in known (a set of option names); the message names
-- method, the unknown option and the known ones, at the level of the
-- script line that called the builder method (its caller's caller).
function M.check_known(method, opts, known)
  if type(opts) ~= "table" then
    error(method .. ": expected a table of options, got " .. type(opts), 4)
  end
  local names = {}
  for k in pairs(known) do names[#names + 1] = k end
  table.sort(names)
  for k in pairs(opts) do
    if not known[k] then
      error(string.format("%s: unknown option '%s' (known: %s)", method,
        tostring(k), table.concat(names, ", ")), 4)
    end
  end
end

--- Checks one option's value (weir run checks its flags with it too).
-- @param name an option of M.specs; value its value
-- @return nil if the value is valid, else what it must be ("must be an
--   integer >= 1"), to follow the option's name in a message
function M.check(name, value)
  local spec = M.specs[name]
  if value == false and spec[1] == false then return nil end
  if type(value) ~= spec[2] then return "must be a " .. spec[2] end
  local rule = rule_of[name]
  if rule and not rule[2](value) then return rule[3] end
end

--- The options of a new pipeline: for each option, its value in overrides
-- (the command line's), else in opts (the script's), else its default.
-- @param opts the table given to weir.pipeline; overrides likewise
-- @return the options, every one set; raises (at the level of
--   weir.pipeline's caller) on an unknown option, a mistyped one or an
--   invalid value
function M.resolve(opts, overrides)
  for k, v in pairs(opts) do
    local spec = M.specs[k]
    if not spec then
      local names = {}
      for name in pairs(M.specs) do names[#names + 1] = name end
      table.sort(names)
      error(string.format("weir.pipeline: unknown option '%s' (known: %s)",
        tostring(k), table.concat(names, ", ")), 3)
    end
    if type(v) ~= spec[2] and v ~= false then
      error(string.format("weir.pipeline: option '%s' must be a %s, got %s",
        k, spec[2], type(v)), 3)
    end
  end
  local o = {}
  for k, spec in pairs(M.specs) do
    if overrides[k] ~= nil then o[k] = overrides[k]
    elseif opts[k] ~= nil then o[k] = opts[k]
    else o[k] = spec[1] end
  end
  for _, rule in ipairs(RULES) do
    local problem = M.check(rule[1], o[rule[1]])
    if problem then
      error("weir.pipeline: " .. rule[1] .. " " .. problem, 3)
    end
  end
  -- The name is a directory under checkpoint_dir: "." and ".." would put
  -- checkpoints into checkpoint_dir itself or its parent.
  if o.name:match("^%.+$") then
    error("weir.pipeline: name must not be only dots ('" .. o.name
      .. "' names no directory of its own under checkpoint_dir)", 3)
  end
  return o
end

return M
