-- Nexmark q12, processing-time windows: the number of bids of each bidder
-- per 10 s tumbling window of processing (wall-clock) time.
--   weir run examples/nexmark/q12.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   CREATE VIEW B AS SELECT *, PROCTIME() as p_time FROM bid;
--   SELECT bidder, count(*) as bid_count, window_start AS starttime,
--     window_end AS endtime
--   FROM TABLE(TUMBLE(TABLE B, DESCRIPTOR(p_time), INTERVAL '10' SECOND))
--   GROUP BY bidder, window_start, window_end;
--
-- Output columns: bidder, bid_count, starttime, endtime (the window's
-- bounds, wall-clock ms).
--
-- A bidder's window opens with its first bid since its last window
-- closed: the 10 s window of the wall clock at that moment. The clock is
-- read then, not for every bid as Flink does, so the window closes when
-- its processing-time timer fires, at the first turn of the event loop
-- after the window's end, and the bids processed in between still count
-- in it. When bounded input ends, processing-time timers still pending do
-- not fire in weir, so the windows still open are emitted then, with the
-- bids they have.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local WINDOW_MS = 10000

local a = nx.args()
local p, s = nx.source("q12", a)

-- ctx.state of a bidder: start = its open window's start, count = its bids
-- in it so far.
local function emit_window(ctx)
  local st = ctx.state
  ctx:emit({ bidder = ctx.key, bid_count = st.count, starttime = st.start,
    endtime = st.start + WINDOW_MS })
  st.start, st.count = nil, nil
end

local counts = s.bid
  -- Only the bidder goes on: the exchange by key serializes records.
  :map(function(b) return b.bidder end)
  :key_by(function(bidder) return bidder end)
  :process(function(ctx)
    local st = ctx.state
    if st.count then
      st.count = st.count + 1
      return
    end
    local now_ms = ctx:processing_time()
    st.start, st.count = now_ms - now_ms % WINDOW_MS, 1
    ctx:processing_timer(st.start + WINDOW_MS)
  end, { on_timer = emit_window, finish = emit_window })
  :uid("bids_per_bidder")

nx.finish(p, counts, a, function(c)
  return string.format("%d\t%d\t%d\t%d", c.bidder, c.bid_count,
    c.starttime, c.endtime)
end)
