-- Nexmark q5, hot items: in every sliding window of 10 s starting every
-- 2 s (event time), the auctions with the most bids; ties are all
-- emitted.
--   weir run examples/nexmark/q5.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   SELECT AuctionBids.auction, AuctionBids.num
--   FROM (
--     SELECT auction, count(*) AS num, window_start AS starttime,
--       window_end AS endtime
--     FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND,
--       INTERVAL '10' SECOND))
--     GROUP BY auction, window_start, window_end
--   ) AS AuctionBids
--   JOIN (
--     SELECT max(CountBids.num) AS maxn, CountBids.starttime,
--       CountBids.endtime
--     FROM (<the same counts>) AS CountBids
--     GROUP BY CountBids.starttime, CountBids.endtime
--   ) AS MaxBids
--   ON AuctionBids.starttime = MaxBids.starttime
--     AND AuctionBids.endtime = MaxBids.endtime
--     AND AuctionBids.num >= MaxBids.maxn;
--
-- Output columns: auction, num (its bids in the window), as in the SQL,
-- which leaves the window out.
--
-- Two keyed steps, as the SQL's two aggregations: bids counted per
-- auction and window, then the counts of each window gathered by the
-- window's start. A window's counts come out when the watermark passes
-- its end, all stamped with the window's last ms; so the second step has
-- every count of a window once its own watermark reaches that time, and
-- emits the window's top auctions then.
local weir = require "weir"
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local WINDOW_MS, SLIDE_MS = 10000, 2000

local a = nx.args()
local p, s = nx.source("q5", a)

local counts = s.bid
  -- Only the auction goes on: the exchange by key serializes records.
  :map(function(b) return b.auction end)
  :key_by(function(auction) return auction end)
  :window(weir.sliding(WINDOW_MS, SLIDE_MS))
  :aggregate {
    init = function() return 0 end,
    add = function(n) return n + 1 end,
    merge = function(m, n) return m + n end,
    result = function(n, ctx)
      return { auction = ctx.key, num = n, start = ctx.window.start }
    end,
  }:uid("bids_per_auction")

-- ctx.state per window start: top = the largest count so far, auctions =
-- the auctions with that count.
local hot = counts
  :key_by(function(c) return c.start end)
  :process(function(ctx, c)
    local st = ctx.state
    local top = st.top
    if top == nil or c.num > top then
      st.top, st.auctions = c.num, { c.auction }
    elseif c.num == top then
      st.auctions[#st.auctions + 1] = c.auction
    end
    ctx:timer(ctx.timestamp)
  end, {
    on_timer = function(ctx)
      local st = ctx.state
      for _, auction in ipairs(st.auctions) do
        ctx:emit({ auction = auction, num = st.top })
      end
      st.top, st.auctions = nil, nil
    end,
  }):uid("top_auctions")

nx.finish(p, hot, a, function(h)
  return string.format("%d\t%d", h.auction, h.num)
end)
