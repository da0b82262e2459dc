-- Nexmark q15, bidding statistics: per day, the number of bids, of
-- distinct bidders and of distinct auctions, overall and per price rank.
--
--   SELECT DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') as `day`,
--     count(*) AS total_bids,
--     count(*) filter (where price < 10000) AS rank1_bids,
--     count(*) filter (where price >= 10000 and price < 1000000)
--       AS rank2_bids,
--     count(*) filter (where price >= 1000000) AS rank3_bids,
--     count(distinct bidder) AS total_bidders,
--     count(distinct bidder) filter (where price < 10000) AS rank1_bidders,
--     ... (rank2_bidders, rank3_bidders likewise)
--     count(distinct auction) AS total_auctions,
--     ... (rank1_auctions, rank2_auctions, rank3_auctions likewise)
--   FROM bid
--   GROUP BY DATE_FORMAT(`dateTime`, 'yyyy-MM-dd');
--
-- Output: day, total_bids, rank1_bids, rank2_bids, rank3_bids,
-- total_bidders, rank1_bidders, rank2_bidders, rank3_bidders,
-- total_auctions, rank1_auctions, rank2_auctions, rank3_auctions. The key
-- of a row is the day: every bid makes a new row for its day, which
-- replaces the day's previous one.
--
-- Keyed by the day's number (days since the epoch, UTC); the date is
-- formatted only for the output. The distinct counts keep, per day, one
-- set of bidders and one of auctions, each value with the price ranks it
-- was seen in (bits of a number), rather than a set per rank.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q15", a)

local DAY_MS = 86400000
local floor = math.floor

local rank_index, count_distinct = nx.rank_index, nx.count_distinct

-- Only the columns the query reads go to the keyed operator (as Flink's
-- planner prunes the others): less to serialize between workers.
local results = s.bid
  :map(function(bid)
    return { auction = bid.auction, bidder = bid.bidder, price = bid.price,
      date_time = bid.date_time }
  end)
  :key_by(function(bid) return floor(bid.date_time / DAY_MS) end)
  -- The state of a day, the row emitted: day (days since the epoch); bids,
  -- bidders and auctions, counts indexed as rank_index's; bidder_ranks and
  -- auction_ranks, the seen sets of count_distinct.
  :process(function(ctx, bid)
    local row = ctx.state
    local bids = row.bids
    if not bids then
      bids = { 0, 0, 0, 0 }
      row.day, row.bids, row.bidders, row.auctions = ctx.key, bids,
        { 0, 0, 0, 0 }, { 0, 0, 0, 0 }
      row.bidder_ranks, row.auction_ranks = {}, {}
    end
    local i = rank_index(bid.price)
    bids[1] = bids[1] + 1
    bids[i] = bids[i] + 1
    count_distinct(row.bidders, row.bidder_ranks, bid.bidder, i)
    count_distinct(row.auctions, row.auction_ranks, bid.auction, i)
    ctx:emit(row)
  end):uid("statistics")

nx.finish(p, results, a, function(row)
  local b, n, au = row.bids, row.bidders, row.auctions
  return string.format("%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d"
    .. "\t%d", nx.day(row.day * DAY_MS), b[1], b[2], b[3], b[4],
    n[1], n[2], n[3], n[4], au[1], au[2], au[3], au[4])
end)
