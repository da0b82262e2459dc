-- Nexmark q22, URL directories: every bid with the pieces 3, 4 and 5
-- (0-based, SPLIT_INDEX) of its URL split on "/": for
-- https://www.nexmark.com/abc/de_f/ghi/item.htm?query=1 they are abc, de_f
-- and ghi.
--   weir run examples/nexmark/q22.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   SELECT auction, bidder, price, channel,
--     SPLIT_INDEX(url, '/', 3) as dir1,
--     SPLIT_INDEX(url, '/', 4) as dir2,
--     SPLIT_INDEX(url, '/', 5) as dir3 FROM bid;
--
-- Output columns: auction, bidder, price, channel, dir1, dir2, dir3 (empty
-- where the URL has fewer pieces; SPLIT_INDEX gives NULL).
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local find, sub = string.find, string.sub

-- The piece of s from position start to the next "/" (or the end), and
-- where the piece after it starts; nil, nil without a piece at start.
local function piece(s, start)
  if not start then return nil, nil end
  local slash = find(s, "/", start, true)
  if not slash then return sub(s, start), nil end
  return sub(s, start, slash - 1), slash + 1
end

-- Pieces 3, 4 and 5 of url split on "/". (Written out: LuaJIT does not
-- compile a short loop inside a function that a hot loop calls.)
local function directories(url)
  local slash1 = find(url, "/", 1, true)
  local slash2 = slash1 and find(url, "/", slash1 + 1, true)
  local slash3 = slash2 and find(url, "/", slash2 + 1, true)
  local dir1, dir2, dir3, start
  dir1, start = piece(url, slash3 and slash3 + 1)
  dir2, start = piece(url, start)
  dir3 = piece(url, start)
  return dir1, dir2, dir3
end

local a = nx.args()
local p, s = nx.source("q22", a)
local bids = s.bid:map(function(b)
  local dir1, dir2, dir3 = directories(b.url)
  return { auction = b.auction, bidder = b.bidder, price = b.price,
    channel = b.channel, dir1 = dir1, dir2 = dir2, dir3 = dir3 }
end)
nx.finish(p, bids, a, function(b)
  return string.format("%d\t%d\t%d\t%s\t%s\t%s\t%s", b.auction, b.bidder,
    b.price, b.channel, b.dir1 or "", b.dir2 or "", b.dir3 or "")
end)
