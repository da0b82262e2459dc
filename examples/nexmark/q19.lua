-- Nexmark q19, auction top-10 price: the ten highest bids of every
-- auction, with their rank.
--
--   SELECT * FROM
--   (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC)
--      AS rank_number FROM bid)
--   WHERE rank_number <= 10;
--
-- Output: auction, bidder, price, channel, url, date_time, extra,
-- rank_number. The key of a row is (auction, rank_number). A bid that
-- enters an auction's top 10 at rank r emits the rows of ranks r and
-- below, which all changed (the bids below it moved down a rank); a row
-- replaces the previous row of its auction and rank. An auction with
-- fewer than ten bids has rows for the ranks it has.
--
-- Deviation: bids of equal price, which the SQL ranks in no particular
-- order (Flink ranks the one that came first higher), are ranked by time,
-- earliest first, then by bidder, channel, url and extra, so the result
-- does not depend on the order the bids arrive in.
--
-- Keyed by auction; an auction's state is its top bids, best first.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q19", a)

local TOP = 10

-- Whether bid b ranks before bid c: the higher price, then the earlier
-- time, then a fixed order of the other columns.
local function ranks_before(b, c)
  if b.price ~= c.price then return b.price > c.price end
  if b.date_time ~= c.date_time then return b.date_time < c.date_time end
  if b.bidder ~= c.bidder then return b.bidder < c.bidder end
  if b.channel ~= c.channel then return b.channel < c.channel end
  if b.url ~= c.url then return b.url < c.url end
  return b.extra < c.extra
end

-- The row emitted, reused: the sink, chained to the operator below, formats
-- it before the next.
local row = {}

local results = s.bid
  :key_by(function(bid) return bid.auction end)
  :process(function(ctx, bid)
    local top = ctx.state
    local n = #top
    if n == TOP and not ranks_before(bid, top[TOP]) then return end
    -- The bids that rank after bid move down one place; the last of a
    -- full top 10 falls out.
    local last = n < TOP and n + 1 or TOP
    local r = last
    while r > 1 and ranks_before(bid, top[r - 1]) do
      top[r] = top[r - 1]
      r = r - 1
    end
    top[r] = bid
    for rank = r, last do
      row.bid, row.rank = top[rank], rank
      ctx:emit(row)
    end
  end):uid("top_bids")

nx.finish(p, results, a, function(r)
  local b = r.bid
  return string.format("%d\t%d\t%d\t%s\t%s\t%d\t%s\t%d", b.auction,
    b.bidder, b.price, b.channel, b.url, b.date_time, b.extra, r.rank)
end)
