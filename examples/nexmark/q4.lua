-- Nexmark q4, average price for a category: the average, per category,
-- of the winning prices of its auctions.
--
--   SELECT Q.category, AVG(Q.final)
--   FROM (
--     SELECT MAX(B.price) AS final, A.category
--     FROM auction A, bid B
--     WHERE A.id = B.auction
--       AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
--     GROUP BY A.id, A.category
--   ) Q
--   GROUP BY Q.category;
--
-- Output: category, average (an integer, rounded down, as Flink's AVG of
-- a BIGINT). The key of a row is the category: a new row replaces the
-- category's previous one whenever its average changes.
--
-- Two stages, as the two GROUP BYs. The first, keyed by auction id, joins
-- bids with their auction and keeps the auction's winning price, the
-- highest of the bids placed while it was open; a bid that comes before
-- its auction (its auction id may lead the auctions made so far, or be
-- made by another subtask's generator) waits in the auction's state. When
-- the winning price rises it sends the change on. The second, keyed by
-- category, keeps the sum and the number of the winning prices of its
-- auctions: a first price is added and counted, a higher one replaces the
-- auction's previous price in the sum. An auction is kept for ever (its
-- category, lifetime and winning price); its bids are not kept once it is
-- known.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q4", a)

local floor = math.floor

-- Raises the auction's winning price to bid's price if the bid was placed
-- while the auction was open; returns whether it did.
local function offer(st, bid)
  local t, final = bid.date_time, st.final
  if t >= st.opens and t <= st.expires
      and (final == nil or bid.price > final) then
    st.final = bid.price
    return true
  end
  return false
end

-- Only the columns the query reads go to the keyed operators (as Flink's
-- planner prunes the others): less to serialize between workers.
local auctions = s.auction
  :map(function(auction)
    return { id = auction.id, category = auction.category,
      date_time = auction.date_time, expires = auction.expires }
  end)
  :key_by(function(auction) return auction.id end)
local bids = s.bid
  :map(function(bid)
    return { auction = bid.auction, price = bid.price,
      date_time = bid.date_time }
  end)
  :key_by(function(bid) return bid.auction end)

-- The state of an auction id: category, opens, expires (nil until the
-- auction came), final (its winning price so far), waiting (the bids that
-- came before the auction). A rise of the winning price is sent on as
-- { category, previous = the winning price before (nil if none),
-- final = the new one }.
local finals = auctions:connect(bids):process {
  left = function(ctx, auction)
    local st = ctx.state
    st.category, st.opens, st.expires = auction.category,
      auction.date_time, auction.expires
    local waiting = st.waiting
    if waiting then
      for i = 1, #waiting do offer(st, waiting[i]) end
      st.waiting = nil
      if st.final then
        ctx:emit({ category = st.category, final = st.final })
      end
    end
  end,
  right = function(ctx, bid)
    local st = ctx.state
    if st.category then
      local previous = st.final
      if offer(st, bid) then
        ctx:emit({ category = st.category, previous = previous,
          final = st.final })
      end
    else
      nx.hold(st, bid)
    end
  end,
}:uid("winning_prices")

-- The state of a category: sum and count of its auctions' winning prices,
-- and average, the last one emitted. The state is the row emitted.
local averages = finals
  :key_by(function(change) return change.category end)
  :process(function(ctx, change)
    local st = ctx.state
    if change.previous then
      st.sum = st.sum - change.previous + change.final
    else
      st.sum = (st.sum or 0) + change.final
      st.count = (st.count or 0) + 1
    end
    local average = floor(st.sum / st.count)
    if average ~= st.average then
      st.category, st.average = ctx.key, average
      ctx:emit(st)
    end
  end):uid("averages")

nx.finish(p, averages, a, function(st)
  return string.format("%d\t%d", st.category, st.average)
end)
