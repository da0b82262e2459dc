--- Nexmark q4 computed in plain Lua, without weir, from its SQL:
--   SELECT Q.category, AVG(Q.final)
--   FROM (
--     SELECT MAX(B.price) AS final, A.category
--     FROM auction A, bid B
--     WHERE A.id = B.auction
--       AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
--     GROUP BY A.id, A.category
--   ) Q
--   GROUP BY Q.category;
-- AVG of a BIGINT is an integer, rounded down (all prices are positive).
-- @param events the generator's events (weir.nexmark), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the final table: { [category as a string] =
--   "category\taverage" }
return function(events, opts)
  local auctions = {}
  for _, e in ipairs(events) do
    if e.type == "auction" then auctions[e.id] = e end
  end
  local final = {}     -- auction id -> its highest bid in its lifetime
  for _, b in ipairs(events) do
    local a = b.type == "bid" and auctions[b.auction]
    if a and b.date_time >= a.date_time and b.date_time <= a.expires then
      if final[a.id] == nil or b.price > final[a.id] then
        final[a.id] = b.price
      end
    end
  end
  local sum, count = {}, {}
  for id, price in pairs(final) do
    local c = auctions[id].category
    sum[c] = (sum[c] or 0) + price
    count[c] = (count[c] or 0) + 1
  end
  local out = {}
  for c, n in pairs(count) do
    out[tostring(c)] = table.concat({ c, math.floor(sum[c] / n) }, "\t")
  end
  return out
end
