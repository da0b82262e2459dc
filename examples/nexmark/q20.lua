-- Nexmark q20, expand bid with auction: every bid joined with its auction,
-- for the auctions of category 10.
--
--   SELECT auction, bidder, price, channel, url, B.`dateTime`, B.extra,
--     itemName, description, initialBid, reserve, A.`dateTime`, expires,
--     seller, category, A.extra
--   FROM bid AS B INNER JOIN auction AS A on B.auction = A.id
--   WHERE A.category = 10;
--
-- Output: those 16 columns. A row has no key of its own (a bid has no
-- id): the changelog only inserts, one row per bid of a category-10
-- auction.
--
-- Bids and auctions meet in an operator keyed by the auction id. A bid may
-- come before its auction (its auction id may lead the auctions made so
-- far, or be made by another subtask's generator); it then waits in the
-- auction's state. Deviation in state, not in results: the SQL keeps
-- every bid for ever, in case a matching auction comes later; auction ids
-- are unique, so here every auction is let in, not only category 10, and
-- once a key's auction came its bids join it (or are dropped, for another
-- category) on arrival and are never kept. Only bids waiting for their
-- auction are kept; a category-10 auction is kept for ever.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q20", a)

local auctions = s.auction:key_by(function(auction) return auction.id end)
local bids = s.bid:key_by(function(bid) return bid.auction end)

-- The row emitted, reused: the sink, chained to the operator below, formats
-- it before the next.
local row = {}
local function emit(ctx, bid, auction)
  row.bid, row.auction = bid, auction
  ctx:emit(row)
end

-- The state of an auction id: auction, the auction of category 10, or
-- false for another category (nil until it came); waiting, the bids that
-- came before it.
local results = auctions:connect(bids):process {
  left = function(ctx, auction)
    local st = ctx.state
    if auction.category ~= 10 then
      st.auction, st.waiting = false, nil
      return
    end
    st.auction = auction
    local waiting = st.waiting
    if waiting then
      for i = 1, #waiting do emit(ctx, waiting[i], auction) end
      st.waiting = nil
    end
  end,
  right = function(ctx, bid)
    local st = ctx.state
    local auction = st.auction
    if auction then
      emit(ctx, bid, auction)
    elseif auction == nil then
      nx.hold(st, bid)
    end
  end,
}:uid("join")

nx.finish(p, results, a, function(r)
  local b, au = r.bid, r.auction
  return string.format("%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d"
    .. "\t%d\t%d\t%d\t%d\t%s", b.auction, b.bidder, b.price, b.channel,
    b.url, b.date_time, b.extra, au.item_name, au.description,
    au.initial_bid, au.reserve, au.date_time, au.expires, au.seller,
    au.category, au.extra)
end)
