-- Nexmark q21, add channel id: the bids that come through a known channel,
-- with its id. The hot channels (compared in lower case) have fixed ids
-- (apple 0, google 1, facebook 2, baidu 3); any other channel takes the
-- channel_id parameter of the bid's URL (REGEXP_EXTRACT(url,
-- '(&|^)channel_id=([^&]*)', 2)). Bids with neither are left out.
--   weir run examples/nexmark/q21.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   SELECT auction, bidder, price, channel,
--     CASE
--       WHEN lower(channel) = 'apple' THEN '0'
--       WHEN lower(channel) = 'google' THEN '1'
--       WHEN lower(channel) = 'facebook' THEN '2'
--       WHEN lower(channel) = 'baidu' THEN '3'
--       ELSE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)
--     END AS channel_id FROM bid
--   WHERE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) is not null
--     OR lower(channel) in ('apple', 'google', 'facebook', 'baidu');
--
-- Output columns: auction, bidder, price, channel, channel_id.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local find, lower, sub = string.find, string.lower, string.sub

local HOT_CHANNEL_IDS = { apple = "0", google = "1", facebook = "2",
  baidu = "3" }

-- REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2): the value of the
-- first channel_id parameter at the start of url or after a "&", up to the
-- next "&"; nil without one. (Plain finds: LuaJIT compiles them, not
-- string.match.)
local function url_channel_id(url)
  local first
  if find(url, "channel_id=", 1, true) == 1 then
    first = 12
  else
    local at = find(url, "&channel_id=", 1, true)
    if not at then return nil end
    first = at + 12
  end
  local amp = find(url, "&", first, true)
  return sub(url, first, amp and amp - 1 or -1)
end

local a = nx.args()
local p, s = nx.source("q21", a)
local bids = s.bid:flat_map(function(b, emit)
  local id = HOT_CHANNEL_IDS[lower(b.channel)] or url_channel_id(b.url)
  if id then
    emit({ auction = b.auction, bidder = b.bidder, price = b.price,
      channel = b.channel, channel_id = id })
  end
end)
nx.finish(p, bids, a, function(b)
  return string.format("%d\t%d\t%d\t%s\t%s", b.auction, b.bidder, b.price,
    b.channel, b.channel_id)
end)
