--- The Nexmark event generator: a stream of people, auctions and bids for
-- the Nexmark benchmark (Tucker, Tufte, Papadimos, Maier, "NEXMark - A
-- Benchmark for Queries over Data Streams", 2002), as the generator of
-- nexmark/nexmark (the Flink flavor: GeneratorConfig, NexmarkGenerator and
-- model/{Person,Auction,Bid,Strings,Price}Generator) makes them.
--
-- Invariants:
-- * The event with event number n of a generator instance has the event id
--   e = first_event_id + n. The id alone fixes the event's type (1 person,
--   3 auctions, 46 bids in every block of 50 ids), its entity ids and the
--   seed of its random draws; n and the rate fix its timestamp. So event k
--   of an instance is a pure function of (options, instance, instances,
--   k): a generator can start at any position and a restore resumes
--   exactly.
-- * Instance i of p owns the event ids first_event_id_i + 1 .. + size_i
--   (the split of GeneratorConfig.split). Each makes rate / p events per
--   second of event time, event number n of every instance at one time.
-- * Random draws are SplitMix64 (Steele, Lea, Flood, "Fast Splittable
--   Pseudorandom Number Generators", OOPSLA 2014; the generator behind
--   Java's SplittableRandom, which nexmark/nexmark uses), reseeded for
--   every event from (seed, event id): an event's contents but its times
--   do not depend on the instance that makes it, and no generator state
--   outlives an event.
--   Java's random streams are not reproduced: nexmark/nexmark seeds them
--   from the clock, so only their distributions are part of the benchmark.
--
-- Records are plain tables with the field names of the Nexmark SQL views
-- (snake_case), times in ms since the Unix epoch, prices in cents:
--   { type = "person", id, name, email_address, credit_card, city, state,
--     date_time, extra }
--   { type = "auction", id, item_name, description, initial_bid, reserve,
--     date_time, expires, seller, category, extra }
--   { type = "bid", auction, bidder, price, channel, url, date_time,
--     extra }
-- As in nexmark/nexmark, a bidder id is the person's id + 1000 (the
-- generator adds FIRST_PERSON_ID twice), and references may point at
-- people and auctions that another instance makes, or that come up to 10
-- ids later.
local ffi = require "ffi"
local bit = require "bit"

local M = {}

local floor, min, max = math.floor, math.min, math.max
local sub = string.sub
local bxor, rshift = bit.bxor, bit.rshift

-- -- Constants of the generator --------------------------------------------

local PERSON_PROPORTION, AUCTION_PROPORTION = 1, 3
local PROPORTION = 50                 -- person + auction + bid proportions
local FIRST_PERSON_ID, FIRST_AUCTION_ID = 1000, 1000
local FIRST_CATEGORY_ID, NUM_CATEGORIES = 10, 5
local PERSON_ID_LEAD, AUCTION_ID_LEAD = 10, 10
local HOT_RATIO = 100                 -- hot ids are multiples of 100
local HOT_SELLERS_RATIO = 4           -- 3 in 4 auctions by the hot seller
local HOT_AUCTION_RATIO = 2           -- 1 in 2 bids on the hot auction
local HOT_BIDDERS_RATIO = 4           -- 3 in 4 bids by the hot bidder
local NUM_ACTIVE_PEOPLE = 1000        -- people bids and auctions pick from
local NUM_IN_FLIGHT_AUCTIONS = 100    -- auctions bids pick from
-- Events until ~100 more auctions exist: the mean auction length.
local EVENTS_FOR_AUCTIONS = floor(NUM_IN_FLIGHT_AUCTIONS * PROPORTION
  / AUCTION_PROPORTION)
local AVG_PERSON_BYTES, AVG_AUCTION_BYTES, AVG_BID_BYTES = 200, 500, 100
local FIRST_EVENT_ID, FIRST_EVENT_NUMBER = 1, 1     -- nexmark/nexmark's
local EXTRA_LENGTH = 1048576          -- the string extras are cut from
local EXTRA_OFFSETS = 32              -- where extras are cut from it
-- The longest extra: 1.2 times the largest average size.
local MAX_EXTRA = 600
local CHARS_LENGTH = 65536            -- the string names are cut from
-- floor((2^63 - 1) / (PROPORTION * the largest average size)): the events
-- of an "unbounded" generator (events = 0), as GeneratorConfig has it.
local UNBOUNDED_EVENTS = 368934881474191

