-- What the Nexmark queries share (see ../../../shared/NEXMARK.md §3 in the
-- weir sources' design notes, and weir.nexmark): their arguments, the
-- three event streams with the benchmark's watermark, and the sink.
--
-- Every query runs as
--   weir run examples/nexmark/qN.lua EVENTS [OUTDIR [RATE [SEED]]]
-- EVENTS events of the generator (over all subtasks), RATE events per
-- second of event time (default 10,000,000, the V1 suite's, so 10 M
-- events span one second of event time; specs use lower rates so that
-- windows fill), and the results written as tab-separated lines into
-- OUTDIR, exactly once; without OUTDIR (or with "-") they are discarded,
-- as the benchmark's blackhole sink does.
local weir = require "weir"

local M = {}

M.OUT_OF_ORDERNESS_MS = 4000  -- the benchmark's watermark delay

--- The query's arguments: { events, out = dir | nil, rate, seed }.
function M.args()
  local events = tonumber(arg[1])
  if not events then
    error(string.format("usage: weir run %s EVENTS [OUTDIR [RATE [SEED]]]",
      arg[0] or "qN.lua"), 0)
  end
  local out = arg[2]
  if out == "-" then out = nil end
  return { events = events, out = out, rate = tonumber(arg[3]) or 10000000,
    seed = tonumber(arg[4]) or 0 }
end

--- The pipeline of query `name` and its input: streams.bid,
-- streams.auction and streams.person, each with event-time timestamps
-- (date_time) and watermarks 4 s behind the largest timestamp seen.
-- @param a the query's arguments (M.args())
-- @return Pipeline, { bid = Stream, auction = Stream, person = Stream }
function M.source(name, a)
  local p = weir.pipeline { name = name, checkpoint_interval = 10000 }
  local events = p:nexmark { events = a.events, rate = a.rate, seed = a.seed }
    :uid("events")
    :with_timestamps(function(e) return e.date_time end,
      { max_out_of_orderness = M.OUT_OF_ORDERNESS_MS }):uid("timestamps")
  return p, setmetatable({}, { __index = function(t, kind)
    local s = events:filter(function(e) return e.type == kind end)
    rawset(t, kind, s)
    return s
  end })
end

--- Ends a query: its results as lines format(record) into a.out, exactly
-- once, or discarded without a.out. Runs the pipeline.
function M.finish(p, results, a, format)
  if a.out then
    results:write_lines(a.out, format):uid("output")
  else
    results:discard():uid("output")
  end
  return p:run()
end

--- 'yyyy-mm-dd' (UTC) of a time in ms, as DATE_FORMAT(t, 'yyyy-MM-dd').
function M.day(ms) return os.date("!%Y-%m-%d", math.floor(ms / 1000)) end

--- 'HH:MM' (UTC) of a time in ms, as DATE_FORMAT(t, 'HH:mm').
function M.hm(ms) return os.date("!%H:%M", math.floor(ms / 1000)) end

--- Keeps record in state.waiting (a list) until the record it joins with
-- arrives: a bid may come before its auction (q4, q9, q20).
function M.hold(state, record)
  local waiting = state.waiting
  if not waiting then
    waiting = {}
    state.waiting = waiting
  end
  waiting[#waiting + 1] = record
end

-- -- Price ranks (q15, q16) --------------------------------------------------

local band = require("bit").band

--- Where a price's rank is counted in an array of counts: counts[1]
-- counts every rank, counts[2] rank 1 (below 10,000), counts[3] rank 2
-- (below 1,000,000), counts[4] rank 3.
function M.rank_index(price)
  if price < 10000 then return 2 elseif price < 1000000 then return 3 end
  return 4
end

-- The bit that marks a value as seen in the rank of a counts index.
local RANK_BIT = { [2] = 1, [3] = 2, [4] = 4 }

--- COUNT(DISTINCT v), overall and per rank: counts value v, of rank index
-- i (M.rank_index), into counts; seen maps each value to the bits of the
-- ranks it was seen in (one set for every rank, rather than a set each).
function M.count_distinct(counts, seen, v, i)
  local bits = seen[v]
  if bits == nil then
    counts[1] = counts[1] + 1
    bits = 0
  end
  local rank_bit = RANK_BIT[i]
  if band(bits, rank_bit) == 0 then
    counts[i] = counts[i] + 1
    seen[v] = bits + rank_bit
  end
end

return M
