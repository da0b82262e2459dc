--- Nexmark q12 (bids per bidder in processing-time windows) in plain Lua,
-- as far as it can be known in advance: which processing-time window a
-- bid lands in depends on when it is processed, but a bidder's counts
-- over all windows sum to its bids.
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines "bidder<TAB>bids" of every bidder, in no particular
--   order: examples/nexmark/q12.lua's lines (bidder, bid_count, start,
--   end) summed per bidder
return function(events, opts)
  local bids = {}
  for _, e in ipairs(events) do
    if e.type == "bid" then bids[e.bidder] = (bids[e.bidder] or 0) + 1 end
  end
  local lines = {}
  for bidder, n in pairs(bids) do
    lines[#lines + 1] = string.format("%d\t%d", bidder, n)
  end
  return lines
end
