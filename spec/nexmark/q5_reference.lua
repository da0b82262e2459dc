--- Nexmark q5 (hot items) in plain Lua, from the SQL: bids counted per
-- auction in HOP windows (slide 2 s, size 10 s: every window [s, s + 10 s)
-- with s a multiple of 2 s that holds the bid's time), the largest count
-- per window, and the auctions whose count is at least that.
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines "auction<TAB>num" examples/nexmark/q5.lua writes, in
--   no particular order
local SLIDE, SIZE = 2000, 10000

return function(events, opts)
  -- counts[window start][auction] = bids
  local counts = {}
  for _, e in ipairs(events) do
    if e.type == "bid" then
      local t = e.date_time
      for start = t - t % SLIDE - SIZE + SLIDE, t, SLIDE do
        assert(start <= t and t < start + SIZE)
        counts[start] = counts[start] or {}
        counts[start][e.auction] = (counts[start][e.auction] or 0) + 1
      end
    end
  end
  local lines = {}
  for _, auctions in pairs(counts) do
    local maxn = 0
    for _, num in pairs(auctions) do maxn = math.max(maxn, num) end
    for auction, num in pairs(auctions) do
      if num >= maxn then
        lines[#lines + 1] = string.format("%d\t%d", auction, num)
      end
    end
  end
  return lines
end
