--- Nexmark q8 (monitor new users) in plain Lua, from the SQL: people
-- grouped by (id, name, TUMBLE window of 10 s), auctions by (seller,
-- window), joined on id = seller and the same window.
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines "id<TAB>name<TAB>window start" examples/nexmark/q8.lua
--   writes, in no particular order
local SIZE = 10000

return function(events, opts)
  local people, sellers = {}, {}   -- sets of "id\tname\tstart", "id\tstart"
  for _, e in ipairs(events) do
    local start = e.date_time - e.date_time % SIZE
    if e.type == "person" then
      people[string.format("%d\t%s\t%d", e.id, e.name, start)] = true
    elseif e.type == "auction" then
      sellers[string.format("%d\t%d", e.seller, start)] = true
    end
  end
  local lines = {}
  for line in pairs(people) do
    local id, start = line:match("^(%d+)\t.*\t(%d+)$")
    if sellers[id .. "\t" .. start] then lines[#lines + 1] = line end
  end
  return lines
end
