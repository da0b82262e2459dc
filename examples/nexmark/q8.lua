-- Nexmark q8, monitor new users: the people who registered and opened an
-- auction (as its seller) within the same 10 s tumbling window of event
-- time; one line per person and window however many auctions they
-- opened in it (the SQL groups both sides by window before joining).
--   weir run examples/nexmark/q8.lua EVENTS [OUTDIR [RATE [SEED]]]
--
--   SELECT P.id, P.name, P.starttime
--   FROM (
--     SELECT id, name, window_start AS starttime, window_end AS endtime
--     FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime),
--       INTERVAL '10' SECOND))
--     GROUP BY id, name, window_start, window_end
--   ) P
--   JOIN (
--     SELECT seller, window_start AS starttime, window_end AS endtime
--     FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime),
--       INTERVAL '10' SECOND))
--     GROUP BY seller, window_start, window_end
--   ) A
--   ON P.id = A.seller AND P.starttime = A.starttime
--     AND P.endtime = A.endtime;
--
-- Output columns: id, name, starttime (the window's start, ms).
--
-- People keyed by id and sellers keyed by their id meet in one
-- connect/process; per window it notes the person's names and whether
-- they sold, and decides when the watermark passes the window's end.
local nx = dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua")

local WINDOW_MS = 10000

local a = nx.args()
local p, s = nx.source("q8", a)

-- Only the columns the join needs go on: the exchange by key serializes
-- records.
local people = s.person
  :map(function(person) return { id = person.id, name = person.name } end)
  :key_by(function(person) return person.id end)
local sellers = s.auction
  :map(function(auction) return auction.seller end)
  :key_by(function(seller) return seller end)

-- The key's window that holds time t, in ctx.state by its start: names =
-- set of the person's names, sold = whether an auction came; the window
-- is decided by a timer at its last ms.
local function window_of(ctx)
  local t = ctx.timestamp
  local start = t - t % WINDOW_MS
  local w = ctx.state[start]
  if not w then
    w = {}
    ctx.state[start] = w
    ctx:timer(start + WINDOW_MS - 1)
  end
  return w, start
end

local new_users = people:connect(sellers):process {
  left = function(ctx, person)
    local w = window_of(ctx)
    w.names = w.names or {}
    w.names[person.name] = true
  end,
  right = function(ctx)
    local w = window_of(ctx)
    w.sold = true
  end,
  on_timer = function(ctx, t)
    local start = t + 1 - WINDOW_MS
    local w = ctx.state[start]
    if w.sold and w.names then
      for name in pairs(w.names) do
        ctx:emit({ id = ctx.key, name = name, starttime = start })
      end
    end
    ctx.state[start] = nil
  end,
}:uid("new_users")

nx.finish(p, new_users, a, function(u)
  return string.format("%d\t%s\t%d", u.id, u.name, u.starttime)
end)
