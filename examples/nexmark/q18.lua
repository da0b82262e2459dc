-- Nexmark q18, find last bid: the latest bid of every bidder on every
-- auction.
--
--   SELECT auction, bidder, price, channel, url, `dateTime`, extra
--   FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction
--           ORDER BY `dateTime` DESC) AS rank_number
--         FROM bid)
--   WHERE rank_number <= 1;
--
-- Output: auction, bidder, price, channel, url, date_time, extra. The key
-- of a row is (bidder, auction): a new row replaces the pair's previous
-- one whenever a later bid comes.
--
-- Deviation: bids of a pair with equal times, which the SQL ranks in no
-- particular order (Flink keeps the one that came last), are ranked by
-- price, highest first, then by channel, url and extra, so the result
-- does not depend on the order the bids arrive in.
--
-- Keyed by bidder (one number, cheaper than the pair as a key); a
-- bidder's state maps each auction to the bidder's latest bid on it.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q18", a)

-- Whether bid b is later than bid c of the same pair: the later time, then
-- a fixed order of the other columns.
local function later(b, c)
  if b.date_time ~= c.date_time then return b.date_time > c.date_time end
  if b.price ~= c.price then return b.price > c.price end
  if b.channel ~= c.channel then return b.channel > c.channel end
  if b.url ~= c.url then return b.url > c.url end
  return b.extra > c.extra
end

local results = s.bid
  :key_by(function(bid) return bid.bidder end)
  :process(function(ctx, bid)
    local latest = ctx.state
    local previous = latest[bid.auction]
    if previous == nil or later(bid, previous) then
      latest[bid.auction] = bid
      ctx:emit(bid)
    end
  end):uid("latest_bids")

nx.finish(p, results, a, function(b)
  return string.format("%d\t%d\t%d\t%s\t%s\t%d\t%s", b.auction,
    b.bidder, b.price, b.channel, b.url, b.date_time, b.extra)
end)
