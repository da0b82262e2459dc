--- The HTTP API of a running job (weir run --http, weir.http): JSON about
-- the job (lua-cjson through weir.json), its metrics in the Prometheus
-- text exposition format (version 0.0.4) and the dashboard's static
-- files. README.md ("HTTP API and Prometheus") documents every shape.
--
--   GET  /api/v1/jobs                    [ job ]
--   GET  /api/v1/jobs/NAME               job with its plan and subtasks
--   GET  /api/v1/jobs/NAME/checkpoints   weir.job_history checkpoints
--   GET  /api/v1/jobs/NAME/exceptions    weir.job_history exceptions
--   POST /api/v1/jobs/NAME/savepoints    { dir } -> { path }, once taken
--   POST /api/v1/jobs/NAME/cancel        { savepoint } -> { state,
--                                        savepoint }, once stopped
--   GET  /metrics                        Prometheus
--   GET  /, /dashboard/FILE              the dashboard (lua/weir/dashboard)
--
-- Who may send what: weir.http_auth.
local core = require "weir.core"
local errors = require "weir.errors"
local fsutil = require "weir.fsutil"
local http = require "weir.http"
local http_auth = require "weir.http_auth"
local json = require "weir.json"

local M = {}

-- A Prometheus label value: backslash, double quote and newline escaped.
local function label(v)
  return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"',
    ["\n"] = "\\n" }))
end

local function number(v) return string.format("%.17g", v) end

--- The Prometheus text of a job: status (the control socket's status
-- reply), samples (the subtasks of M.subtasks: weir.host Host:metrics of
-- every worker with rates and state sizes), last (the coordinator's last
-- completed checkpoint, { duration_ms, sync_ms, async_ms, size_bytes },
-- or nil) and counts (weir.job_history checkpoint counts, or nil).
-- @return text, every family with HELP and TYPE
function M.prometheus(status, samples, last, counts)
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
  family("weir_backpressure_ratio", "gauge", "Share of the last second a "
    .. "subtask waited for credit from its consumers (0 to 1).",
    per_subtask("backpressure", 1))
  local lag, now = {}, core.time_ms()
  for _, s in ipairs(samples) do
    if s.watermark_ms then
      lag[#lag + 1] = string.format('{job_name="%s",operator="%s",'
        .. 'subtask="%d"} %s', job, label(s.operator), s.subtask,
        number(math.max(0, now - s.watermark_ms) / 1000))
    end
  end
  family("weir_watermark_lag_seconds", "gauge", "Wall-clock time minus a "
    .. "subtask's watermark (event time), for subtasks with one.", lag)
  family("weir_state_size_bytes", "gauge", "Bytes of a subtask's state "
    .. "in the last completed checkpoint.", per_subtask("state_bytes", 1))
  family("weir_uptime_seconds", "gauge", "Time since the job started.",
    one(status.uptime_ms / 1000))
  family("weir_checkpoints_completed_total", "counter", "Checkpoints "
    .. "completed since the job started.", one(status.checkpoints or 0))
  family("weir_checkpoints_failed_total", "counter", "Checkpoints that "
    .. "failed (declined, expired or abandoned) since the job started.",
    one(counts and counts.failed or 0))
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

--- The job's plan as GET /api/v1/jobs/NAME shows it.
-- @param job a prepared job (weir.launch.prepare)
-- @return { operators = { { uid, kind, parallelism, chain } } in
--   topological order, chains = { { id, head, parallelism, operators =
--   { uid } } }, edges = { { from, to, partitioning = "forward" | "hash"
--   | "rebalance", chained } } }
function M.plan(job)
  local operators, chains, edges, across = {}, {}, {}, {}
  for _, e in ipairs(job.plan.edges) do across[e.from.id .. ">" .. e.to.id] = e end
  for _, node in ipairs(job.pipeline.nodes) do
    operators[#operators + 1] = { uid = node.uid, kind = node.kind,
      parallelism = node.parallelism, chain = node.chain.id }
    for _, from in ipairs(node.inputs) do
      local e = across[from.id .. ">" .. node.id]
      edges[#edges + 1] = { from = from.uid, to = node.uid,
        partitioning = e and e.kind or "forward", chained = e == nil }
    end
  end
  for _, chain in ipairs(job.plan.chains) do
    local uids = {}
    for i, node in ipairs(chain.nodes) do uids[i] = node.uid end
    chains[#chains + 1] = { id = chain.id, head = chain.head.uid,
      parallelism = chain.parallelism, operators = uids }
  end
  return { operators = operators, chains = chains, edges = edges }
