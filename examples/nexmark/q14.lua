-- Nexmark q14, calculation: the bids whose price converted with 0.908 lies
-- strictly between 1,000,000 and 50,000,000, with the time of day of the
-- bid and the number of 'c' characters in its extra.
--   weir run examples/nexmark/q14.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   SELECT auction, bidder, 0.908 * price as price,
--     CASE
--       WHEN HOUR(dateTime) >= 8 AND HOUR(dateTime) <= 18 THEN 'dayTime'
--       WHEN HOUR(dateTime) <= 6 OR HOUR(dateTime) >= 20 THEN 'nightTime'
--       ELSE 'otherTime'
--     END AS bidTimeType,
--     dateTime, extra, count_char(extra, 'c') AS c_counts
--   FROM bid
--   WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000;
--
-- Output columns: auction, bidder, price (0.908 * price, three decimals),
-- bid_time_type ("dayTime" for UTC hours 8 to 18, "nightTime" for hours up
-- to 6 and from 20, "otherTime" for hours 7 and 19), date_time (ms),
-- extra, c_counts.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local find, floor = string.find, math.floor

local EUROS_PER_DOLLAR = 0.908
local MIN_PRICE, MAX_PRICE = 1000000, 50000000   -- both excluded
local HOUR_MS = 3600 * 1000

-- CASE over HOUR(date_time), the hour of the day in UTC.
local function bid_time_type(ms)
  local hour = floor(ms / HOUR_MS) % 24
  if hour >= 8 and hour <= 18 then return "dayTime" end
  if hour <= 6 or hour >= 20 then return "nightTime" end
  return "otherTime"
end

-- The benchmark's count_char UDF: how many bytes of s equal the one-byte
-- string c.
local function count_char(s, c)
  local n, at = 0, find(s, c, 1, true)
  while at do
    n = n + 1
    at = find(s, c, at + 1, true)
  end
  return n
end

local a = nx.args()
local p, s = nx.source("q14", a)
local bids = s.bid:flat_map(function(b, emit)
  local price = EUROS_PER_DOLLAR * b.price
  if price > MIN_PRICE and price < MAX_PRICE then
    emit({ auction = b.auction, bidder = b.bidder, price = price,
      bid_time_type = bid_time_type(b.date_time), date_time = b.date_time,
      extra = b.extra, c_counts = count_char(b.extra, "c") })
  end
end)
nx.finish(p, bids, a, function(b)
  return string.format("%d\t%d\t%.3f\t%s\t%d\t%s\t%d", b.auction, b.bidder,
    b.price, b.bid_time_type, b.date_time, b.extra, b.c_counts)
end)
