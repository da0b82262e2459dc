-- Nexmark q2, selection: the bids on every 123rd auction.
--   weir run examples/nexmark/q2.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
--
-- Output columns: auction, price.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local AUCTION_SKIP = 123

local a = nx.args()
local p, s = nx.source("q2", a)
local bids = s.bid:filter(function(b)
  return b.auction % AUCTION_SKIP == 0
end)
nx.finish(p, bids, a, function(b)
  return string.format("%d\t%d", b.auction, b.price)
end)
