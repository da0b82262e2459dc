-- Nexmark q11, user sessions: the number of bids of each bidder per
-- session, a session ending after 10 s of event time without a bid by
-- that bidder.
--   weir run examples/nexmark/q11.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   SELECT B.bidder, count(*) as bid_count,
--     SESSION_START(B.dateTime, INTERVAL '10' SECOND) as starttime,
--     SESSION_END(B.dateTime, INTERVAL '10' SECOND) as endtime
--   FROM bid B
--   GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND);
--
-- Output columns: bidder, bid_count, starttime (the session's first bid,
-- ms), endtime (its last bid + 10 s, ms; SESSION_END). Bids exactly 10 s
-- apart share a session, as in Flink.
local weir = require "weir"
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local GAP_MS = 10000

local a = nx.args()
local p, s = nx.source("q11", a)
local sessions = s.bid
  -- Only the bidder goes on: the exchange by key serializes records.
  :map(function(b) return b.bidder end)
  :key_by(function(bidder) return bidder end)
  :window(weir.session(GAP_MS))
  :aggregate {
    init = function() return 0 end,
    add = function(n) return n + 1 end,
    merge = function(m, n) return m + n end,
    result = function(n, ctx)
      return { bidder = ctx.key, bid_count = n,
        starttime = ctx.window.start, endtime = ctx.window["end"] }
    end,
  }:uid("sessions")

nx.finish(p, sessions, a, function(x)
  return string.format("%d\t%d\t%d\t%d", x.bidder, x.bid_count,
    x.starttime, x.endtime)
end)
