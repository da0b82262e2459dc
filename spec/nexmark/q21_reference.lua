--- Nexmark q21 (add channel id) in plain Lua, from the SQL: channel_id is
-- '0', '1', '2', '3' for lower(channel) apple, google, facebook, baidu,
-- else REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2); bids with no
-- extracted value and no hot channel are filtered out.
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines "auction<TAB>bidder<TAB>price<TAB>channel<TAB>
--   channel_id" examples/nexmark/q21.lua writes, in event order
local HOT = { apple = "0", google = "1", facebook = "2", baidu = "3" }

-- The regular expression's group 2 at its leftmost match, or nil: a match
-- at the start of url comes first.
local function regexp_extract(url)
  return url:match("^channel_id=([^&]*)") or url:match("&channel_id=([^&]*)")
end

return function(events, opts)
  local lines = {}
  for _, e in ipairs(events) do
    if e.type == "bid" then
      local extracted = regexp_extract(e.url)
      local hot = HOT[e.channel:lower()]
      if extracted ~= nil or hot then
        lines[#lines + 1] = string.format("%d\t%d\t%d\t%s\t%s", e.auction,
          e.bidder, e.price, e.channel, hot or extracted)
      end
    end
  end
  return lines
end
