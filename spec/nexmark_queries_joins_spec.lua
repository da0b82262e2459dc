-- The updating Nexmark queries (examples/nexmark/q3, q4, q9, q15 - q20):
-- joins, unbounded GROUP BYs and ROW_NUMBER top-N, which emit a key's new
-- row whenever it changes. Run by `weir run` at parallelism 1 and 2, the
-- last row of every key in the committed output must be the final table
-- that plain Lua computes from the SQL (spec/nexmark/qN_reference.lua)
-- over the same generated events; and so after kill -9 and a restore.
local h = require "helpers"
local core = require "weir.core"
local nexmark = require "weir.nexmark"

local EVENTS = 50000
local SEED = 7
-- Events per second of event time. At DAYS, 50,000 events span 28 hours,
-- so the per-day queries see two days. At MS, they span 5 s: an auction
-- stays open for up to 1/3 s (2/3 s at parallelism 2), in which many bids
-- reach it, and a millisecond holds ten events, so bids of equal time
-- (ties the queries break in a fixed order) are common.
local DAYS, MS = 0.5, 10000

-- Per query: the rate of its events, the columns of a row's key, and the
-- least number of keys the final table must have. q20's rows have no key:
-- the whole row is its own key, and the rows are compared as a multiset.
local QUERIES = {
  { name = "q3", rate = MS, key = { 4 }, min_keys = 100 },
  { name = "q4", rate = MS, key = { 1 }, min_keys = 5 },
  { name = "q9", rate = MS, key = { 1 }, min_keys = 1000 },
  { name = "q15", rate = DAYS, key = { 1 }, min_keys = 2 },
  { name = "q16", rate = DAYS, key = { 1, 2 }, min_keys = 5000 },
  { name = "q17", rate = DAYS, key = { 1, 2 }, min_keys = 2000 },
  { name = "q18", rate = MS, key = { 1, 2 }, min_keys = 5000 },
  { name = "q19", rate = MS, key = { 1, 8 }, min_keys = 10000 },
  { name = "q20", rate = MS, min_keys = 5000 },
}

-- The events a job at `parallelism` generates: the union of generator
-- instances 0 .. parallelism - 1 (subtask i of the nexmark source is
-- instance i).
local function generated_events(events, rate, parallelism)
  local out = {}
  for i = 0, parallelism - 1 do
    local g = nexmark.generator { events = events, rate = rate, seed = SEED,
      instance = i, instances = parallelism }
    for e in function() return g:next() end do out[#out + 1] = e end
  end
  return out
end

-- The tab-separated columns of a line (empty ones included).
local function columns(line)
  local out, i = {}, 1
  while true do
    local j = line:find("\t", i, true)
    if not j then
      out[#out + 1] = line:sub(i)
      return out
    end
    out[#out + 1] = line:sub(i, j - 1)
    i = j + 1
  end
end

-- The committed lines of a write_lines sink in dir, in the order each
-- subtask wrote them: its files in sequence order, each file's lines in
-- order. A key's rows all come from one subtask, so a key's last line is
-- its last row.
local function output_lines(dir)
  local files = {}
  for _, name in ipairs(core.scandir(dir) or {}) do
    local subtask, seq = name:match("^part%-(%d+)%-(%d+)$")
    if subtask then
      files[#files + 1] = { tonumber(subtask), tonumber(seq), name }
    end
  end
  table.sort(files, function(x, y)
    if x[1] ~= y[1] then return x[1] < y[1] end
    return x[2] < y[2]
  end)
  local lines = {}
  for _, f in ipairs(files) do
    for line in io.lines(dir .. "/" .. f[3]) do lines[#lines + 1] = line end
  end
  return lines
end

-- The final table of query q's output in dir: { [key] = last row }, the
-- key being q.key's columns joined by tabs; for a query without a key,
-- the multiset { [row] = times }.
local function final_table(q, dir)
  local out = {}
  for _, line in ipairs(output_lines(dir)) do
    if q.key then
      local cols, key = columns(line), {}
      for i, c in ipairs(q.key) do key[i] = cols[c] end
      out[table.concat(key, "\t")] = line
    else
      out[line] = (out[line] or 0) + 1
    end
  end
  return out
end

local function size(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Fails unless two final tables are equal, naming a key that differs.
local function assert_same_table(expected, actual)
  for k, v in pairs(expected) do
    if actual[k] ~= v then assert.are.equal(v, actual[k], "key " .. k) end
  end
  for k, v in pairs(actual) do
    if expected[k] == nil then assert.is_nil(v, "key " .. k) end
  end
end

local function run_args(q, parallelism, case_dir, events, extra)
  local args = { "run", "--parallelism", tostring(parallelism),
    "--checkpoint-dir", case_dir .. "/ck" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  for _, a in ipairs({ "examples/nexmark/" .. q.name .. ".lua",
      tostring(events), case_dir .. "/out", tostring(q.rate),
      tostring(SEED) }) do
    args[#args + 1] = a
  end
  return args
end

describe("updating Nexmark queries", function()
  local dir
  local events = {}        -- rate -> parallelism -> the events of the job

  setup(function()
    dir = h.tmpdir()
    for _, rate in ipairs({ DAYS, MS }) do
      events[rate] = {}
      for _, parallelism in ipairs({ 1, 2 }) do
        events[rate][parallelism] = generated_events(EVENTS, rate,
          parallelism)
      end
    end
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  for _, q in ipairs(QUERIES) do
    for _, parallelism in ipairs({ 1, 2 }) do
      it(string.format("%s at parallelism %d ends with the SQL's final table",
        q.name, parallelism), function()
        local case_dir = dir .. "/" .. q.name .. "-" .. parallelism
        local r = h.run_weir(run_args(q, parallelism, case_dir, EVENTS))
        assert.are.equal(0, r.status, r.stderr)
        local reference = require("nexmark." .. q.name .. "_reference")
        local expected = reference(events[q.rate][parallelism])
        assert.is_true(size(expected) >= q.min_keys, string.format(
          "the reference has only %d keys", size(expected)))
        assert_same_table(expected, final_table(q, case_dir .. "/out"))
      end)
    end
  end
end)

describe("a Nexmark join after kill -9", function()
  local dir
  local EVENTS_KILLED = 300000
  local Q = { name = "q20", rate = MS }

  setup(function() dir = h.tmpdir() end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  it("q20 at parallelism 2 restores to the SQL's final table", function()
    local case_dir = dir .. "/kills"
    local job_dir = case_dir .. "/ck/q20"
    local args = run_args(Q, 2, case_dir, EVENTS_KILLED,
      { "--restore", "latest", "--checkpoint-interval", "30" })
    local r = h.kill_after_checkpoints(args, job_dir, { 1, 2 })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("restored from", r.stderr)
    local expected = require("nexmark.q20_reference")(
      generated_events(EVENTS_KILLED, Q.rate, 2))
    assert.is_true(size(expected) >= 30000)
    assert_same_table(expected, final_table(Q, case_dir .. "/out"))
  end)
end)
