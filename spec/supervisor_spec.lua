-- The supervisor and the checkpoint coordinator, driven by hand with fake
-- worker processes and fake connections: no process starts, and the loop
-- runs only for the restart delay (1 ms).
local h = require "helpers"
local weir = require "weir"
local core = require "weir.core"
local checkpoint = require "weir.checkpoint_storage"
local coordinator = require "weir.coordinator"
local launch = require "weir.launch"
local protocol = require "weir.protocol"
local supervisor = require "weir.supervisor"

-- A job of two subtasks per operator (so two workers) checkpointing into
-- dir; options override the pipeline's.
local function job_of(dir, options)
  local o = { name = "supervised", checkpoint_dir = dir, parallelism = 2,
    checkpoint_interval = 0,
    restart = weir.fixed_delay { attempts = 1, delay_ms = 1 } }
  for k, v in pairs(options or {}) do o[k] = v end
  local p = weir.pipeline(o)
  p:sequence(1, 10):map(function(x) return x end):collect()
  local job = launch.prepare(p, 2)
  h.sh("mkdir -p " .. h.quote(job.job_dir))
  return job
end

-- Worker processes that never run: spawn records them, kill records the
-- signal; a spec makes one exit with proc:exit(status, signal).
local function fake_spawner()
  local procs = {}
  local function spawn(index, cmd, on_exit)
    local proc = { index = index, cmd = cmd, kills = {} }
    function proc:kill(signal) self.kills[#self.kills + 1] = signal end
    function proc:exit(status, signal) on_exit(status, signal or 0) end
    procs[#procs + 1] = proc
    return proc
  end
  return procs, spawn
end

-- The control connection of worker i of attempt: what the supervisor
-- sends on it is kept decoded in conn.sent (checked as a worker checks
-- it); conn.say(t, fields) sends a message as that worker.
local function connect(sup, i, attempt)
  local conn = { sent = {} }
  function conn:send(bytes)
    self.sent[#self.sent + 1] = assert(protocol.decode(bytes, "coordinator"))
  end
  function conn:close() self.closed = true end
  local handler = assert(sup:admit_worker("control", i, attempt, conn))
  function conn.say(t, fields) handler(protocol.encode(t, fields)) end
  function conn.types()
    local out = {}
    for k, msg in ipairs(conn.sent) do out[k] = msg.t end
    return out
  end
  return conn
end

local function new_supervisor(dir, options)
  local procs, spawn = fake_spawner()
  local job = job_of(dir, options)
  local sup = supervisor.new(job, { script = "job.lua", flags = {} },
    { spawn = spawn, run_dir = dir })
  return sup, procs, job
end

describe("weir.supervisor", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  it("introduces the workers once all said hello, starts them once all "
    .. "are ready, and ends the job once they stopped", function()
    local sup, procs, job = new_supervisor(dir)
    sup:start_attempt(false)
    assert.are.equal(2, #procs)
    -- Each is started as `weir worker` of the script, with its index.
    assert.are.equal("job.lua", procs[2].cmd.script)
    assert.same({ "--coordinator", dir .. "/coordinator.sock", "--worker",
      "1" }, { unpack(procs[2].cmd.args, 1, 4) })
    local a, b = connect(sup, 0, 0), connect(sup, 1, 0)
    a.say("hello", { worker = 0, address = "a.sock" })
    assert.same({}, b.sent)
    b.say("hello", { worker = 1, address = "b.sock" })
    assert.same({ "a.sock", "b.sock" }, a.sent[1].addresses)
    assert.same({ "peers" }, b.types())
    a.say("ready")
    b.say("ready")
    assert.same({ "peers", "start" }, a.types())
    -- Without checkpoints the sinks commit once every task ended.
    for i, task in ipairs(job.plan.tasks) do
      local conn = i % 2 == 0 and b or a
      conn.say("ended", { task = task.id, late_records = 1 })
    end
    assert.same({ "peers", "start", "commit", "stop" }, b.types())
    procs[1]:exit(0)
    assert.is_nil(sup.outcome)
    procs[2]:exit(0)
    assert.is_true(sup.outcome.ok)
    local stats = sup:stats(core.monotonic_ms())
    -- Each worker's late records, as it last reported them.
    assert.are.equal(2, stats.late_records)
    assert.are.equal(0, stats.restarts)
  end)

  it("kills every worker when one fails and starts a new attempt that "
    .. "refuses the old attempt's connections", function()
    local sup, procs = new_supervisor(dir)
    sup:start_attempt(false)
    local a = connect(sup, 0, 0)
    connect(sup, 1, 0)
    a.say("error", { worker = 0, message = "boom", fatal = false })
    assert.same({ "KILL" }, procs[1].kills)
    assert.same({ "KILL" }, procs[2].kills)
    procs[1]:exit(0, 9)
    procs[2]:exit(0, 9)
    -- The restart waits for its delay on the loop.
    core.run()
    assert.are.equal(4, #procs)
    assert.are.equal(1, sup.restarts)
    local refused, why = sup:admit_worker("control", 0, 0, {})
    assert.is_nil(refused)
    assert.matches("no worker 0 of attempt 0", why)
    assert.is_function(sup:admit_worker("control", 0, 1,
      { close = function() end }))
  end)

  it("fails the job once the restart strategy gives up, naming the cause",
    function()
    local sup, procs = new_supervisor(dir, { restart = weir.none() })
    sup:start_attempt(false)
    procs[2]:exit(3)
    procs[1]:exit(0, 9)
    assert.is_nil(sup.outcome.ok)
    assert.matches("worker 1 exited with status 3", sup.outcome.message)
  end)

  it("does not restart after a fatal error (a set-up failure)", function()
    local sup, procs = new_supervisor(dir)
    sup:start_attempt(false)
    local a = connect(sup, 0, 0)
    a.say("error", { worker = 0, message = "cannot open input x",
      fatal = true })
    procs[1]:exit(1)
    procs[2]:exit(0, 9)
    assert.are.equal("cannot open input x", sup.outcome.message)
    assert.are.equal(2, #procs)
  end)

  it("fails the attempt when a worker is silent past the heartbeat "
    .. "timeout, with a longer grace while the workers set up", function()
    local sup, procs = new_supervisor(dir, { heartbeat_timeout = 100 })
    sup:start_attempt(false)
    local now = core.monotonic_ms()
    sup:check_heartbeats(now + 500)        -- setting up: 10 x 100 ms
    assert.same({}, procs[1].kills)
    sup:check_heartbeats(now + 1500)
    assert.same({ "KILL" }, procs[1].kills)
  end)

  it("refuses a message a worker does not send, naming it", function()
    local sup = new_supervisor(dir)
    sup:start_attempt(false)
    local a = connect(sup, 0, 0)
    local ok, err = pcall(a.say, "start")
    assert.is_false(ok)
    local _, bad = protocol.decode(protocol.encode("start"), "worker")
    assert.matches("comes from the coordinator", bad)
    assert.matches("comes from the coordinator", tostring(err.message or err))
  end)
end)

describe("weir.protocol", function()
  it("refuses to build a message with a missing or mistyped field",
    function()
    assert.has_error(function()
      protocol.encode("ack", { task = 1, id = 2 })
    end)
    assert.has_error(function() protocol.encode("nonesuch") end)
    local _, bad = protocol.decode(require("string.buffer").encode(
      { t = "trigger", id = "7" }), "coordinator")
    assert.matches("field id is string, not a number", bad)
    assert.is_nil((protocol.decode("\255\255", "worker")))
  end)
end)

describe("weir.coordinator with fake hosts", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- A host that logs what the coordinator asks of it.
  local function fake_host(log)
    local host = {}
    for _, m in ipairs({ "trigger", "complete", "commit", "abort", "stop" }) do
      host[m] = function(_, id)
        log[#log + 1] = m .. (id and (" " .. id) or "")
      end
    end
    return host
  end

  it("publishes a checkpoint once every task acknowledged it, then tells "
    .. "the hosts it is complete", function()
    local job = job_of(dir)
    local coord = coordinator.new(job)
    local log = {}
    coord.hosts = { fake_host(log) }
    coord:trigger(false)
    assert.same({ "trigger 1" }, log)
    for _, task in ipairs(job.plan.tasks) do coord:ack(task.id, 1, {}) end
    -- The manifest is written on the thread pool; its completion comes
    -- on the loop.
    core.run()
    assert.same({ "trigger 1", "complete 1" }, log)
    local c = checkpoint.list(job.job_dir)
    assert.are.equal(1, #c)
    assert.is_true(c[1].complete)
    coord:close()
  end)

  it("declines a checkpoint a task declined, and the job goes on",
    function()
    local job = job_of(dir, { tolerable_failed_checkpoints = 1 })
    local coord = coordinator.new(job)
    local log = {}
    coord.hosts = { fake_host(log) }
    coord:trigger(false)
    coord:ack(job.plan.tasks[1].id, 1, {})
    coord:decline(1, "cannot write x: disk full")
    assert.same({ "trigger 1", "abort 1" }, log)
    assert.is_nil(coord.pending)
    assert.is_nil(core.stat(checkpoint.path(job.job_dir, 1)))
    -- The next checkpoint is triggered as usual.
    coord:trigger(false)
    assert.are.equal("trigger 2", log[3])
    coord:close()
  end)
end)
