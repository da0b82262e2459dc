--- Nexmark q11 (user sessions) in plain Lua, from the SQL: bids per
-- bidder and SESSION window with a gap of 10 s. A bid's window is [t, t +
-- 10 s); windows that overlap or touch merge (Flink's), so a bidder's
-- bids at most 10 s apart share a session, which ends 10 s after its last
-- bid.
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines "bidder<TAB>bid_count<TAB>start<TAB>end"
--   examples/nexmark/q11.lua writes, in no particular order
local GAP = 10000

return function(events, opts)
  local times = {}       -- bidder -> times of its bids
  for _, e in ipairs(events) do
    if e.type == "bid" then
      times[e.bidder] = times[e.bidder] or {}
      table.insert(times[e.bidder], e.date_time)
    end
  end
  local lines = {}
  for bidder, ts in pairs(times) do
    table.sort(ts)
    local first, count = ts[1], 0
    for i, t in ipairs(ts) do
      count = count + 1
      if i == #ts or ts[i + 1] > t + GAP then
        lines[#lines + 1] = string.format("%d\t%d\t%d\t%d", bidder, count,
          first, t + GAP)
        first, count = ts[i + 1], 0
      end
    end
  end
  return lines
end
