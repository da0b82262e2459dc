--- Nexmark q0 (pass through) in plain Lua, from the SQL:
--   SELECT auction, bidder, price, dateTime, extra FROM bid
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines examples/nexmark/q0.lua writes, in event order
return function(events, opts)
  local lines = {}
  for _, e in ipairs(events) do
    if e.type == "bid" then
      lines[#lines + 1] = string.format("%d\t%d\t%d\t%d\t%s", e.auction,
        e.bidder, e.price, e.date_time, e.extra)
    end
  end
  return lines
end
