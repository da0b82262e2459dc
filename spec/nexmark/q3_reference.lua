--- Nexmark q3 computed in plain Lua, without weir, from its SQL:
--   SELECT P.name, P.city, P.state, A.id
--   FROM auction AS A INNER JOIN person AS P on A.seller = P.id
--   WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID'
--     OR P.state = 'CA');
-- @param events the generator's events (weir.nexmark), in any order
-- @param opts unused (the signature of every query's reference)
-- @return the final table: { [auction id as a string] = "name\tcity\t
--   state\tid" }
return function(events, opts)
  local people = {}
  for _, e in ipairs(events) do
    if e.type == "person"
        and (e.state == "OR" or e.state == "ID" or e.state == "CA") then
      people[e.id] = e
    end
  end
  local out = {}
  for _, e in ipairs(events) do
    if e.type == "auction" and e.category == 10 then
      local person = people[e.seller]
      if person then
        out[tostring(e.id)] = table.concat({ person.name, person.city,
          person.state, e.id }, "\t")
      end
    end
  end
  return out
end
