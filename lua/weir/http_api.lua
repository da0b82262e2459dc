--- The HTTP API of a running job (weir run --http, weir.http): JSON about
-- the job (lua-cjson through weir.json) and its metrics in the Prometheus
-- text exposition format (version 0.0.4).
--
--   GET /api/v1/jobs  [ { name, state, pid, parallelism, workers,
--                       uptime_ms, restarts, checkpoints,
--                       last_checkpoint } ]
--   GET /metrics      Prometheus: per subtask records in and out and time
--                     backpressured; checkpoints completed, restarts, the
--                     last checkpoint's duration, sync and async time and
--                     size (base units: seconds, bytes)
local errors = require "weir.errors"
local http = require "weir.http"
local json = require "weir.json"

local M = {}

-- A Prometheus label value: backslash, double quote and newline escaped.
local function label(v)
  return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"',
    ["\n"] = "\\n" }))
end

local function number(v) return string.format("%.17g", v) end

--- The Prometheus text of a job: status (the control socket's status
-- reply), samples (weir.host Host:metrics of every worker) and last (the
-- coordinator's last completed checkpoint, { duration_ms, sync_ms,
-- async_ms, size_bytes }, or nil).
-- @return text, every family with HELP and TYPE
function M.prometheus(status, samples, last)
  local out, job = {}, label(status.job)
  local function family(name, kind, help, rows)
    out[#out + 1] = "# HELP " .. name .. " " .. help
    out[#out + 1] = "# TYPE " .. name .. " " .. kind
    for _, row in ipairs(rows) do
      out[#out + 1] = name .. row
    end
  end
  local function per_subtask(field, scale)
    local rows = {}
    for _, s in ipairs(samples) do
      rows[#rows + 1] = string.format('{job_name="%s",operator="%s",'
        .. 'subtask="%d"} %s', job, label(s.operator), s.subtask,
        number((s[field] or 0) * scale))
    end
    return rows
  end
  local function one(v) return { string.format('{job_name="%s"} %s', job,
    number(v)) } end
  family("weir_records_in_total", "counter", "Records a subtask's operator "
    .. "chain took in.", per_subtask("records_in", 1))
  family("weir_records_out_total", "counter", "Records a subtask's operator "
    .. "chain sent on to other subtasks.", per_subtask("records_out", 1))
  family("weir_backpressured_seconds_total", "counter", "Time a subtask "
    .. "waited for credit from its consumers.",
    per_subtask("backpressured_ms", 0.001))
  family("weir_uptime_seconds", "gauge", "Time since the job started.",
    one(status.uptime_ms / 1000))
  family("weir_checkpoints_completed_total", "counter", "Checkpoints "
    .. "completed since the job started.", one(status.checkpoints or 0))
  family("weir_restarts_total", "counter", "Restarts after failures.",
    one(status.restarts or 0))
  if last then
    family("weir_last_checkpoint_duration_seconds", "gauge", "From the "
      .. "last completed checkpoint's trigger to its manifest.",
      one(last.duration_ms / 1000))
    family("weir_last_checkpoint_sync_seconds", "gauge", "The last "
      .. "checkpoint's synchronous phase, the longest of its subtasks.",
      one((last.sync_ms or 0) / 1000))
    family("weir_last_checkpoint_async_seconds", "gauge", "The last "
      .. "checkpoint's asynchronous phase, the longest of its subtasks.",
      one((last.async_ms or 0) / 1000))
    family("weir_last_checkpoint_size_bytes", "gauge", "Bytes the last "
      .. "checkpoint added to checkpoint storage.", one(last.size_bytes))
  end
  return table.concat(out, "\n") .. "\n"
end

-- The status reply as /api/v1/jobs lists a job.
local function job_json(s)
  return { name = s.job, state = s.state, pid = s.pid,
    parallelism = s.parallelism, workers = s.workers,
    uptime_ms = math.floor(s.uptime_ms), restarts = s.restarts or 0,
    checkpoints = s.checkpoints, last_checkpoint = s.last_checkpoint }
end

--- The request handler (weir.http) of a job.
-- @param handlers the control socket's (weir.control: status, metrics)
-- @param coordinator fn() -> the job's coordinator or nil
function M.handler(handlers, coordinator)
  local routes = {
    ["/api/v1/jobs"] = function(reply)
      reply(200, "application/json",
        json.encode({ job_json(handlers.status()) }) .. "\n")
    end,
    ["/metrics"] = function(reply)
      local c = coordinator()
      reply(200, "text/plain; version=0.0.4; charset=utf-8",
        M.prometheus(handlers.status(), handlers.metrics().tasks,
          c and c.last_checkpoint))
    end,
  }
  return function(req, reply)
    local route = routes[req.path]
    if not route then
      return reply(404, "application/json", json.encode({ error =
        "no such resource: " .. req.path }) .. "\n")
    end
    if req.method ~= "GET" then
      return reply(405, "application/json", json.encode({ error =
        req.method .. " is not allowed on " .. req.path }) .. "\n")
    end
    route(reply)
  end
end

--- Serves a job's HTTP API when its options ask for it (option http:
-- "[ADDR:]PORT" or "off"; under weir run the default is $WEIR_HTTP if
-- set, else 127.0.0.1:8081, the next free port up to 8090 if it is
-- taken), and announces it with one line "weir: http://ADDR:PORT/".
-- @return the server (:close()) or nil (off, or it could not listen:
--   after a warning); raises on a malformed address
function M.start(job, handlers, coordinator)
  local spec, try_next = job.options.http, false
  if not spec then
    if not job.cli then return nil end
    spec = os.getenv("WEIR_HTTP")
    if not spec or spec == "" then
      spec, try_next = http.DEFAULT_HOST .. ":" .. http.DEFAULT_PORT, true
    end
  end
  local addr, err = http.parse(spec)
  if addr == false then return nil end
  if not addr then error(err, 0) end
  local server, where = http.listen(addr, M.handler(handlers, coordinator),
    try_next)
  if not server then
    errors.warn("the HTTP API is off: " .. where)
    return nil
  end
  errors.note("http://" .. where .. "/")
  return server
end

return M
