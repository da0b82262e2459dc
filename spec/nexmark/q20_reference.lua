--- Nexmark q20 computed in plain Lua, without weir, from its SQL:
--   SELECT auction, bidder, price, channel, url, B.`dateTime`, B.extra,
--     itemName, description, initialBid, reserve, A.`dateTime`, expires,
--     seller, category, A.extra
--   FROM bid AS B INNER JOIN auction AS A on B.auction = A.id
--   WHERE A.category = 10;
-- @param events the generator's events (weir.nexmark), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the final table, whose rows have no key (bids have no id): a
--   multiset { [the row's 16 columns, tab-separated] = times it occurs }
return function(events, opts)
  local auctions = {}
  for _, e in ipairs(events) do
    if e.type == "auction" and e.category == 10 then auctions[e.id] = e end
  end
  local out = {}
  for _, b in ipairs(events) do
    local a = b.type == "bid" and auctions[b.auction]
    if a then
      local line = table.concat({ b.auction, b.bidder, b.price, b.channel,
        b.url, b.date_time, b.extra, a.item_name, a.description,
        a.initial_bid, a.reserve, a.date_time, a.expires, a.seller,
        a.category, a.extra }, "\t")
      out[line] = (out[line] or 0) + 1
    end
  end
  return out
end
