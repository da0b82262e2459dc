-- Nexmark q7, highest bid: per 10 s tumbling window of event time, the
-- largest price; then every bid at that price whose time lies between the
-- window's end - 10 s and its end, both included (the SQL's BETWEEN). So a
-- bid at exactly a window's end, which belongs to the next window, is
-- also matched against this window's price, and may come out twice.
--   weir run examples/nexmark/q7.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
--   FROM bid B
--   JOIN (
--     SELECT MAX(price) AS maxprice, window_end as dateTime
--     FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime),
--       INTERVAL '10' SECOND))
--     GROUP BY window_start, window_end
--   ) B1
--   ON B.price = B1.maxprice
--   WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND
--     AND B1.dateTime;
--
-- Output columns, in the SELECT's order: auction, price, bidder, date_time
-- (ms), extra. (The benchmark's sink declares auction, bidder, price, ...
-- so its "bidder" column holds the price and its "price" the bidder; the
-- values here stand where the SQL puts them.)
--
-- Instead of keeping every bid in join state, each subtask drops the bids
-- that cannot be the highest: those below the highest price it has seen
-- itself in their window (a lower bound of the window's highest). The
-- rest, few, go to the window's subtask, which keeps the bids at the
-- highest price so far and emits those at the final one once the
-- watermark reaches the window's end.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local WINDOW_MS = 10000

local a = nx.args()
local p, s = nx.source("q7", a)

-- The highest price this subtask has seen per window end. A cache, not
-- state: each price in it is a bid's that reached the window's subtask
-- before the last checkpoint or comes again when the job restores, so
-- whatever it holds (empty after a restore in a fresh process) it hides no
-- bid the window needs.
local seen_top = {}

-- Sends a bid on as { window_end, bid } to the window it can join with,
-- unless a higher bid in that window was seen here. A bid at the start
-- of its window also joins the window before, which ends at its time.
local candidates = s.bid:flat_map(function(b, emit)
  local t, price = b.date_time, b.price
  local window_end = t - t % WINDOW_MS + WINDOW_MS
  local top = seen_top[window_end]
  if top == nil then
    -- A new window: forget the one two windows back.
    seen_top[window_end - 2 * WINDOW_MS] = nil
  end
  if top == nil or price >= top then
    seen_top[window_end] = price
    emit({ window_end = window_end, bid = b })
  end
  if t % WINDOW_MS == 0 and price >= (seen_top[t] or price) then
    emit({ window_end = t, bid = b })
  end
end)

-- ctx.state per window end: top = the highest price of the window's own
-- bids so far, bids = those bids at that price, edge = the bids at the
-- window's end (of the next window) that may match it.
local highest = candidates
  :key_by(function(c) return c.window_end end)
  :process(function(ctx, c)
    local st, b = ctx.state, c.bid
    if b.date_time == c.window_end then
      if st.top == nil or b.price >= st.top then
        st.edge = st.edge or {}
        st.edge[#st.edge + 1] = b
      end
    elseif st.top == nil or b.price > st.top then
      st.top, st.bids = b.price, { b }
    elseif b.price == st.top then
      st.bids[#st.bids + 1] = b
    end
    ctx:timer(c.window_end)
  end, {
    on_timer = function(ctx)
      local st = ctx.state
      if st.top then
        for _, b in ipairs(st.bids) do ctx:emit(b) end
        for _, b in ipairs(st.edge or {}) do
          if b.price == st.top then ctx:emit(b) end
        end
      end
      st.top, st.bids, st.edge = nil, nil, nil
    end,
  }):uid("highest_bids")

nx.finish(p, highest, a, function(b)
  return string.format("%d\t%d\t%d\t%d\t%s", b.auction, b.price, b.bidder,
    b.date_time, b.extra)
end)
