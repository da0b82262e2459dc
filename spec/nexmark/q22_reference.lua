--- Nexmark q22 (URL directories) in plain Lua, from the SQL:
-- SPLIT_INDEX(url, '/', i) for i = 3, 4, 5: the url split on every "/"
-- (empty pieces kept), piece i counted from 0; NULL (written as an empty
-- column) past the last piece.
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines "auction<TAB>bidder<TAB>price<TAB>channel<TAB>dir1<TAB>
--   dir2<TAB>dir3" examples/nexmark/q22.lua writes, in event order
local function split(s, sep)
  local pieces, start = {}, 1
  while true do
    local at = s:find(sep, start, true)
    if not at then
      pieces[#pieces + 1] = s:sub(start)
      return pieces
    end
    pieces[#pieces + 1] = s:sub(start, at - 1)
    start = at + 1
  end
end

return function(events, opts)
  local lines = {}
  for _, e in ipairs(events) do
    if e.type == "bid" then
      local pieces = split(e.url, "/")
      lines[#lines + 1] = string.format("%d\t%d\t%d\t%s\t%s\t%s\t%s",
        e.auction, e.bidder, e.price, e.channel, pieces[4] or "",
        pieces[5] or "", pieces[6] or "")
    end
  end
  return lines
end
