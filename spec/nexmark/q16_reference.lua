--- Nexmark q16 computed in plain Lua, without weir, from its SQL:
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
-- @param events the generator's events (weir.nexmark), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the final table: { ["channel\tday"] = the row's 15 columns,
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
  -- "channel\tday" -> { minute, bids, bidders, auctions }: index "all" for
  -- every bid, 1..3 for the bids of a price rank; bids counts, bidders and
  -- auctions sets.
  local groups = {}
  for _, b in ipairs(events) do
    if b.type == "bid" then
      local seconds = math.floor(b.date_time / 1000)
      local key = b.channel .. "\t" .. os.date("!%Y-%m-%d", seconds)
      local minute = os.date("!%H:%M", seconds)
      local g = groups[key]
      if not g then
        g = { minute = minute, bids = { all = 0, 0, 0, 0 },
          bidders = { all = {}, {}, {}, {} },
          auctions = { all = {}, {}, {}, {} } }
        groups[key] = g
      end
      if minute > g.minute then g.minute = minute end
      for _, k in ipairs({ "all", rank(b.price) }) do
        g.bids[k] = g.bids[k] + 1
        g.bidders[k][b.bidder] = true
        g.auctions[k][b.auction] = true
      end
    end
  end
  local out = {}
  for key, g in pairs(groups) do
    local row = { key, g.minute }
    for _, k in ipairs({ "all", 1, 2, 3 }) do row[#row + 1] = g.bids[k] end
    for _, k in ipairs({ "all", 1, 2, 3 }) do
      row[#row + 1] = size(g.bidders[k])
    end
    for _, k in ipairs({ "all", 1, 2, 3 }) do
      row[#row + 1] = size(g.auctions[k])
    end
    out[key] = table.concat(row, "\t")
  end
  return out
end
