-- Nexmark q9, winning bids: each auction with its highest bid placed
-- while it was open.
--
--   SELECT id, itemName, description, initialBid, reserve, `dateTime`,
--     expires, seller, category, extra,
--     auction, bidder, price, bid_dateTime, bid_extra
--   FROM (
--     SELECT A.*, B.auction, B.bidder, B.price,
--       B.`dateTime` AS bid_dateTime, B.extra AS bid_extra,
--       ROW_NUMBER() OVER (PARTITION BY A.id
--         ORDER BY B.price DESC, B.`dateTime` ASC) AS rownum
--     FROM auction A, bid B
--     WHERE A.id = B.auction
--       AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires)
--   WHERE rownum <= 1;
--
-- Output: those 15 columns. The key of a row is the auction id: a new row
-- for an auction replaces its previous one whenever a better bid comes.
-- Auctions without a bid in their lifetime have no row.
--
-- Deviation: bids of equal price and time, which the SQL ranks in no
-- particular order, are ranked by bidder, then extra, so the winning row
-- does not depend on the order the bids arrive in (bids equal in these
-- make the same row).
--
-- Bids and auctions meet in an operator keyed by the auction id. A bid may
-- come before its auction (its auction id may lead the auctions made so
-- far, or be made by another subtask's generator); it then waits in the
-- auction's state. An auction is kept for ever, with its best bid; other
-- bids are not kept once the auction is known.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q9", a)

-- Whether bid b ranks before bid c: the higher price, then the earlier
-- time, then a fixed order of the other columns of the row.
local function ranks_before(b, c)
  if b.price ~= c.price then return b.price > c.price end
  if b.date_time ~= c.date_time then return b.date_time < c.date_time end
  if b.bidder ~= c.bidder then return b.bidder < c.bidder end
  return b.extra < c.extra
end

-- Makes bid the auction's best one if it was placed while the auction was
-- open and ranks before the best so far; returns whether it did.
local function offer(st, bid)
  local auction, best = st.auction, st.best
  local t = bid.date_time
  if t >= auction.date_time and t <= auction.expires
      and (best == nil or ranks_before(bid, best)) then
    st.best = bid
    return true
  end
  return false
end

local auctions = s.auction:key_by(function(auction) return auction.id end)
-- Only the columns of a bid the query reads go to the join (as Flink's
-- planner prunes the others): less to serialize between workers.
local bids = s.bid
  :map(function(bid)
    return { auction = bid.auction, bidder = bid.bidder, price = bid.price,
      date_time = bid.date_time, extra = bid.extra }
  end)
  :key_by(function(bid) return bid.auction end)

-- The state of an auction id: auction (nil until it came), best (its
-- winning bid so far), waiting (the bids that came before the auction).
-- The state is the row emitted: the sink formats auction and best.
local results = auctions:connect(bids):process {
  left = function(ctx, auction)
    local st = ctx.state
    st.auction = auction
    local waiting = st.waiting
    if waiting then
      for i = 1, #waiting do offer(st, waiting[i]) end
      st.waiting = nil
      if st.best then ctx:emit(st) end
    end
  end,
  right = function(ctx, bid)
    local st = ctx.state
    if st.auction then
      if offer(st, bid) then ctx:emit(st) end
    else
      nx.hold(st, bid)
    end
  end,
}:uid("winning_bids")

nx.finish(p, results, a, function(st)
  local au, b = st.auction, st.best
  return string.format("%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s"
    .. "\t%d\t%d\t%d\t%d\t%s", au.id, au.item_name, au.description,
    au.initial_bid, au.reserve, au.date_time, au.expires, au.seller,
    au.category, au.extra, b.auction, b.bidder, b.price, b.date_time,
    b.extra)
end)
