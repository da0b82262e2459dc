-- The HTTP API of a running job: weir run --http, GET /api/v1/jobs and
-- Prometheus GET /metrics, the default port and its fallback, --http off
-- and WEIR_HTTP.
local h = require "helpers"
local core = require "weir.core"
local json = require "weir.json"

local free_port = h.free_port

local exchange, announced = h.http_exchange, h.http_announced

-- GET (or method) path: status, content type, body.
local function request(port, path, method)
  local status, ctype, body = h.http_request(port, path, method)
  return status, ctype, body
end

describe("weir run's HTTP API", function()
  local dir
  before_each(function()
    dir = h.tmpdir()
    h.sh("mkdir " .. h.quote(dir .. "/logs"))
  end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- An unbounded job (followed files): it runs until cancelled.
  local function start(extra)
    return h.spawn_followed("spec/fixtures/follow_copy.lua", dir, extra)
  end

  local function cancel(proc)
    local r = h.run_weir({ "cancel", "follow_copy", "--checkpoint-dir",
      dir .. "/ck" })
    assert.are.equal(0, r.status, r.stderr)
    r = h.wait_exit(proc)
    assert.are.equal(0, r.status, r.stderr)
    return r
  end

  it("serves the job and its Prometheus metrics while it runs", function()
    local lines = {}
    for i = 1, 500 do lines[i] = "line " .. i end
    h.write_file(dir .. "/logs/a.log", table.concat(lines, "\n") .. "\n")
    local port = free_port()
    local proc = start({ "--http", "127.0.0.1:" .. port })
    assert.are.equal(port, announced(proc))
    local jobs
    h.wait_until(function()
      local status, ctype, body = request(port, "/api/v1/jobs")
      assert.are.equal(200, status)
      assert.are.equal("application/json", ctype)
      jobs = json.decode(body)
      return jobs[1].state == "running" and jobs[1].checkpoints >= 1
    end, 20000, "a running job with a checkpoint")
    local j = jobs[1]
    assert.are.equal("follow_copy", j.name)
    assert.are.equal(proc.pid, j.pid)
    assert.are.equal(2, j.parallelism)
    assert.are.equal(0, j.restarts)
    assert.matches("/chk%-%d+$", j.last_checkpoint)

    local text
    h.wait_until(function()
      local status, ctype, body = request(port, "/metrics")
      assert.are.equal(200, status)
      assert.are.equal("text/plain; version=0.0.4; charset=utf-8", ctype)
      text = body
      local n = 0
      for v in body:gmatch('weir_records_in_total{job_name="follow_copy",'
          .. 'operator="lines",subtask="%d"} (%d+)') do
        n = n + tonumber(v)
      end
      return n == 500
    end, 20000, "the metrics to count every line read")
    -- Every sample's family has its HELP and TYPE; names in base units.
    for name in text:gmatch("\n(weir_[%w_]+){") do
      assert.matches("# HELP " .. name .. " ", text)
      assert.matches("# TYPE " .. name .. " %a+\n", text)
      assert.is_nil(name:find("_ms"), name)
    end
    assert.matches('\nweir_last_checkpoint_duration_seconds{job_name='
      .. '"follow_copy"} [%d.e-]+\n', text)
    assert.matches('\nweir_checkpoints_completed_total{job_name='
      .. '"follow_copy"} %d+\n', text)
    if h.sh("command -v promtool"):find("%S") then
      h.write_file(dir .. "/metrics.txt", text)
      local out, status = h.sh("promtool check metrics < "
        .. h.quote(dir .. "/metrics.txt") .. " 2>&1")
      assert.are.equal(0, status, out)
    end

    local status, _, body = request(port, "/nope")
    assert.are.equal(404, status)
    assert.matches("no such resource: /nope", body)
    status, _, body = request(port, "/metrics", "POST")
    assert.are.equal(405, status)
    assert.matches("POST is not allowed on /metrics", body)
    local r = exchange(port, "NOT HTTP AT ALL\r\n\r\n")
    assert.matches("^HTTP/1%.1 400 Bad Request\r\n", r)

    cancel(proc)
    assert.matches("connect failed", exchange(port, "GET / HTTP/1.1\r\n\r\n"))
  end)

  it("takes the next free port when 8081 is taken, and none with --http off",
    function()
      local spare = free_port()  -- before 8081 is held: that runs the loop
      local held = core.listen("tcp:127.0.0.1:8081", function() end)
      finally(function() if held then held:close() core.run() end end)
      h.write_file(dir .. "/job.lua", [[
local weir = require "weir"
local p = weir.pipeline { name = "short" }
p:sequence(1, 10):uid("n"):discard()
p:run()
]])
      -- WEIR_HTTP empty: the default, as a user's shell has it.
      local r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
        dir .. "/job.lua" }, "WEIR_HTTP=")
      assert.are.equal(0, r.status, r.stderr)
      local port = tonumber(r.stderr:match("weir: http://127%.0%.0%.1:(%d+)/"))
      assert.is_truthy(port, r.stderr)
      assert.is_true(port >= 8081 and port <= 8090, r.stderr)
      if held then assert.are_not.equal(8081, port) end
      r = h.run_weir({ "run", "--http", "off", "--checkpoint-dir",
        dir .. "/ck", dir .. "/job.lua" }, "WEIR_HTTP=")
      assert.are.equal(0, r.status, r.stderr)
      assert.is_nil(r.stderr:find("http://"), r.stderr)
      r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
        dir .. "/job.lua" }, "WEIR_HTTP=127.0.0.1:" .. spare)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("weir: http://127%.0%.0%.1:%d+/", r.stderr)
      r = h.run_weir({ "run", "--http", "nonsense", "--checkpoint-dir",
        dir .. "/ck", dir .. "/job.lua" })
      assert.are.equal(1, r.status)
      assert.matches("%-%-http must be %[ADDR:%]PORT or off", r.stderr)
    end)
end)
