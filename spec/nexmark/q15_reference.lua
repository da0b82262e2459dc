--- Nexmark q15 computed in plain Lua, without weir, from its SQL:
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
-- @param events the generator's events (weir.nexmark), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the final table: { [day] = the row's 13 columns,
--   tab-separated }
local function rank(price)
  if price < 10000 then return 1 elseif price < 1000000 then return 2 end
  return 3
end

local function size(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

return function(events, opts)
  -- day -> { bids, bidders, auctions }: index "all" for every bid, 1..3
  -- for the bids of a price rank; bids counts, bidders and auctions sets.
  local groups = {}
  for _, b in ipairs(events) do
    if b.type == "bid" then
      local day = os.date("!%Y-%m-%d", math.floor(b.date_time / 1000))
      local g = groups[day]
      if not g then
        g = { bids = { all = 0, 0, 0, 0 }, bidders = { all = {}, {}, {}, {} },
          auctions = { all = {}, {}, {}, {} } }
        groups[day] = g
      end
      for _, k in ipairs({ "all", rank(b.price) }) do
        g.bids[k] = g.bids[k] + 1
        g.bidders[k][b.bidder] = true
        g.auctions[k][b.auction] = true
      end
    end
  end
  local out = {}
  for day, g in pairs(groups) do
    local row = { day }
    for _, k in ipairs({ "all", 1, 2, 3 }) do row[#row + 1] = g.bids[k] end
    for _, k in ipairs({ "all", 1, 2, 3 }) do
      row[#row + 1] = size(g.bidders[k])
    end
    for _, k in ipairs({ "all", 1, 2, 3 }) do
      row[#row + 1] = size(g.auctions[k])
    end
    out[day] = table.concat(row, "\t")
  end
  return out
end
