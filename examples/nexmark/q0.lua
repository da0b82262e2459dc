-- Nexmark q0, pass through: every bid's auction, bidder, price, date_time
-- and extra, unchanged; it measures the source and weir's own overhead.
--
--   SELECT auction, bidder, price, `dateTime`, extra FROM bid;
--
--   weir run examples/nexmark/q0.lua EVENTS [OUTDIR [RATE [SEED]]]
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q0", a)
nx.finish(p, s.bid, a, function(b)
  return string.format("%d\t%d\t%d\t%d\t%s", b.auction, b.bidder, b.price,
    b.date_time, b.extra)
end)
