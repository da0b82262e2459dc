--- Nexmark q14 (calculation) in plain Lua, from the SQL: bids with 0.908 *
-- price strictly between 1,000,000 and 50,000,000; bidTimeType from
-- HOUR(dateTime) in UTC (8..18 dayTime, <= 6 or >= 20 nightTime, else
-- otherTime); c_counts = count_char(extra, 'c').
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines examples/nexmark/q14.lua writes, in event order; the
--   price as DECIMAL(23,3), computed exactly in thousandths
return function(events, opts)
  local lines = {}
  for _, e in ipairs(events) do
    -- 0.908 * price in thousandths: exact integers.
    local thousandths = e.type == "bid" and 908 * e.price
    if thousandths and thousandths > 1000000 * 1000
        and thousandths < 50000000 * 1000 then
      local hour = os.date("!*t", math.floor(e.date_time / 1000)).hour
      local kind
      if hour >= 8 and hour <= 18 then
        kind = "dayTime"
      elseif hour <= 6 or hour >= 20 then
        kind = "nightTime"
      else
        kind = "otherTime"
      end
      local c_counts = 0
      for i = 1, #e.extra do
        if e.extra:sub(i, i) == "c" then c_counts = c_counts + 1 end
      end
      lines[#lines + 1] = string.format("%d\t%d\t%d.%03d\t%s\t%d\t%s\t%d",
        e.auction, e.bidder, math.floor(thousandths / 1000),
        thousandths % 1000, kind, e.date_time, e.extra, c_counts)
    end
  end
  return lines
end