end

-- Keeps the two newest distinct samples of each task (by sample_ms), for
-- rates over the interval between them.
local function sampler(metrics)
  local last, before = {}, {}
  return function()
    local out = {}
    for _, s in ipairs(metrics()) do
      local l = last[s.task]
      if not l or l.sample_ms ~= s.sample_ms then
        before[s.task], last[s.task] = l, s
      end
      local b = before[s.task]
      local dt = b and s.sample_ms and b.sample_ms
        and (last[s.task].sample_ms - b.sample_ms) / 1000
      local r = {}
      for k, v in pairs(s) do r[k] = v end
      r.backpressured_share = nil  -- weir.metrics's, of its own interval
      if dt and dt > 0 then
        local cur = last[s.task]
        r.records_in_per_s = (cur.records_in - b.records_in) / dt
        r.records_out_per_s = (cur.records_out - b.records_out) / dt
        r.backpressure = math.min(1, math.max(0, (cur.backpressured_ms
          - b.backpressured_ms) / (dt * 1000)))
      end
      out[#out + 1] = r
    end
    table.sort(out, function(a, b) return a.task < b.task end)
    return out
  end
end

-- The subtasks of a job with rates and state sizes: samples of
-- sampler(), each given chain, state_bytes (its chain's operators' state
-- in the last completed checkpoint) and zero rates before there are two
-- samples.
local function subtasks(job, samples)
  local chain_of = {}
  for _, chain in ipairs(job.plan.chains) do chain_of[chain.head.uid] = chain end
  for _, s in ipairs(samples) do
    local chain = chain_of[s.operator]
    s.chain = chain and chain.id
    local bytes
    for _, node in ipairs(chain and chain.nodes or {}) do
      local b = job.history:state_size(node.uid, s.subtask)
      if b then bytes = (bytes or 0) + b end
    end
    s.state_bytes = bytes or 0
    s.records_in_per_s = s.records_in_per_s or 0
    s.records_out_per_s = s.records_out_per_s or 0
    s.backpressure = s.backpressure or 0
    s.sample_ms, s.task = nil, nil
  end
  return samples
end

local TYPES = { html = "text/html; charset=utf-8", js =
  "text/javascript; charset=utf-8", css = "text/css; charset=utf-8",
  svg = "image/svg+xml", png = "image/png" }

-- The directory of the dashboard's files: lua/weir/dashboard, next to
-- this module wherever it is installed.
local DASHBOARD = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")
  or ".") .. "/dashboard"

-- Answers GET of a dashboard file (name: no directories).
local function static(name, reply)
  local ext = name:match("%.(%w+)$")
  local f = name:match("^[%w_.-]+$") and not name:match("^%.")
    and TYPES[ext] and io.open(DASHBOARD .. "/" .. name, "rb")
  if not f then
    return reply(404, "application/json", json.encode({ error =
      "no such file: /dashboard/" .. name }) .. "\n")
  end
  local body = f:read("*a")
  f:close()
  reply(200, TYPES[ext], body)
end

