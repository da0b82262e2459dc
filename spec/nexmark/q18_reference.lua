--- Nexmark q18 computed in plain Lua, without weir, from its SQL:
--   SELECT auction, bidder, price, channel, url, `dateTime`, extra
--   FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction
--           ORDER BY `dateTime` DESC) AS rank_number
--         FROM bid)
--   WHERE rank_number <= 1;
-- Bids of a pair with equal times are ordered by price, highest first,
-- then by channel, url and extra (descending), as
-- examples/nexmark/q18.lua orders them.
-- @param events the generator's events (weir.nexmark), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the final table: { ["auction\tbidder"] = the row's 7 columns,
--   tab-separated }
return function(events, opts)
  -- "auction\tbidder" -> its bids
  local groups = {}
  for _, b in ipairs(events) do
    if b.type == "bid" then
      local key = b.auction .. "\t" .. b.bidder
      groups[key] = groups[key] or {}
      table.insert(groups[key], b)
    end
  end
  local out = {}
  for key, bids in pairs(groups) do
    table.sort(bids, function(b, c)
      if b.date_time ~= c.date_time then return b.date_time > c.date_time end
      if b.price ~= c.price then return b.price > c.price end
      if b.channel ~= c.channel then return b.channel > c.channel end
      if b.url ~= c.url then return b.url > c.url end
      return b.extra > c.extra
    end)
    local b = bids[1]
    out[key] = table.concat({ b.auction, b.bidder, b.price, b.channel, b.url,
      b.date_time, b.extra }, "\t")
  end
  return out
end
