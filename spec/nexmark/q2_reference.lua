--- Nexmark q2 (selection) in plain Lua, from the SQL:
--   SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
-- @param events the generator's events (every type), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the lines examples/nexmark/q2.lua writes, in event order
return function(events, opts)
  local lines = {}
  for _, e in ipairs(events) do
    if e.type == "bid" and math.fmod(e.auction, 123) == 0 then
      lines[#lines + 1] = string.format("%d\t%d", e.auction, e.price)
    end
  end
  return lines
end
