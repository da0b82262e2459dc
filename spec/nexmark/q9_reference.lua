--- Nexmark q9 computed in plain Lua, without weir, from its SQL:
--   SELECT id, itemName, description, initialBid, reserve, `dateTime`,
--     expires, seller, category, extra,
--     auction, bidder, price, bid_dateTime, bid_extra
--   FROM (
--     SELECT A.*, B.auction, B.bidder, B.price,
--       B.`dateTime` AS bid_dateTime, B.extra AS bid_extra,
--       ROW_NUMBER() OVER (PARTITION BY A.id
--         ORDER BY B.price DESC, B.`dateTime` ASC) AS rownum
--     FROM auction A, bid B
--     WHERE A.id = B.auction
--       AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires)
--   WHERE rownum <= 1;
-- Bids of equal price and time are ordered by bidder, then extra, as
-- examples/nexmark/q9.lua orders them.
-- @param events the generator's events (weir.nexmark), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the final table: { [auction id as a string] = the row's 15
--   columns, tab-separated }
return function(events, opts)
  local auctions, bids = {}, {}
  for _, e in ipairs(events) do
    if e.type == "auction" then auctions[e.id] = e end
  end
  for _, b in ipairs(events) do
    local a = b.type == "bid" and auctions[b.auction]
    if a and b.date_time >= a.date_time and b.date_time <= a.expires then
      bids[a.id] = bids[a.id] or {}
      table.insert(bids[a.id], b)
    end
  end
  local out = {}
  for id, list in pairs(bids) do
    table.sort(list, function(b, c)
      if b.price ~= c.price then return b.price > c.price end
      if b.date_time ~= c.date_time then return b.date_time < c.date_time end
      if b.bidder ~= c.bidder then return b.bidder < c.bidder end
      return b.extra < c.extra
    end)
    local a, b = auctions[id], list[1]
    out[tostring(id)] = table.concat({ a.id, a.item_name, a.description,
      a.initial_bid, a.reserve, a.date_time, a.expires, a.seller,
      a.category, a.extra, b.auction, b.bidder, b.price, b.date_time,
      b.extra }, "\t")
  end
  return out
end
