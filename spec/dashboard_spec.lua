-- The dashboard a running job serves at / (lua/weir/dashboard): headless
-- Chromium loads it from a real job, runs its script against the job's
-- JSON API, and the DOM it renders names the job, draws every operator
-- of the plan and lists the completed checkpoints; a screenshot of it
-- lands in build/dashboard.png for people to look at.
local h = require "helpers"
local core = require "weir.core"
local json = require "weir.json"

local SCREENSHOT = h.root .. "/build/dashboard.png"

-- GET path: the decoded JSON body of a 200 answer (raises on any other).
local function get_json(port, path)
  local status, _, body = h.http_request(port, path)
  assert(status == 200, "GET " .. path .. ": " .. status .. " " .. body)
  return json.decode(body)
end

-- The ids of the completed checkpoints in a checkpoints reply, as a set.
local function completed_ids(checkpoints)
  local ids = {}
  for _, c in ipairs(checkpoints.history) do
    if c.status == "completed" then ids[c.id] = true end
  end
  return ids
end

-- The data-* attribute `name` of every tag in html whose class list
-- holds the word class.
local function attributes_of_class(html, class, name)
  local values = {}
  for tag in html:gmatch("<[^>]+>") do
    local classes = tag:match(' class="([^"]*)"')
    if classes and (" " .. classes .. " "):find(" " .. class .. " ", 1,
        true) then
      values[#values + 1] = tag:match(" data%-" .. name .. '="([^"]*)"')
    end
  end
  return values
end

-- Runs headless Chromium on url with the extra arguments; returns its
-- stdout. It gets its own profile directory, and a bound on its run.
local function chromium(url, extra, profile)
  local out, status = h.sh("timeout 20 chromium --headless --no-sandbox "
    .. "--disable-gpu --user-data-dir=" .. h.quote(profile)
    .. " --virtual-time-budget=5000 " .. extra .. " " .. h.quote(url)
    .. " 2>/dev/null")
  assert.are.equal(0, status, "chromium failed on " .. url)
  return out
end

local HAVE_CHROMIUM = h.sh("command -v chromium"):find("%S") ~= nil

describe("the dashboard", function()
  if not HAVE_CHROMIUM then
    it("renders in headless Chromium", function()
      pending("chromium is not installed: the dashboard is not rendered")
    end)
    return
  end

  -- One unbounded job (followed files) for every test, rendered once: the
  -- DOM Chromium dumps, the job's plan and the ids of the checkpoints it
  -- completed before and after the dump.
  local dir, proc, port, job, dom
  local completed = {}
  local url, base = nil, "/api/v1/jobs/follow_copy"

  setup(function()
    dir = h.tmpdir()
    h.sh("mkdir " .. h.quote(dir .. "/logs") .. " "
      .. h.quote(dir .. "/chromium"))
    h.write_file(dir .. "/logs/a.log", "one\ntwo\nthree\n")
    port = h.free_port()
    url = "http://127.0.0.1:" .. port .. "/"
    proc = h.spawn_followed("spec/fixtures/follow_copy.lua", dir,
      { "--http", "127.0.0.1:" .. port })
    assert.are.equal(port, h.http_announced(proc))
    h.wait_until(function()
      return next(completed_ids(get_json(port, base .. "/checkpoints")))
    end, 20000, "a completed checkpoint")
    job = get_json(port, base)
    dom = chromium(url, "--dump-dom", dir .. "/chromium")
    for id in pairs(completed_ids(get_json(port, base .. "/checkpoints"))) do
      completed[id] = true
    end
  end)

  teardown(function()
    if proc then
      local r = h.run_weir({ "cancel", "follow_copy", "--checkpoint-dir",
        dir .. "/ck" })
      local exit = h.wait_exit(proc, 20000)
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal(0, exit.status, exit.stderr)
    end
    h.sh("rm -rf " .. h.quote(dir))
  end)

  it("renders once the job's API answered, under the job's name", function()
    assert.matches('<body[^>]* data%-ready="1"', dom)
    assert.matches('id="job%-name"[^>]*>follow_copy<', dom)
  end)

  it("draws a box for every operator of the plan", function()
    local drawn = {}
    for _, uid in ipairs(attributes_of_class(dom, "operator", "uid")) do
      drawn[uid] = true
    end
    assert.are.equal(2, #job.operators)
    for _, op in ipairs(job.operators) do
      assert.is_true(drawn[op.uid], "no box for operator " .. op.uid)
    end
  end)

  it("lists the completed checkpoints", function()
    local listed = false
    for _, id in ipairs(attributes_of_class(dom, "checkpoint", "id")) do
      listed = listed or completed[tonumber(id)] or false
    end
    assert.is_true(listed, "no completed checkpoint listed")
  end)

  it("can be captured as a screenshot", function()
    os.remove(SCREENSHOT)
    chromium(url, "--window-size=1280,900 --screenshot="
      .. h.quote(SCREENSHOT), dir .. "/chromium")
    local st = core.stat(SCREENSHOT)
    assert.is_truthy(st and st.size > 0, "no " .. SCREENSHOT)
  end)
end)