-- Decodes %XX escapes of a URL path segment.
local function unescape(s)
  return (s:gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end

-- The JSON object of a POST body: {} when empty.
-- @return table | nil, message
local function body_object(body)
  if body == nil or body:match("^%s*$") then return {} end
  local ok, v = pcall(json.decode, body)
  if not ok or type(v) ~= "table" then
    return nil, "the body must be a JSON object, or empty"
  end
  return v
end

--- The request handler (weir.http) of a job.
-- @param job a prepared job (weir.launch.prepare)
-- @param handlers the control socket's (weir.control: status, metrics,
--   savepoint, cancel)
-- @param coordinator fn() -> the job's coordinator or nil
-- @param policy who may do what (weir.http_auth.check)
-- @return handler, close(): answers the cancel requests waiting for the
--   job to stop
function M.handler(job, handlers, coordinator, policy)
  local samples = sampler(function() return handlers.metrics().tasks end)
  local stopping = {}
  local function answer(reply, status, v)
    reply(status, "application/json", json.encode(v) .. "\n")
  end
  local function subtask_rows() return subtasks(job, samples()) end
  local api = {
    [""] = function(reply) answer(reply, 200, job_json(handlers.status())) end,
    detail = function(reply)
      local r = job_json(handlers.status())
      for k, v in pairs(M.plan(job)) do r[k] = v end
      r.subtasks = subtask_rows()
      answer(reply, 200, r)
    end,
    checkpoints = function(reply)
      answer(reply, 200, job.history:checkpoints_json())
    end,
    exceptions = function(reply)
      answer(reply, 200, job.history:exceptions_json())
    end,
    savepoints = function(reply, body)
      local dir = body.dir or job.job_dir .. "/savepoints"
      if type(dir) ~= "string" then
        return answer(reply, 400, { error = "dir must be a string" })
      end
      handlers.savepoint(fsutil.absolute(dir),
        function(err, path)
          if err then return answer(reply, 409, { error = err }) end
          answer(reply, 200, { path = path })
        end)
    end,
    cancel = function(reply, body)
      local dir = body.savepoint
      if dir ~= nil and type(dir) ~= "string" then
        return answer(reply, 400, { error = "savepoint must be a string" })
      end
      handlers.cancel(dir and fsutil.absolute(dir),
        function(err, path)
          if err then return answer(reply, 409, { error = err }) end
          stopping[#stopping + 1] = function()
            answer(reply, 200, { state = "cancelled", savepoint = path })
          end
        end)
    end,
  }
  local POST = { savepoints = true, cancel = true }
  local function route(req, reply)
    local path = req.path
    -- The dashboard's files hold no data of the job: no token needed (its
    -- page sends the token, from its URL, with every API request).
    if path == "/" then
      return "GET", function() static("index.html", reply) end, true
    end
    local file = path:match("^/dashboard/(.+)$")
    if file then return "GET", function() static(file, reply) end, true end
    if path == "/metrics" then
      return "GET", function()
        local c = coordinator()
        reply(200, "text/plain; version=0.0.4; charset=utf-8",
          M.prometheus(handlers.status(), subtask_rows(),
            c and c.last_checkpoint, job.history.counts))
      end
    end
    if path == "/api/v1/jobs" or path == "/api/v1/jobs/" then
      return "GET", function()
        answer(reply, 200, { job_json(handlers.status()) })
      end
    end
    local name, rest = path:match("^/api/v1/jobs/([^/]+)/?(.*)$")
    if not name then return nil end
    if unescape(name) ~= job.name then
      return "ANY", function()
        answer(reply, 404, { error = "no job " .. unescape(name) .. " here; "
          .. "this is job " .. job.name })
      end
    end
    local f = api[rest == "" and "detail" or rest]
    if not f or rest == "detail" then return nil end
    return POST[rest] and "POST" or "GET", f
  end
  local function handle(req, reply)
    local method, f, public = route(req, reply)
    if not method then
      return answer(reply, 404, { error = "no such resource: " .. req.path })
    end
    if method ~= "ANY" and req.method ~= method then
      return answer(reply, 405, { error = req.method .. " is not allowed on "
        .. req.path .. " (" .. method .. " is)" })
    end
    if not public then
      local status, why = http_auth.check(policy, req)
      if status then return answer(reply, status, { error = why }) end
    end
    if req.method ~= "POST" then return f(reply) end
    local body, err = body_object(req.body)
    if not body then return answer(reply, 400, { error = err }) end
    f(reply, body)
  end
  return handle, function()
    local waiting = stopping
    stopping = {}
    for _, respond in ipairs(waiting) do respond() end
  end
end

--- Serves a job's HTTP API when its options ask for it (option http:
-- "[ADDR:]PORT" or "off"; under weir run the default is $WEIR_HTTP if
-- set, else 127.0.0.1:8081, the next free port up to 8090 if it is
-- taken), and announces it with one line "weir: http://ADDR:PORT/".
-- A non-loopback address needs option http_token_file (see
-- weir.http_auth).
-- @return the server (:close() answers the cancel requests waiting for
--   the job to stop, then closes) or nil (off, or it could not listen:
--   after a warning); raises on a malformed address, or a non-loopback
--   one without a token
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
  local policy = { loopback = http_auth.is_loopback(addr.host) }
  if job.options.http_token_file then
    policy.token, err = http_auth.read_token(job.options.http_token_file)
    if not policy.token then error(err, 0) end
  elseif not policy.loopback then
    error(string.format("--http %s: a non-loopback address needs "
      .. "--http-token-file FILE (a token every request must carry); "
      .. "or serve on 127.0.0.1", spec), 0)
  end
  local handle, answer_waiting = M.handler(job, handlers, coordinator, policy)
  local server, where = http.listen(addr, handle, try_next)
  if not server then
    errors.warn("the HTTP API is off: " .. where)
    return nil
  end
  errors.note("http://" .. where .. "/")
  local close = server.close
  function server.close()
    answer_waiting()
    close()
  end
  return server
end

return M
