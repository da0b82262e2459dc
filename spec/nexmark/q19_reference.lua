--- Nexmark q19 computed in plain Lua, without weir, from its SQL:
--   SELECT * FROM
--   (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC)
--      AS rank_number FROM bid)
--   WHERE rank_number <= 10;
-- Bids of equal price are ordered by time, earliest first, then by
-- bidder, channel, url and extra, as examples/nexmark/q19.lua orders
-- them.
-- @param events the generator's events (weir.nexmark), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the final table: { ["auction\trank_number"] = the row's 8
--   columns, tab-separated }
return function(events, opts)
  -- auction -> its bids
  local groups = {}
  for _, b in ipairs(events) do
    if b.type == "bid" then
      groups[b.auction] = groups[b.auction] or {}
      table.insert(groups[b.auction], b)
    end
  end
  local out = {}
  for auction, bids in pairs(groups) do
    table.sort(bids, function(b, c)
      if b.price ~= c.price then return b.price > c.price end
      if b.date_time ~= c.date_time then return b.date_time < c.date_time end
      if b.bidder ~= c.bidder then return b.bidder < c.bidder end
      if b.channel ~= c.channel then return b.channel < c.channel end
      if b.url ~= c.url then return b.url < c.url end
      return b.extra < c.extra
    end)
    for rank = 1, math.min(10, #bids) do
      local b = bids[rank]
      out[auction .. "\t" .. rank] = table.concat({ b.auction, b.bidder,
        b.price, b.channel, b.url, b.date_time, b.extra, rank }, "\t")
    end
  end
  return out
end
