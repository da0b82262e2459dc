--- Nexmark q7 (highest bid) in plain Lua, from the SQL: the largest price
-- per TUMBLE window of 10 s, with the window's end as its time; then every
-- bid at that price whose time is BETWEEN the window's end - 10 s AND its
-- end (both included).
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines examples/nexmark/q7.lua writes (columns in the
--   SELECT's order: auction, price, bidder, dateTime, extra), in no
--   particular order
local SIZE = 10000

return function(events, opts)
  local maxprice = {}     -- window end -> largest price
  for _, e in ipairs(events) do
    if e.type == "bid" then
      local window_end = e.date_time - e.date_time % SIZE + SIZE
      maxprice[window_end] = math.max(maxprice[window_end] or 0, e.price)
    end
  end
  local lines = {}
  for _, e in ipairs(events) do
    if e.type == "bid" then
      local t = e.date_time
      -- The window ends a bid's time can be BETWEEN: the multiples of 10 s
      -- in [t, t + 10 s], among t - t % 10 s and the one after it.
      for _, window_end in ipairs({ t - t % SIZE, t - t % SIZE + SIZE }) do
        if maxprice[window_end] == e.price and t >= window_end - SIZE
            and t <= window_end then
          lines[#lines + 1] = string.format("%d\t%d\t%d\t%d\t%s", e.auction,
            e.price, e.bidder, t, e.extra)
        end
      end
    end
  end
  return lines
end
