-- The Nexmark generator (weir.nexmark) against the rules of the Nexmark
-- generator of nexmark/nexmark (the Flink flavor): the 1:3:46 interleave,
-- ids, hot keys, timestamps, auction expiry and sizes on 100,000 events;
-- determinism and the split into parallel instances; and p:nexmark{...}
-- as a source that restores exactly after kill -9 and at another
-- parallelism.
local h = require "helpers"
local weir = require "weir"
local nexmark = weir.nexmark

local EVENTS = 100000
local BASE_TIME = 1436918400000           -- 2015-07-15T00:00:00Z

-- Every event of a generator instance, in order; and the generator.
local function all_events(opts)
  local g = nexmark.generator(opts)
  local events = {}
  while true do
    local event = g:next()
    if not event then break end
    events[#events + 1] = event
  end
  return events, g
end

-- The event id of event k of an instance: first_event_id + n, the event
-- number n being k + 1 in nexmark/nexmark.
local function event_id(g, k) return g.first_event_id + k + 1 end

-- The newest person and auction ids (base 0) as of event id e, by the
-- generator's rules (1 person and 3 auctions per 50 ids).
local function last_ids(e)
  local epoch, offset = math.floor(e / 50), e % 50
  local last_auction
  if offset < 1 then
    last_auction = (epoch - 1) * 3 + 2
  elseif offset >= 4 then
    last_auction = epoch * 3 + 2
  else
    last_auction = epoch * 3 + offset - 1
  end
  return epoch, last_auction
end

-- The ids (base 0) a non-hot reference picks from: the newest 1,000
-- people or the newest 101 auctions, plus 10 ids not made yet.
local function people_window(last_person)
  local people = last_person + 1
  local lo = people - math.min(people, 1000)
  return lo, people + 9
end

local function auctions_window(last_auction)
  return math.max(last_auction - 100, 0), last_auction + 10
end

-- Raises unless count is within 5 standard deviations of its expected
-- value (a sum of independent draws with the given variance).
local function assert_near(count, expected, variance, what)
  local sigma = math.sqrt(variance)
  if math.abs(count - expected) > 5 * sigma then
    error(string.format("%s: %.1f, expected %.1f +- %.1f (5 sigma)", what,
      count, expected, 5 * sigma), 2)
  end
end

-- Java's Math.abs(Integer.reverse(j)): the 32 bits of j reversed, as a
-- signed int, whose absolute value is taken (-2^31 stays as it is).
local function reversed_abs(j)
  local r = 0
  for k = 0, 31 do
    if math.floor(j / 2 ^ k) % 2 == 1 then r = r + 2 ^ (31 - k) end
  end
  if r >= 2 ^ 31 then r = r - 2 ^ 32 end
  if r < 0 and r ~= -2 ^ 31 then r = -r end
  return r
end

-- A check inside loops over 100,000 events (luassert's are slower).
local function check(ok, what, ...)
  if not ok then error(string.format(what, ...), 2) end
end

-- Raises unless the lists of lines are equal, naming the first difference.
local function check_same(expected, got, what)
  check(#expected == #got, "%s: %d lines, expected %d", what, #got,
    #expected)
  for i = 1, #expected do
    check(expected[i] == got[i], "%s: line %d is\n%s\nexpected\n%s", what, i,
      tostring(got[i]), tostring(expected[i]))
  end
end

-- Whether two events have the same type and fields, but for those named
-- in `except`.
local function same_event(a, b, except)
  if a.type ~= b.type then return false end
  for _, name in ipairs(nexmark.fields[a.type]) do
    if a[name] ~= b[name] and not (except and except[name]) then
      return false
    end
  end
  return true
end

-- The fields that depend on the event number (not the event id), and
-- those a seed decides.
local TIMES = { date_time = true, expires = true }
local RANDOM_FIELDS = { name = true, email_address = true,
  credit_card = true, city = true, state = true, extra = true,
  item_name = true, description = true, initial_bid = true, reserve = true,
  expires = true, seller = true, category = true, auction = true,
  bidder = true, price = true, channel = true, url = true }

local function by_type(events)
  local t = { person = {}, auction = {}, bid = {} }
  for k, event in ipairs(events) do
    local list = t[event.type]
    list[#list + 1] = { k = k - 1, event = event }
  end
  return t
end

local function formatted(events, drop)
  local lines = {}
  for i, event in ipairs(events) do
    local copy = {}
    for name, v in pairs(event) do copy[name] = v end
    for _, name in ipairs(drop or {}) do copy[name] = "-" end
    lines[i] = nexmark.format(copy)
  end
  return lines
end

describe("weir.nexmark.generator", function()
  local events, g, typed

  setup(function()
    events, g = all_events { events = EVENTS, seed = 7 }
    typed = by_type(events)
  end)

  it("makes the number of events asked for", function()
    assert.are.equal(EVENTS, #events)
    assert.are.equal(EVENTS, g.count)
    assert.is_nil(g:next())
  end)

  it("interleaves 1 person, 3 auctions and 46 bids in each block of 50 "
    .. "event ids", function()
    local blocks = {}
    for k, event in ipairs(events) do
      local e = event_id(g, k - 1)
      local offset = e % 50
      local expected = offset == 0 and "person"
        or offset <= 3 and "auction" or "bid"
      check(event.type == expected, "event id %d is a %s", e, event.type)
      local epoch = math.floor(e / 50)
      blocks[epoch] = blocks[epoch] or { person = 0, auction = 0, bid = 0 }
      blocks[epoch][event.type] = blocks[epoch][event.type] + 1
    end
    -- Ids 2 .. 100,001: blocks 1 .. 1,999 are whole.
    for epoch = 1, 1999 do
      assert.same({ person = 1, auction = 3, bid = 46 }, blocks[epoch])
    end
    assert.are.equal(2000, #typed.person)
    assert.are.equal(6000, #typed.auction)
    assert.are.equal(92000, #typed.bid)
  end)

  it("numbers people and auctions from 1000 up, one id each, in order",
    function()
      -- Event id 50 is the first person (1001); ids 2 and 3 the first
      -- auctions (1001, 1002), as in nexmark/nexmark.
      for i, p in ipairs(typed.person) do
        check(p.event.id == 1000 + i
          and p.event.id == 1000 + last_ids(event_id(g, p.k)),
          "person %d has id %d", i, p.event.id)
      end
      for i, a in ipairs(typed.auction) do
        local _, last_auction = last_ids(event_id(g, a.k))
        check(a.event.id == 1000 + i and a.event.id == 1000 + last_auction,
          "auction %d has id %d", i, a.event.id)
      end
    end)

  it("refers only to people and auctions made or at most 10 ids ahead, "
    .. "bidders offset by 1000 as in nexmark/nexmark", function()
    for _, a in ipairs(typed.auction) do
      local lo, hi = people_window((last_ids(event_id(g, a.k))))
      check(a.event.seller - 1000 >= lo and a.event.seller - 1000 <= hi,
        "seller %d", a.event.seller)
    end
    for _, b in ipairs(typed.bid) do
      local last_person, last_auction = last_ids(event_id(g, b.k))
      local lo, hi = people_window(last_person)
      check(b.event.bidder - 2000 >= lo and b.event.bidder - 2000 <= hi,
        "bidder %d", b.event.bidder)
      lo, hi = auctions_window(last_auction)
      check(b.event.auction - 1000 >= lo and b.event.auction - 1000 <= hi,
        "auction %d", b.event.auction)
    end
  end)

  -- A reference is the hot id when the draw nextInt(ratio) > 0, with
  -- probability q = 1 - 1/ratio; otherwise it is uniform over a window of
  -- w ids (people_window, auctions_window) that always holds the hot id.
  -- So P(reference = hot id) = p = q + (1 - q) / w, and the count over n
  -- independent references has mean sum(p) and variance sum(p (1 - p)).
  -- The hot ids: seller floor(last_person / 100) * 100, bidder the same
  -- + 1, auction floor(last_auction / 100) * 100.
  local function hot_share(list, ratio, hot_of, window_of, field)
    local count, mean, variance = 0, 0, 0
    local q = 1 - 1 / ratio
    for _, x in ipairs(list) do
      local last_person, last_auction = last_ids(event_id(g, x.k))
      local hot, offset = hot_of(last_person, last_auction)
      local lo, hi = window_of(last_person, last_auction)
      local p = q + (1 - q) / (hi - lo + 1)
      mean, variance = mean + p, variance + p * (1 - p)
      if x.event[field] == hot + offset then count = count + 1 end
    end
    return count, mean, variance
  end

  it("has 3 in 4 auctions sold by the hot seller", function()
    local count, mean, variance = hot_share(typed.auction, 4,
      function(last_person) return math.floor(last_person / 100) * 100, 1000
      end, people_window, "seller")
    assert_near(count, mean, variance, "auctions by the hot seller")
  end)

  it("has 3 in 4 bids made by the hot bidder", function()
    local count, mean, variance = hot_share(typed.bid, 4,
      function(last_person)
        return math.floor(last_person / 100) * 100 + 1, 2000
      end, people_window, "bidder")
    assert_near(count, mean, variance, "bids by the hot bidder")
  end)

  it("has 1 in 2 bids on the hot auction", function()
    local count, mean, variance = hot_share(typed.bid, 2,
      function(_, last_auction)
        return math.floor(last_auction / 100) * 100, 1000
      end, function(_, last_auction) return auctions_window(last_auction)
      end, "auction")
    assert_near(count, mean, variance, "bids on the hot auction")
  end)

  it("stamps event number n at base_time + n * 1e6 / rate * instances us",
    function()
      for _, p in ipairs({ 1, 4 }) do
        local last = -math.huge
        local first_second = 0
        for i = 0, p - 1 do
          local list = all_events { events = EVENTS, rate = 10000,
            instance = i, instances = p }
          for k, event in ipairs(list) do
            local us = math.floor(k * 100 * p)   -- event number n = k
            check(event.date_time == BASE_TIME + math.floor(us / 1000),
              "event %d of instance %d at %d", k, i, event.date_time)
            check(k == 1 or event.date_time >= list[k - 1].date_time,
              "event %d of instance %d goes back in time", k, i)
            if event.date_time < BASE_TIME + 1000 then
              first_second = first_second + 1
            end
          end
          last = math.max(last, list[#list].date_time)
        end
        -- All instances together make the rate's events per second, and
        -- 100,000 events at 10,000/s span 10 s whatever the split.
        assert.is_true(math.abs(first_second - 10000) <= p, first_second)
        assert.are.equal(BASE_TIME + 10000, last)
      end
    end)

  it("closes auctions after 1 .. 2 * horizon ms, horizon being the time "
    .. "until 1,666 more events", function()
    -- expires - date_time = 1 + U(2 h): mean h + 0.5, variance
    -- ((2 h)^2 - 1) / 12.
    local sum, mean, variance = 0, 0, 0
    for _, a in ipairs(typed.auction) do
      local n = a.k + 1
      local function ts(m) return math.floor(m * 100 / 1000) end
      local horizon = ts(n + 1666) - ts(n)
      local length = a.event.expires - a.event.date_time
      check(length >= 1 and length <= math.max(2 * horizon, 1),
        "auction length %d", length)
      sum = sum + length
      mean = mean + horizon + 0.5
      variance = variance + ((2 * horizon) ^ 2 - 1) / 12
    end
    assert_near(sum, mean, variance, "total auction length")
  end)

  -- Sizes as the generator counts them: 8 bytes per number, 1 per
  -- character, timestamps not counted. extra brings an event of size c to
  -- the average a: d = a - c characters, delta = round(0.2 d), uniform in
  -- [d - delta, d + delta), so the size has mean a - 0.5 and variance
  -- ((2 delta)^2 - 1) / 12.
  local function sizes(list, average, size_of)
    local sum, variance = 0, 0
    for _, x in ipairs(list) do
      local size = size_of(x.event)
      local current = size - #x.event.extra
      local delta = math.floor(0.2 * (average - current) + 0.5)
      sum = sum + size
      variance = variance + ((2 * delta) ^ 2 - 1) / 12
    end
    assert_near(sum, #list * (average - 0.5), variance,
      "total size of " .. list[1].event.type .. "s")
    return sum / #list
  end

  it("pads events to average 200, 500 and 100 bytes", function()
    local person = sizes(typed.person, 200, function(p)
      return 8 + #p.name + #p.email_address + #p.credit_card + #p.city
        + #p.state + #p.extra
    end)
    local auction = sizes(typed.auction, 500, function(a)
      return 8 + #a.item_name + #a.description + 40 + #a.extra
    end)
    local bid = sizes(typed.bid, 100, function(b) return 32 + #b.extra end)
    -- And so within 1% of the averages (the 5 sigma bounds above are
    -- 1.8, 2.9 and 0.13 bytes of the mean sizes).
    assert.is_true(math.abs(person - 200) < 2, person)
    assert.is_true(math.abs(auction - 500) < 5, auction)
    assert.is_true(math.abs(bid - 100) < 1, bid)
  end)

  it("fills the fields as nexmark/nexmark does", function()
    local cities = { ["Phoenix"] = true, ["Los Angeles"] = true,
      ["San Francisco"] = true, ["Boise"] = true, ["Portland"] = true,
      ["Bend"] = true, ["Redmond"] = true, ["Seattle"] = true,
      ["Kent"] = true, ["Cheyenne"] = true }
    local states = { AZ = true, CA = true, ID = true, OR = true, WA = true,
      WY = true }
    for _, x in ipairs(typed.person) do
      local p = x.event
      check(p.name:match("^%u%l+ %u%l+$"), "name %s", p.name)
      check(p.email_address:match("^[a-z ]*@[a-z ]*%.com$"), "email %s",
        p.email_address)
      check(p.credit_card:match("^%d%d%d%d %d%d%d%d %d%d%d%d %d%d%d%d$"),
        "credit card %s", p.credit_card)
      check(cities[p.city] and states[p.state], "city %s, state %s", p.city,
        p.state)
    end
    for _, x in ipairs(typed.auction) do
      local a = x.event
      check(a.category >= 10 and a.category <= 14, "category %d",
        a.category)
      check(a.reserve > a.initial_bid, "reserve %d", a.reserve)
      check(#a.item_name <= 19 and #a.description <= 99, "item %s",
        a.item_name)
      check(not a.item_name:match("^ ") and not a.item_name:match(" $")
        and not a.description:match("^ ") and not a.description:match(" $"),
        "untrimmed item %s", a.item_name)
    end
    -- Prices are log-uniform over $1 .. $1M: a third below $100, a third
    -- from $100 to $10,000 (binomial sd 0.0016 of 92,000 bids).
    local low, mid, channels = 0, 0, {}
    for _, x in ipairs(typed.bid) do
      local b = x.event
      check(b.price >= 100 and b.price <= 100000000, "price %d", b.price)
      if b.price < 10000 then low = low + 1
      elseif b.price < 1000000 then mid = mid + 1 end
      check(b.url:match("^https://www%.nexmark%.com/[a-z_]+/[a-z_]+/[a-z_]+/"
        .. "item%.htm%?query=1"), "url %s", b.url)
      channels[b.channel] = (channels[b.channel] or 0) + 1
      check(b.channel:match("^channel%-%d+$")
        or b.url:match("%?query=1$"), "url %s of a hot channel", b.url)
    end
    assert.is_true(math.abs(low / #typed.bid - 1 / 3) < 0.008, low)
    assert.is_true(math.abs(mid / #typed.bid - 1 / 3) < 0.008, mid)
    -- Half the bids come through the 4 hot channels.
    local hot = 0
    for _, name in ipairs({ "Google", "Facebook", "Baidu", "Apple" }) do
      hot = hot + (channels[name] or 0)
      channels[name] = nil
    end
    assert_near(hot, #typed.bid / 2, #typed.bid / 4, "bids on hot channels")
    -- The others through channel-0 .. channel-9999, 9 in 10 of them with a
    -- URL carrying channel_id = Math.abs(Integer.reverse(j)).
    local distinct, with_id = 0, 0
    for _, x in ipairs(typed.bid) do
      local b = x.event
      local j = tonumber(b.channel:match("^channel%-(%d+)$"))
      if j and channels[b.channel] then
        channels[b.channel] = nil
        distinct = distinct + 1
        check(j < 10000, "channel %d", j)
        local id = b.url:match("&channel_id=(%-?%d+)$")
        if id then
          with_id = with_id + 1
          check(tonumber(id) == reversed_abs(j), "channel %d has id %s", j,
            id)
        end
      end
    end
    assert.is_true(distinct > 9800, distinct)
    assert_near(with_id, distinct * 0.9, distinct * 0.09,
      "channels with a channel_id")
  end)

  it("makes the same events for the same seed and others for another",
    function()
      local again = all_events { events = EVENTS, seed = 7 }
      local other = all_events { events = EVENTS, seed = 8 }
      local same_contents, same_structure = 0, 0
      for k, event in ipairs(events) do
        check(same_event(event, again[k]), "event %d differs", k - 1)
        if same_event(event, other[k]) then
          same_contents = same_contents + 1
        end
        if same_event(event, other[k], RANDOM_FIELDS) then
          same_structure = same_structure + 1
        end
      end
      assert.are.equal(EVENTS, same_structure)
      assert.are.equal(0, same_contents)
    end)

  it("makes event k alike from g:event(k) and when resumed at k",
    function()
      local r = nexmark.generator { events = EVENTS, seed = 7 }
      for _, k in ipairs({ 0, 1, 48, 49, 12345, EVENTS - 1 }) do
        assert.same(events[k + 1], r:event(k))
      end
      r.count = 54321
      for k = 54321, EVENTS - 1 do
        check(same_event(events[k + 1], r:next()), "event %d", k)
      end
      assert.is_nil(r:next())
    end)

  it("splits the events and ids between instances: together they make the "
    .. "events of one instance, on their own timelines", function()
    local sizes_seen, made = {}, 0
    for i = 0, 2 do
      local list, gi = all_events { events = EVENTS, seed = 7, instance = i,
        instances = 3 }
      sizes_seen[i + 1] = gi.size
      -- The event with event id e is event e - 2 of the single instance.
      for k, event in ipairs(list) do
        local single = events[event_id(gi, k - 1) - 1]
        check(same_event(event, single, TIMES), "event %d of instance %d",
          k - 1, i)
        made = made + 1
      end
    end
    assert.same({ 33333, 33333, 33334 }, sizes_seen)
    assert.are.equal(EVENTS, made)
  end)

  it("raises on bad options", function()
    assert.has_error(function() nexmark.generator { events = -1 } end,
      "weir.nexmark.generator: events must be an integer >= 0 "
      .. "(0: unbounded), got -1")
    assert.has_error(function() nexmark.generator { rate = 0 } end,
      "weir.nexmark.generator: rate must be a number of events per second "
      .. "> 0, got 0")
    assert.has_error(function()
      nexmark.generator { instance = 2, instances = 2 }
    end, "weir.nexmark.generator: instance must be below instances (2), "
      .. "got 2")
    assert.has_error(function() weir.pipeline {}:nexmark { event = 5 } end,
      "nexmark: unknown option 'event' (known: events, rate, seed, "
      .. "base_time)")
    assert.has_error(function()
      weir.pipeline {}:nexmark { instances = 2 }
    end, "nexmark: unknown option 'instances' (known: events, rate, seed, "
      .. "base_time)")
  end)
end)

describe("p:nexmark{...}", function()
  local SCRIPT = "spec/fixtures/nexmark_events.lua"
  local JOB = "nexmark_events"
  local N = 50000
  local PACE_US = "40"   -- per event: about 1 s per subtask at parallelism 2
  local dir, reference

  setup(function()
    dir = h.tmpdir()
    -- The events of generator instances 0 and 1 of 2, as the job writes
    -- them.
    reference = {}
    for i = 0, 1 do
      local list = all_events { events = N, rate = 20000, seed = 42,
        instance = i, instances = 2 }
      for _, event in ipairs(list) do
        reference[#reference + 1] = nexmark.format(event)
      end
    end
    table.sort(reference)
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function args(case, parallelism, pace, seed)
    return { "run", "--parallelism", tostring(parallelism), "--restore",
      "latest", "--checkpoint-interval", "50", "--checkpoint-dir",
      dir .. "/" .. case .. "/ck", SCRIPT, tostring(N),
      dir .. "/" .. case .. "/out", pace or "0", seed }
  end

  -- Runs the job at parallelism 2 until it completed `checkpoints`
  -- checkpoints, kills it with SIGKILL and waits for its workers to exit.
  local function kill_after(case, checkpoints)
    local proc = h.spawn_weir(args(case, 2, PACE_US))
    h.wait_until(function()
      return #h.complete_checkpoints(dir .. "/" .. case .. "/ck/" .. JOB)
        >= checkpoints
    end, 20000, checkpoints .. " checkpoints")
    local workers = h.workers_of(proc.pid)
    h.kill(proc, "KILL")
    assert.are.equal(137, h.wait_exit(proc).status,
      "the job ended before the kill")
    h.wait_until(function()
      for _, pid in ipairs(workers) do
        local status = h.read_file("/proc/" .. pid .. "/status")
        if status and not status:match("State:%s*Z") then return false end
      end
      return true
    end, 10000, "the workers to exit")
  end

  it("emits the generator's events at parallelism 2", function()
    local r = h.run_weir(args("plain", 2))
    assert.are.equal(0, r.status, r.stderr)
    check_same(reference, (h.committed_lines(dir .. "/plain/out")),
      "the output")
  end)

  it("emits the same events after kill -9 and --restore latest", function()
    kill_after("killed", 2)
    local r = h.run_weir(args("killed", 2))
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("restored from .*/chk%-%d+", r.stderr)
    check_same(reference, (h.committed_lines(dir .. "/killed/out")),
      "the output")
  end)

  it("emits the same events restored at parallelism 1 from parallelism 2",
    function()
      kill_after("rescaled", 3)
      h.sh("cp -r " .. h.quote(dir .. "/rescaled") .. " "
        .. h.quote(dir .. "/reseeded"))
      local r = h.run_weir(args("rescaled", 1))
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("restored from", r.stderr)
      check_same(reference, (h.committed_lines(dir .. "/rescaled/out")),
        "the output")
      -- A generator with other options cannot take the position over.
      r = h.run_weir(args("reseeded", 1, "0", "43"))
      assert.are.equal(1, r.status)
      assert.matches("the checkpoint's generator has seed = 42, the job's "
        .. "has 43", r.stderr)
    end)
end)
