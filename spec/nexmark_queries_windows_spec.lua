-- The Nexmark queries q0, q1, q2, q5, q7, q8, q11, q12, q14, q21 and q22
-- (examples/nexmark) run by `weir run` at parallelism 1 and 2 on a small
-- generated stream, their committed output against plain-Lua references
-- (spec/nexmark/qN_reference.lua) over the same events; and q5 after
-- kill -9 and --restore latest.
local h = require "helpers"
local nexmark = require "weir.nexmark"

local EVENTS = 50000
local SEED = 3

-- The events of a job at parallelism `instances`: the union of its
-- generator instances, as p:nexmark{...} gives subtask i of p instance i.
local event_cache = {}
local function job_events(events, rate, instances)
  local id = events .. "/" .. rate .. "/" .. instances
  if event_cache[id] then return event_cache[id] end
  local all = {}
  for i = 0, instances - 1 do
    local g = nexmark.generator { events = events, rate = rate, seed = SEED,
      instance = i, instances = instances }
    for e in function() return g:next() end do all[#all + 1] = e end
  end
  event_cache[id] = all
  return all
end

-- Raises unless the sorted lists of lines are equal, naming the first
-- difference.
local function assert_same_lines(expected, got)
  for i = 1, math.max(#expected, #got) do
    if expected[i] ~= got[i] then
      error(string.format("%d lines expected, %d written; first difference "
        .. "at line %d:\n  expected %s\n  written  %s", #expected, #got, i,
        tostring(expected[i]), tostring(got[i])), 2)
    end
  end
end

-- Each query's events per second of event time, chosen so that its output
-- is not trivial (at least min_lines): 50,000 events span 50 s at 1,000/s
-- (5 tumbling windows), 500 s at 100/s; q14 spans 28 hours so that every
-- time of day comes up.
local QUERIES = {
  { "q0", rate = 1000, min_lines = 45000 },
  { "q1", rate = 1000, min_lines = 45000 },
  { "q2", rate = 1000, min_lines = 100 },
  { "q5", rate = 100, min_lines = 200 },
  { "q7", rate = 100, min_lines = 40 },
  { "q8", rate = 1000, min_lines = 100 },
  { "q11", rate = 1000, min_lines = 1000 },
  { "q12", rate = 1000, min_lines = 500 },
  { "q14", rate = 0.5, min_lines = 10000 },
  { "q21", rate = 1000, min_lines = 40000 },
  { "q22", rate = 1000, min_lines = 45000 },
}

-- q12's windows depend on when bids are processed: its lines summed per
-- bidder, as q12_reference gives them.
local function bids_per_bidder(lines)
  local sums = {}
  for _, line in ipairs(lines) do
    local bidder, n = line:match("^(%d+)\t(%d+)\t%d+\t%d+$")
    assert(bidder, "not a line of q12: " .. line)
    sums[bidder] = (sums[bidder] or 0) + tonumber(n)
  end
  local out = {}
  for bidder, n in pairs(sums) do out[#out + 1] = bidder .. "\t" .. n end
  table.sort(out)
  return out
end

describe("nexmark queries", function()
  local dir
  setup(function() dir = h.tmpdir() end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  for _, q in ipairs(QUERIES) do
    local name = q[1]
    local reference = require("nexmark." .. name .. "_reference")
    describe(name, function()
      for _, parallelism in ipairs({ 1, 2 }) do
        it("writes the reference's lines at parallelism " .. parallelism,
          function()
            local case = dir .. "/" .. name .. "-" .. parallelism
            local r = h.run_weir({ "run", "--parallelism",
              tostring(parallelism), "--checkpoint-dir", case .. "/ck",
              "examples/nexmark/" .. name .. ".lua", tostring(EVENTS),
              case .. "/out", tostring(q.rate), tostring(SEED) })
            assert.are.equal(0, r.status, r.stderr)
            assert.is_nil(r.stderr:match("late records"), r.stderr)
            local got = h.committed_lines(case .. "/out")
            if name == "q12" then got = bids_per_bidder(got) end
            local expected = reference(job_events(EVENTS, q.rate,
              parallelism))
            table.sort(expected)
            assert.is_true(#expected >= q.min_lines, #expected .. " lines")
            assert_same_lines(expected, got)
          end)
      end
    end)
  end

  it("q14 meets every time of day", function()
    local kinds = {}
    for _, line in ipairs(require("nexmark.q14_reference")(
        job_events(EVENTS, 0.5, 1))) do
      kinds[line:match("^[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)")] = true
    end
    assert.are.same({ dayTime = true, nightTime = true, otherTime = true },
      kinds)
  end)
end)

-- -- Crafted events ------------------------------------------------------------
-- The edge cases of the windowed queries, which a generated stream meets
-- rarely: each query file runs next to a common.lua whose source is the
-- crafted events (examples/nexmark/common.lua otherwise), and its lines are
-- compared with lines written by hand and with the reference's.

local T0 = 1436918400000        -- a multiple of every window size

local function bid(auction, bidder, price, ms)
  return { type = "bid", auction = auction, bidder = bidder, price = price,
    channel = "Google", url = "https://www.nexmark.com/a/b/c/item.htm",
    date_time = T0 + ms, extra = "" }
end

local function person(id, name, ms)
  return { type = "person", id = id, name = name, email_address = "a@b.com",
    credit_card = "0000 0000 0000 0000", city = "Kent", state = "WA",
    date_time = T0 + ms, extra = "" }
end

local function auction(id, seller, ms)
  return { type = "auction", id = id, item_name = "item", description = "",
    initial_bid = 1, reserve = 2, date_time = T0 + ms,
    expires = T0 + ms + 1, seller = seller, category = 10, extra = "" }
end

-- Lua source returning the list of flat records `events`.
local function lua_source(events)
  local out = { "return {" }
  for _, e in ipairs(events) do
    local fields = {}
    for k, v in pairs(e) do
      fields[#fields + 1] = string.format(type(v) == "number"
        and "%s = %d" or "%s = %q", k, v)
    end
    table.sort(fields)
    out[#out + 1] = "  { " .. table.concat(fields, ", ") .. " },"
  end
  out[#out + 1] = "}"
  return table.concat(out, "\n")
end

local CRAFTED_COMMON = [=[
-- examples/nexmark/common.lua with the events of events.lua as the source.
local weir = require "weir"
local nx = dofile(%q)
local events = dofile(arg[0]:match("^(.*)/") .. "/events.lua")
function nx.source(name)
  local p = weir.pipeline { name = name, checkpoint_interval = 10000 }
  local all = p:sequence(1, #events):uid("events")
    :map(function(i) return events[i] end)
    :with_timestamps(function(e) return e.date_time end,
      { max_out_of_orderness = nx.OUT_OF_ORDERNESS_MS }):uid("timestamps")
  return p, setmetatable({}, { __index = function(t, kind)
    local s = all:filter(function(e) return e.type == kind end)
    rawset(t, kind, s)
    return s
  end })
end
return nx
]=]

-- Each case: the events, in the order the source emits them (at
-- parallelism 2 the first half goes to one subtask, the rest to the
-- other), and the query's lines.
local CRAFTED = {
  q5 = {
    what = "emits every auction tied at a window's top count",
    events = { bid(1, 1, 1, 100), bid(1, 1, 1, 200), bid(2, 1, 1, 300),
      bid(2, 1, 1, 400), bid(3, 1, 1, 500), bid(1, 1, 1, 3000) },
    -- Windows starting at -8 s: 1 and 2 tie; at -6 s .. 0 s: 1 leads;
    -- at 2 s: 1 alone.
    lines = { "1\t2", "1\t3", "1\t3", "1\t3", "1\t3", "1\t1", "2\t2" },
  },
  q7 = {
    what = "matches the bids from a window's start to its end, both "
      .. "included",
    events = {
      bid(1, 1, 10, 0),          -- below its window's top
      bid(2, 1, 50, 1000),
      bid(3, 1, 80, 5000),       -- the top of [0 s, 10 s)
      bid(4, 1, 80, 9999),       -- tied
      bid(5, 1, 80, 10000),      -- at the end of [0 s, 10 s): matches it
      bid(6, 1, 90, 15000),      -- the top of [10 s, 20 s)
      bid(7, 1, 90, 20000),      -- matches [10 s, 20 s) and is the top of
      bid(8, 1, 60, 25000),      -- [20 s, 30 s)
      bid(9, 1, 5, 30000),       -- matches neither window
      bid(10, 1, 7, 35000),      -- the top of [30 s, 40 s)
    },
    lines = {
      "10\t7\t1\t" .. (T0 + 35000) .. "\t",
      "3\t80\t1\t" .. (T0 + 5000) .. "\t",
      "4\t80\t1\t" .. (T0 + 9999) .. "\t",
      "5\t80\t1\t" .. (T0 + 10000) .. "\t",
      "6\t90\t1\t" .. (T0 + 15000) .. "\t",
      "7\t90\t1\t" .. (T0 + 20000) .. "\t",
      "7\t90\t1\t" .. (T0 + 20000) .. "\t",
    },
  },
  q8 = {
    what = "joins a person with their auctions once per window",
    events = {
      person(1001, "Kate Smith", 1000),
      auction(1, 1001, 2000), auction(2, 1001, 3000),    -- one line
      person(1002, "Paul White", 9000),
      auction(3, 1002, 10500),                          -- the next window
      auction(4, 1003, 11000),                          -- before the person
      person(1003, "Luke Jones", 12000),
      auction(5, 1004, 13000),                          -- nobody's
    },
    lines = { "1001\tKate Smith\t" .. T0,
      "1003\tLuke Jones\t" .. (T0 + 10000) },
  },
  q11 = {
    what = "merges sessions whose bids are 10 s apart, not 10.001 s",
    events = {
      bid(1, 2001, 1, 0),
      bid(1, 2003, 1, 3000),
      bid(1, 2003, 1, 1000),     -- out of order, within the 4 s
      bid(1, 2002, 1, 5000),
      bid(1, 2001, 1, 10000),    -- touches the session before
      bid(1, 2001, 1, 20001),    -- 10.001 s after: a new session
    },
    lines = {
      "2001\t1\t" .. (T0 + 20001) .. "\t" .. (T0 + 30001),
      "2001\t2\t" .. T0 .. "\t" .. (T0 + 20000),
      "2002\t1\t" .. (T0 + 5000) .. "\t" .. (T0 + 15000),
      "2003\t2\t" .. (T0 + 1000) .. "\t" .. (T0 + 13000),
    },
  },
}

describe("nexmark queries on crafted events", function()
  local dir
  setup(function() dir = h.tmpdir() end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  for _, name in ipairs({ "q5", "q7", "q8", "q11" }) do
    local case = CRAFTED[name]
    describe(name, function()
      for _, parallelism in ipairs({ 1, 2 }) do
        it(case.what .. " at parallelism " .. parallelism, function()
          local run = dir .. "/" .. name .. "-" .. parallelism
          h.sh("mkdir -p " .. h.quote(run))
          h.write_file(run .. "/common.lua", string.format(CRAFTED_COMMON,
            h.root .. "/examples/nexmark/common.lua"))
          h.write_file(run .. "/events.lua", lua_source(case.events))
          h.write_file(run .. "/" .. name .. ".lua", h.read_file(
            "examples/nexmark/" .. name .. ".lua"))
          local r = h.run_weir({ "run", "--parallelism",
            tostring(parallelism), "--checkpoint-dir", run .. "/ck",
            run .. "/" .. name .. ".lua", "0", run .. "/out" })
          assert.are.equal(0, r.status, r.stderr)
          assert.is_nil(r.stderr:match("late records"), r.stderr)
          local expected = require("nexmark." .. name .. "_reference")(
            case.events)
          table.sort(expected)
          table.sort(case.lines)
          assert.are.same(case.lines, expected)
          assert.are.same(case.lines, h.committed_lines(run .. "/out"))
        end)
      end
    end)
  end
end)

describe("nexmark q5 after kill -9", function()
  local N, RATE = 400000, 100
  local dir, expected

  setup(function()
    dir = h.tmpdir()
    expected = require("nexmark.q5_reference")(job_events(N, RATE, 2))
    table.sort(expected)
  end)
  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- On RocksDB with a cache of a few hundred keys, so that keys are
  -- evicted and read back, and each checkpoint writes back only the keys
  -- whose windows changed.
  for _, backend in ipairs({ { "heap" }, { "rocksdb", "0.05" } }) do
    it("writes exactly the reference's lines after kills at checkpoints "
      .. "on the " .. backend[1] .. " state backend"
      .. (backend[2] and " with a cache of " .. backend[2] .. " MiB" or ""),
      function()
        local case = dir .. "/" .. backend[1] .. (backend[2] or "")
        local args = { "run", "--parallelism", "2", "--restore", "latest",
          "--state-backend", backend[1], "--state-cache-mb",
          backend[2] or "256", "--checkpoint-interval", "30",
          "--checkpoint-dir", case .. "/ck", "examples/nexmark/q5.lua",
          tostring(N), case .. "/out", tostring(RATE), tostring(SEED) }
        local r = h.kill_after_checkpoints(args, case .. "/ck/q5", { 1, 2 })
        assert.are.equal(0, r.status, r.stderr)
        assert.matches("restored from", r.stderr)
        assert.is_true(#expected >= 1500, #expected .. " lines")
        assert_same_lines(expected, h.committed_lines(case .. "/out"))
      end)
  end
end)
