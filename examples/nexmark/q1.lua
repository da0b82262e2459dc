-- Nexmark q1, currency conversion: every bid, its price converted with the
-- constant factor 0.908 (dollars to euros, in the generator's unit, cents).
--   weir run examples/nexmark/q1.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   SELECT auction, bidder, 0.908 * price as price, dateTime, extra
--   FROM bid;
--
-- Output columns: auction, bidder, price (0.908 * price, with three
-- decimals as the SQL's DECIMAL(23,3)), date_time (ms), extra.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local EUROS_PER_DOLLAR = 0.908

local a = nx.args()
local p, s = nx.source("q1", a)
local bids = s.bid:map(function(b)
  return { auction = b.auction, bidder = b.bidder,
    price = EUROS_PER_DOLLAR * b.price, date_time = b.date_time,
    extra = b.extra }
end)
-- 0.908 * price is within 1e-8 of a multiple of 0.001 (prices are whole
-- cents below 2^53), so "%.3f" prints the exact decimal product.
nx.finish(p, bids, a, function(b)
  return string.format("%d\t%d\t%.3f\t%d\t%s", b.auction, b.bidder,
    b.price, b.date_time, b.extra)
end)
