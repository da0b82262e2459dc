-- Nexmark q3, local item suggestion: who sells in category 10 from
-- Oregon, Idaho or California, and which auctions.
--
--   SELECT P.name, P.city, P.state, A.id
--   FROM auction AS A INNER JOIN person AS P on A.seller = P.id
--   WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID'
--     OR P.state = 'CA');
--
-- Output: name, city, state, id (the auction's). The key of a row is the
-- auction id: an auction has one seller, so it makes at most one row,
-- which never changes (the changelog only inserts).
--
-- Sellers and auctions meet in an operator keyed by the person id. An
-- auction may come before its seller (its seller id may lead the people
-- made so far, or be made by another subtask's generator), so it waits in
-- the seller's state until the seller comes. As in the SQL, a seller is
-- kept for ever, and so is an auction whose seller never passes the
-- filter. Person ids are unique, so an auction that met its seller is not
-- kept: no other person can join it.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")
local a = nx.args()
local p, s = nx.source("q3", a)

local LOCAL_STATES = { OR = true, ID = true, CA = true }

-- Only the columns the query reads go to the join (as Flink's planner
-- prunes the others): less to serialize between workers.
local sellers = s.person
  :filter(function(person) return LOCAL_STATES[person.state] end)
  :map(function(person)
    return { id = person.id, name = person.name, city = person.city,
      state = person.state }
  end)
  :key_by(function(person) return person.id end)
local auctions = s.auction
  :filter(function(auction) return auction.category == 10 end)
  :map(function(auction)
    return { id = auction.id, seller = auction.seller }
  end)
  :key_by(function(auction) return auction.seller end)

-- The row emitted, reused: the sink, chained to the operator below, formats
-- it before the next.
local row = {}
local function emit(ctx, seller, id)
  row.seller, row.id = seller, id
  ctx:emit(row)
end

-- The state of a seller: name, city and state once the person came;
-- waiting, the ids of the auctions that came before.
local results = sellers:connect(auctions):process {
  left = function(ctx, person)
    local seller = ctx.state
    seller.name, seller.city, seller.state = person.name, person.city,
      person.state
    local waiting = seller.waiting
    if waiting then
      for i = 1, #waiting do emit(ctx, seller, waiting[i]) end
      seller.waiting = nil
    end
  end,
  right = function(ctx, auction)
    local seller = ctx.state
    if seller.name then
      emit(ctx, seller, auction.id)
    else
      local waiting = seller.waiting
      if not waiting then
        waiting = {}
        seller.waiting = waiting
      end
      waiting[#waiting + 1] = auction.id
    end
  end,
}:uid("join")

nx.finish(p, results, a, function(r)
  local seller = r.seller
  return string.format("%s\t%s\t%s\t%d", seller.name, seller.city,
    seller.state, r.id)
end)
