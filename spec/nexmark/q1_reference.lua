--- Nexmark q1 (currency conversion) in plain Lua, from the SQL:
--   SELECT auction, bidder, 0.908 * price as price, dateTime, extra
--   FROM bid
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines examples/nexmark/q1.lua writes, in event order; the
--   price is DECIMAL(23,3), computed exactly in thousandths
return function(events, opts)
  local lines = {}
  for _, e in ipairs(events) do
    if e.type == "bid" then
      local thousandths = 908 * e.price
      lines[#lines + 1] = string.format("%d\t%d\t%d.%03d\t%d\t%s", e.auction,
        e.bidder, math.floor(thousandths / 1000), thousandths % 1000,
        e.date_time, e.extra)
    end
  end
  return lines
end