--- The options' defaults: events (0: unbounded), rate (events per second
-- of event time over all instances: first-event.rate), seed, base_time
-- (ms; Beam's fixed base time 2015-07-15T00:00:00Z, so that runs repeat).
M.defaults = { events = 0, rate = 10000, seed = 0,
  base_time = 1436918400000 }

--- The fields of each record type in the order of the Nexmark SQL views.
M.fields = {
  person = { "id", "name", "email_address", "credit_card", "city", "state",
    "date_time", "extra" },
  auction = { "id", "item_name", "description", "initial_bid", "reserve",
    "date_time", "expires", "seller", "category", "extra" },
  bid = { "auction", "bidder", "price", "channel", "url", "date_time",
    "extra" },
}

-- -- Random draws (SplitMix64) ----------------------------------------------

local GOLDEN_GAMMA = 0x9e3779b97f4a7c15ULL
local MIX1, MIX2 = 0xbf58476d1ce4e5b9ULL, 0x94d049bb133111ebULL

-- SplitMix64's output function: David Stafford's "Mix13" finalizer
-- ("Better Bit Mixing - Improving on MurmurHash3's 64-bit Finalizer",
-- 2011).
local function mix64(z)
  z = bxor(z, rshift(z, 30)) * MIX1
  z = bxor(z, rshift(z, 27)) * MIX2
  return (bxor(z, rshift(z, 31)))
end

-- The state of the current event's draws: a cdata array, so that updating
-- it allocates nothing.
local state = ffi.new("uint64_t[1]")

-- The event path's functions make no tail calls (`return (f(x))` is not
-- one): LuaJIT counts tail calls against its loop-unroll limit and gives
-- up compiling a trace that makes more than 15, and an event makes up to
-- 30 draws. mix64 is written out in the draws, so that a draw is one
-- call.

-- A uniform integer in [0, k) for 1 <= k <= 2^53, from the top 53 bits of
-- the next SplitMix64 output (bias below 2^-33 for the bounds used here).
local function uniform(k)
  local z = state[0] + GOLDEN_GAMMA
  state[0] = z
  z = bxor(z, rshift(z, 30)) * MIX1
  z = bxor(z, rshift(z, 27)) * MIX2
  z = bxor(z, rshift(z, 31))
  return (floor(tonumber(rshift(z, 11)) * 2 ^ -53 * k))
end

-- A uniform double in [0, 1).
local function uniform01()
  local z = state[0] + GOLDEN_GAMMA
  state[0] = z
  z = bxor(z, rshift(z, 30)) * MIX1
  z = bxor(z, rshift(z, 27)) * MIX2
  z = bxor(z, rshift(z, 31))
  return tonumber(rshift(z, 11)) * 2 ^ -53
end

-- -- Pools of strings -------------------------------------------------------
-- Built once per process from a fixed seed, as nexmark/nexmark builds its
-- URL tables and extra string once per JVM; events cut slices out of them.

local FIRST_NAMES = { "Peter", "Paul", "Luke", "John", "Saul", "Vicky",
  "Kate", "Julie", "Sarah", "Deiter", "Walter" }
local LAST_NAMES = { "Shultz", "Abrams", "Spencer", "White", "Bartels",
  "Walton", "Smith", "Jones", "Noris" }
local US_CITIES = { "Phoenix", "Los Angeles", "San Francisco", "Boise",
  "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne" }
local US_STATES = { "AZ", "CA", "ID", "OR", "WA", "WY" }
local HOT_CHANNELS = { "Google", "Facebook", "Baidu", "Apple" }
local CHANNELS_NUMBER = 10000

local pools

