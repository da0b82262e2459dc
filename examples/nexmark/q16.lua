-- Nexmark q16, channel statistics: per channel and day, the number of
-- bids, of distinct bidders and of distinct auctions, overall and per
-- price rank, and the last minute with a bid.
--
--   SELECT channel, DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') as `day`,
--     max(DATE_FORMAT(`dateTime`, 'HH:mm')) as `minute`,
--     count(*) AS total_bids,
--     count(*) filter (where price < 10000) AS rank1_bids,
--     ... (rank2_bids, rank3_bids as in q15)
--     count(distinct bidder) AS total_bidders,
--     ... (rank1_bidders .. rank3_bidders as in q15)
--     count(distinct auction) AS total_auctions,
--     ... (rank1_auctions .. rank3_auctions as in q15)
--   FROM bid
--   GROUP BY channel, DATE_FORMAT(`dateTime`, 'yyyy-MM-dd');
--
-- Output: channel, day, minute, total_bids, rank1_bids, rank2_bids,
-- rank3_bids, total_bidders, rank1_bidders, rank2_bidders, rank3_bidders,
-- total_auctions, rank1_auctions, rank2_auctions, rank3_auctions. The key
-- of a row is (channel, day): every bid makes a new row for its channel
-- and day, which replaces the previous one.
--
-- Keyed by channel; a channel's state holds a row per day (days since the
-- epoch, UTC), formatted as a date only for the output. The latest minute
-- of a day is that of its latest bid, kept as a time. State grows with
-- the distinct bidders and auctions of each channel and day (about 10,000
-- channels): each is kept once, in one set of bidders and one of
-- auctions, with the price ranks it was seen in as bits of a number,
-- rather than in a set per rank.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q16", a)

local DAY_MS = 86400000
local floor = math.floor

local rank_index, count_distinct = nx.rank_index, nx.count_distinct

-- Only the columns the query reads go to the keyed operator (as Flink's
-- planner prunes the others): less to serialize between workers.
local results = s.bid
  :map(function(bid)
    return { channel = bid.channel, auction = bid.auction,
      bidder = bid.bidder, price = bid.price, date_time = bid.date_time }
  end)
  :key_by(function(bid) return bid.channel end)
  -- The state of a channel: its row of each day, the row emitted: channel,
  -- day (days since the epoch), last (the time of the latest bid); bids,
  -- bidders and auctions, counts indexed as rank_index's; bidder_ranks and
  -- auction_ranks, the seen sets of count_distinct.
  :process(function(ctx, bid)
    local t = bid.date_time
    local day = floor(t / DAY_MS)
    local row = ctx.state[day]
    if not row then
      row = { channel = ctx.key, day = day, last = t, bids = { 0, 0, 0, 0 },
        bidders = { 0, 0, 0, 0 }, auctions = { 0, 0, 0, 0 },
        bidder_ranks = {}, auction_ranks = {} }
      ctx.state[day] = row
    elseif t > row.last then
      row.last = t
    end
    local i = rank_index(bid.price)
    local bids = row.bids
    bids[1] = bids[1] + 1
    bids[i] = bids[i] + 1
    count_distinct(row.bidders, row.bidder_ranks, bid.bidder, i)
    count_distinct(row.auctions, row.auction_ranks, bid.auction, i)
    ctx:emit(row)
  end):uid("statistics")

nx.finish(p, results, a, function(row)
  local b, n, au = row.bids, row.bidders, row.auctions
  return string.format("%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d"
    .. "\t%d\t%d\t%d\t%d", row.channel, nx.day(row.day * DAY_MS),
    nx.hm(row.last), b[1], b[2], b[3], b[4], n[1], n[2], n[3], n[4],
    au[1], au[2], au[3], au[4])
end)
