-- Nexmark q17, auction statistics: per auction and day, the number of
-- bids, overall and per price rank, and the lowest, highest, average and
-- total price.
--
--   SELECT auction, DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') as `day`,
--     count(*) AS total_bids,
--     count(*) filter (where price < 10000) AS rank1_bids,
--     count(*) filter (where price >= 10000 and price < 1000000)
--       AS rank2_bids,
--     count(*) filter (where price >= 1000000) AS rank3_bids,
--     min(price) AS min_price, max(price) AS max_price,
--     avg(price) AS avg_price, sum(price) AS sum_price
--   FROM bid
--   GROUP BY auction, DATE_FORMAT(`dateTime`, 'yyyy-MM-dd');
--
-- Output: auction, day, total_bids, rank1_bids, rank2_bids, rank3_bids,
-- min_price, max_price, avg_price (an integer, rounded down, as Flink's
-- AVG of a BIGINT), sum_price. The key of a row is (auction, day): every
-- bid makes a new row for its auction and day, which replaces the
-- previous one.
--
-- Keyed by auction; an auction's state holds a row per day (days since the
-- epoch, UTC), formatted as a date only for the output. A row keeps only
-- counters (the average is the sum over the count), so state grows with
-- the auctions (millions at the benchmark's scale) but not with the bids.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q17", a)

local DAY_MS = 86400000
local floor = math.floor

-- Only the columns the query reads go to the keyed operator (as Flink's
-- planner prunes the others): less to serialize between workers.
local results = s.bid
  :map(function(bid)
    return { auction = bid.auction, price = bid.price,
      date_time = bid.date_time }
  end)
  :key_by(function(bid) return bid.auction end)
  -- The state of an auction: its row of each day, the row emitted: auction,
  -- day (days since the epoch), bids (all ranks), rank1, rank2, rank3 (the
  -- bids of each price rank), min, max, sum (of the prices).
  :process(function(ctx, bid)
    local price = bid.price
    local day = floor(bid.date_time / DAY_MS)
    local row = ctx.state[day]
    if not row then
      row = { auction = ctx.key, day = day, bids = 0, rank1 = 0, rank2 = 0,
        rank3 = 0, min = price, max = price, sum = 0 }
      ctx.state[day] = row
    elseif price < row.min then
      row.min = price
    elseif price > row.max then
      row.max = price
    end
    row.bids = row.bids + 1
    if price < 10000 then
      row.rank1 = row.rank1 + 1
    elseif price < 1000000 then
      row.rank2 = row.rank2 + 1
    else
      row.rank3 = row.rank3 + 1
    end
    row.sum = row.sum + price
    ctx:emit(row)
  end):uid("statistics")

nx.finish(p, results, a, function(row)
  return string.format("%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d",
    row.auction, nx.day(row.day * DAY_MS), row.bids, row.rank1, row.rank2,
    row.rank3, row.min, row.max, floor(row.sum / row.bids), row.sum)
end)