-- The pools' own draws: Marsaglia's xorshift32 (Marsaglia, "Xorshift
-- RNGs", Journal of Statistical Software 8(14), 2003, shifts 13/17/5) on
-- plain numbers, cheap before the JIT compiler warms up. The events' draws
-- above are never called here, so warming up the pools does not affect how
-- LuaJIT compiles them.
local function xorshift32(seed)
  local x = seed
  local lshift = bit.lshift
  -- A signed 32-bit integer.
  local function next32()
    x = bxor(x, lshift(x, 13))
    x = bxor(x, rshift(x, 17))
    x = bxor(x, lshift(x, 5))
    return x
  end
  -- A uniform integer in [0, k).
  local function below(k)
    return floor((next32() % 4294967296) / 4294967296 * k)
  end
  return next32, below
end

local function chars_to_string(t)
  local parts = {}
  for i = 1, #t, 4096 do
    parts[#parts + 1] = string.char(unpack(t, i, min(i + 4095, #t)))
  end
  return table.concat(parts)
end

local function build_pools()
  local next32, below = xorshift32(0x6e786d6b)  -- "nxmk"

  -- StringsGenerator.nextString's characters: 'a'..'z', and `special`
  -- with probability 1/13.
  local function random_chars(n, special)
    local t = {}
    for i = 1, n do
      t[i] = below(13) == 0 and special or 97 + below(26)
    end
    return t
  end

  -- BidGenerator.getBaseUrl: three directories of 3 or 4 characters
  -- (nextString(5, '_')).
  local function dir()
    return string.char(unpack(random_chars(3 + below(2), 95)))
  end
  local function base_url()
    return "https://www.nexmark.com/" .. dir() .. "/" .. dir() .. "/"
      .. dir() .. "/item.htm?query=1"
  end

  -- Integer.reverse: the 32 bits of x in reverse order, as a signed int.
  local function reverse32(x)
    local band, bor, lshift = bit.band, bit.bor, bit.lshift
    x = bor(lshift(band(x, 0x55555555), 1), band(rshift(x, 1), 0x55555555))
    x = bor(lshift(band(x, 0x33333333), 2), band(rshift(x, 2), 0x33333333))
    x = bor(lshift(band(x, 0x0f0f0f0f), 4), band(rshift(x, 4), 0x0f0f0f0f))
    return bit.bswap(x)
  end

  local p = { names = {}, two_digits = {}, hot_urls = {}, channels = {},
    channel_urls = {}, next_letter = ffi.new("int32_t[?]", CHARS_LENGTH + 1),
    last_letter = ffi.new("int32_t[?]", CHARS_LENGTH + 1) }
  for i, first in ipairs(FIRST_NAMES) do
    for j, last in ipairs(LAST_NAMES) do
      p.names[(i - 1) * #LAST_NAMES + j] = first .. " " .. last
    end
  end
  for d = 0, 99 do p.two_digits[d + 1] = string.format("%02d", d) end
  for i = 1, #HOT_CHANNELS do p.hot_urls[i] = base_url() end
  -- BidGenerator's channel cache: 9 in 10 URLs carry a channel_id.
  for j = 0, CHANNELS_NUMBER - 1 do
    local url = base_url()
    if below(10) > 0 then
      local id = reverse32(j)
      if id < 0 and id ~= -2147483648 then id = -id end  -- Math.abs
      url = url .. "&channel_id=" .. id
    end
    p.channels[j + 1] = "channel-" .. j
    p.channel_urls[j + 1] = url
  end

  -- The characters names are cut from, and for trimming a slice without a
  -- loop: the first letter at or after each position, the last at or
  -- before it.
  local chars = random_chars(CHARS_LENGTH, 32)
  p.chars = chars_to_string(chars)
  local at = CHARS_LENGTH + 1
  for i = CHARS_LENGTH, 1, -1 do
    if chars[i] ~= 32 then at = i end
    p.next_letter[i] = at
  end
  at = 0
  for i = 1, CHARS_LENGTH do
    if chars[i] ~= 32 then at = i end
    p.last_letter[i] = at
  end

  -- StringsGenerator.nextExtra's characters: six per signed 32-bit draw
  -- r, 'a' + (r rem 26) then r = r quo 26, with Java's truncating division
  -- (negative draws give characters below 'a', down to 'H').
  local t, r, left = {}, 0, 0
  for i = 1, EXTRA_LENGTH do
    if left == 0 then r, left = next32(), 6 end
    local rem = r % 26                  -- Java's remainder has r's sign
    if r < 0 and rem ~= 0 then rem = rem - 26 end
    t[i] = 97 + rem
    r = (r - rem) / 26
    left = left - 1
  end
  p.extra = chars_to_string(t)
  p.extra_offsets = {}
  for slot = 0, EXTRA_OFFSETS - 1 do
    p.extra_offsets[slot] = below(EXTRA_LENGTH - MAX_EXTRA)
  end
  return p
end

-- -- Parts of events --------------------------------------------------------

local chars, next_letter, last_letter, extra_chars, names, two_digits
local extra_offsets
local extra_slices = {}     -- size -> slot -> the extra string
local channels, channel_urls, hot_urls

local function load_pools()
  if pools then return end
  pools = build_pools()
  chars, extra_chars, names = pools.chars, pools.extra, pools.names
  next_letter, last_letter = pools.next_letter, pools.last_letter
  two_digits, hot_urls = pools.two_digits, pools.hot_urls
  extra_offsets = pools.extra_offsets
  channels, channel_urls = pools.channels, pools.channel_urls
end

-- StringsGenerator.nextString(max_length): 3 .. max_length - 1 characters
-- (a space with probability 1/13, else 'a'..'z'), trimmed of spaces at
-- both ends as Java's String.trim does. A slice of the pool has the same
-- distribution, since the pool's characters are independent draws.
local function random_string(max_length)
  local length = 3 + uniform(max_length - 3)
  local i = 1 + uniform(CHARS_LENGTH - length + 1)
  local j = i + length - 1
  local first = next_letter[i]
  if first > j then return "" end
  return (sub(chars, first, last_letter[j]))
end

-- StringsGenerator.nextExtra: filler that brings an event of current_size
-- bytes to avg_size on average: d = avg_size - current_size characters
-- +-20% (uniform in [0.8 d, 1.2 d)), cut out of one long string as
-- nexmark/nexmark does. Where nexmark/nexmark cuts at any offset, this
-- cuts at one of EXTRA_OFFSETS and keeps the slices: making a new string
-- costs LuaJIT a lookup in its string table and a sweep later, more than
-- making the rest of the event.
local function random_extra(current_size, avg_size)
  if current_size > avg_size then return "" end
  local d = avg_size - current_size
  local delta = floor(0.2 * d + 0.5)                  -- Math.round
  local size = d - delta
  if delta > 0 then size = size + uniform(2 * delta) end
  local slot = uniform(EXTRA_OFFSETS)
  local slices = extra_slices[size]
  if not slices then
    slices = {}
    extra_slices[size] = slices
  end
  local extra = slices[slot]
  if not extra then
    local offset = extra_offsets[slot]
    extra = sub(extra_chars, offset + 1, offset + size)
    slices[slot] = extra
  end
  return extra
end

-- PriceGenerator.nextPrice: cents, log-uniform from 100 to 10^8.
local function random_price()
  return (floor(10 ^ (uniform01() * 6) * 100 + 0.5))
end

-- A person among the most recent NUM_ACTIVE_PEOPLE, or up to
-- PERSON_ID_LEAD ids not made yet (base-0 ids).
local function random_person(last_person)
  local people = last_person + 1
  local active = min(people, NUM_ACTIVE_PEOPLE)
  return people - active + uniform(active + PERSON_ID_LEAD)
end

-- An auction among the latest NUM_IN_FLIGHT_AUCTIONS + 1, or up to
-- AUCTION_ID_LEAD ids not made yet (base-0 ids).
local function random_auction(last_auction)
  local lo = max(last_auction - NUM_IN_FLIGHT_AUCTIONS, 0)
  return lo + uniform(last_auction - lo + 1 + AUCTION_ID_LEAD)
end

-- -- Events -----------------------------------------------------------------

local function person(id, date_time)
  local name = names[uniform(#FIRST_NAMES) * #LAST_NAMES
    + uniform(#LAST_NAMES) + 1]
  local email = random_string(7) .. "@" .. random_string(5) .. ".com"
  local card = two_digits[uniform(100) + 1] .. two_digits[uniform(100) + 1]
    .. " " .. two_digits[uniform(100) + 1] .. two_digits[uniform(100) + 1]
    .. " " .. two_digits[uniform(100) + 1] .. two_digits[uniform(100) + 1]
    .. " " .. two_digits[uniform(100) + 1] .. two_digits[uniform(100) + 1]
  local city = US_CITIES[uniform(#US_CITIES) + 1]
  local st = US_STATES[uniform(#US_STATES) + 1]
  local extra = random_extra(8 + #name + #email + #card + #city + #st,
    AVG_PERSON_BYTES)
  return { type = "person", id = id + FIRST_PERSON_ID, name = name,
    email_address = email, credit_card = card, city = city, state = st,
    date_time = date_time, extra = extra }
end

local function auction(id, last_person, date_time, horizon_ms)
  local seller
  if uniform(HOT_SELLERS_RATIO) > 0 then
    seller = floor(last_person / HOT_RATIO) * HOT_RATIO
  else
    seller = random_person(last_person)
  end
  local category = FIRST_CATEGORY_ID + uniform(NUM_CATEGORIES)
  local initial_bid = random_price()
  local expires = date_time + 1 + uniform(max(2 * horizon_ms, 1))
  local item_name = random_string(20)
  local description = random_string(100)
  local reserve = initial_bid + random_price()
  local extra = random_extra(8 + #item_name + #description + 40,
    AVG_AUCTION_BYTES)
  return { type = "auction", id = id + FIRST_AUCTION_ID,
    item_name = item_name, description = description,
    initial_bid = initial_bid, reserve = reserve, date_time = date_time,
    expires = expires, seller = seller + FIRST_PERSON_ID,
    category = category, extra = extra }
end

local function bid(last_auction, last_person, date_time)
  local auction_id, bidder
  if uniform(HOT_AUCTION_RATIO) > 0 then
    auction_id = floor(last_auction / HOT_RATIO) * HOT_RATIO
  else
    auction_id = random_auction(last_auction)
  end
  if uniform(HOT_BIDDERS_RATIO) > 0 then
    -- + 1 so that hot bidders and hot sellers differ.
    bidder = floor(last_person / HOT_RATIO) * HOT_RATIO + 1
  else
    bidder = random_person(last_person)
  end
  local price = random_price()
  local channel, url
  if uniform(2) > 0 then
    local i = uniform(#HOT_CHANNELS) + 1
    channel, url = HOT_CHANNELS[i], hot_urls[i]
  else
    local j = uniform(CHANNELS_NUMBER) + 1
    channel, url = channels[j], channel_urls[j]
  end
  return { type = "bid", auction = auction_id + FIRST_AUCTION_ID,
    bidder = bidder + 2 * FIRST_PERSON_ID, price = price, channel = channel,
    url = url, date_time = date_time,
    extra = random_extra(32, AVG_BID_BYTES) }
end

-- -- Options and generators -------------------------------------------------

local function is_integer(v, lo, hi)
  return type(v) == "number" and v % 1 == 0 and v >= lo and v <= hi
end

local OPTION_CHECKS = {
  events = { function(v) return is_integer(v, 0, 2 ^ 53) end,
    "an integer >= 0 (0: unbounded)" },
  rate = { function(v) return type(v) == "number" and v > 0
      and v < math.huge end, "a number of events per second > 0" },
  seed = { function(v) return is_integer(v, 0, 2 ^ 53) end,
    "an integer in 0..2^53" },
  base_time = { function(v) return is_integer(v, -2 ^ 53, 2 ^ 53) end,
    "an integer number of ms" },
  instance = { function(v) return is_integer(v, 0, 2 ^ 31) end,
    "an integer >= 0" },
  instances = { function(v) return is_integer(v, 1, 2 ^ 31) end,
    "an integer >= 1" },
}

--- Checks generator options and fills in the defaults.
-- @param opts { events, rate, seed, base_time } (see M.defaults); with
--   with_instance, also instance (0-based, default 0) and instances
--   (default 1)
-- @return the options as a new table, or nil and "option: message" for an
--   unknown option or a bad value
function M.options(opts, with_instance)
  if opts ~= nil and type(opts) ~= "table" then
    return nil, "expected a table of options"
  end
  local o = { instance = with_instance and 0 or nil,
    instances = with_instance and 1 or nil }
  for k, v in pairs(M.defaults) do o[k] = v end
  for k, v in pairs(opts or {}) do
    local check = OPTION_CHECKS[k]
    if not check or (not with_instance and M.defaults[k] == nil) then
      return nil, string.format("unknown option '%s' (known: %s)",
        tostring(k), with_instance
        and "events, rate, seed, base_time, instance, instances"
        or "events, rate, seed, base_time")
    end
    if not check[1](v) then
      return nil, string.format("%s must be %s, got %s", k, check[2],
        tostring(v))
    end
    o[k] = v
  end
  if with_instance and o.instance >= o.instances then
    return nil, string.format("instance must be below instances (%d), "
      .. "got %d", o.instances, o.instance)
  end
  return o
end

local Generator = {}
Generator.__index = Generator

--- A generator instance: instance i (0-based) of `instances` parallel
-- ones, which split the events and the event ids between them (every
-- instance emits whole blocks of 50 ids when events is a multiple of
-- 50 * instances).
-- @param opts { events = total over all instances (default 0: unbounded),
--   rate = events per second of event time over all instances (default
--   10000), seed = integer (default 0), base_time = ms (default
--   1436918400000, 2015-07-15T00:00:00Z), instance = i (default 0),
--   instances = p (default 1) }
-- @return a generator: g:next() returns its next event or nil after the
--   last; g:event(k) returns its event k (0-based, any order); g.count is
--   the events next() returned (settable, to resume); g.size the events
--   of this instance. Raises "weir.nexmark.generator: ..." on bad options.
function M.generator(opts)
  local o, err = M.options(opts, true)
  if not o then error("weir.nexmark.generator: " .. err, 2) end
  load_pools()
  local events = o.events == 0 and UNBOUNDED_EVENTS or o.events
  local share = floor(events / o.instances)
  local size = o.instance == o.instances - 1
    and events - share * (o.instances - 1) or share
  local first_id = FIRST_EVENT_ID + o.instance * share
  local delay_us = 1e6 / o.rate * o.instances
  local base_time = o.base_time
  local seed_state = mix64(ffi.cast("uint64_t", o.seed) * GOLDEN_GAMMA)

  -- GeneratorConfig.timestampForEvent: ms of event number n.
  local function timestamp(n)
    local us = floor(n * delay_us)
    return base_time + (us - us % 1000) / 1000
  end

  -- Event k of this instance (0 <= k < size).
  local function generate(k)
    local n = FIRST_EVENT_NUMBER + k
    local e = first_id + n
    local date_time = timestamp(n)
    local epoch = floor(e / PROPORTION)
    local offset = e - epoch * PROPORTION
    state[0] = mix64(seed_state + e * GOLDEN_GAMMA)
    -- The newest person and auction ids (base 0) as of this event id.
    local last_person = epoch * PERSON_PROPORTION
      + min(offset, PERSON_PROPORTION - 1)
    if offset < PERSON_PROPORTION then
      return (person(last_person, date_time))
    elseif offset < PERSON_PROPORTION + AUCTION_PROPORTION then
      return (auction(epoch * AUCTION_PROPORTION + offset
        - PERSON_PROPORTION, last_person, date_time,
        timestamp(n + EVENTS_FOR_AUCTIONS) - date_time))
    end
    return bid(epoch * AUCTION_PROPORTION + AUCTION_PROPORTION - 1,
      last_person, date_time)
  end

  return setmetatable({ count = 0, size = size, instance = o.instance,
    instances = o.instances, first_event_id = first_id, options = o,
    generate = generate }, Generator)
end

--- The next event, or nil when the instance made all of its events.
function Generator:next()
  local k = self.count
  if k >= self.size then return nil end
  self.count = k + 1
  return (self.generate(k))
end

--- Event k (0-based) of this instance, regardless of g.count; raises if k
-- is not in 0 .. g.size - 1.
function Generator:event(k)
  if not is_integer(k, 0, self.size - 1) then
    error(string.format("weir.nexmark: no event %s in an instance of %d",
      tostring(k), self.size), 2)
  end
  return self.generate(k)
end

--- A record as one line: its type and its fields in the order of
-- M.fields, separated by tabs (for write_lines and print).
function M.format(record)
  local fields = M.fields[record.type]
  local t = { record.type }
  for i, name in ipairs(fields) do t[i + 1] = tostring(record[name]) end
  return table.concat(t, "\t")
end

return M
