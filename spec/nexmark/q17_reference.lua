--- Nexmark q17 computed in plain Lua, without weir, from its SQL:
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
-- AVG of a BIGINT is an integer, rounded down (all prices are positive).
-- @param events the generator's events (weir.nexmark), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the final table: { ["auction\tday"] = the row's 10 columns,
--   tab-separated }
return function(events, opts)
  -- "auction\tday" -> the prices of its bids
  local groups = {}
  for _, b in ipairs(events) do
    if b.type == "bid" then
      local key = b.auction .. "\t"
        .. os.date("!%Y-%m-%d", math.floor(b.date_time / 1000))
      groups[key] = groups[key] or {}
      table.insert(groups[key], b.price)
    end
  end
  local out = {}
  for key, prices in pairs(groups) do
    local ranks, min, max, sum = { 0, 0, 0 }, math.huge, -math.huge, 0
    for _, price in ipairs(prices) do
      local r = price < 10000 and 1 or price < 1000000 and 2 or 3
      ranks[r] = ranks[r] + 1
      min, max, sum = math.min(min, price), math.max(max, price), sum + price
    end
    out[key] = table.concat({ key, #prices, ranks[1], ranks[2], ranks[3],
      min, max, math.floor(sum / #prices), sum }, "\t")
  end
  return out
end
