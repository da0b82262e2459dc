-- Nexmark generator benchmark body (run by scripts/bench-nexmark-generator
-- through luajit with weir on the paths; with a third argument it runs that
-- one variant and prints "<seconds> <events>"): the generator alone
-- (weir.nexmark.generator, g:next()) and as a source in a pipeline
-- (p:nexmark{...} into a filter that drops every event, checkpoints off),
-- against a plain LuaJIT loop that creates tables of the same fields in the
-- same 1:3:46 mix, with constant strings of the average lengths, and no
-- random draws. Every variant keeps its last 256 records in a ring, so
-- that LuaJIT cannot leave out making a record nobody uses (allocation
-- sinking).
local weir = require "weir"
local core = require "weir.core"

local events, runs = tonumber(arg[1]), tonumber(arg[2])
local ring = {}

-- Strings of the lengths the generator's average, made once.
local EXTRA = { person = string.rep("x", 137), auction = string.rep("x", 392),
  bid = string.rep("x", 68) }
local URL = "https://www.nexmark.com/abc/defg/hij/item.htm?query=1"

local function plain()
  local made = 0
  for k = 0, events - 1 do
    local e = k + 2                    -- the generator's first event id
    local offset = e % 50
    local record
    if offset == 0 then
      record = { type = "person", id = k, name = "Sarah Jones",
        email_address = "abcde@fgh.com", credit_card = "0042 9921 0007 1234",
        city = "Portland", state = "OR", date_time = k, extra = EXTRA.person }
    elseif offset <= 3 then
      record = { type = "auction", id = k, item_name = "abcdefghij",
        description = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxy",
        initial_bid = k, reserve = k + 1, date_time = k, expires = k + 2,
        seller = k, category = 10, extra = EXTRA.auction }
    else
      record = { type = "bid", auction = k, bidder = k, price = k,
        channel = "Google", url = URL, date_time = k, extra = EXTRA.bid }
    end
    made = made + 1
    ring[made % 256] = record
  end
  return made
end

local function generator()
  local g = weir.nexmark.generator { events = events }
  local made = 0
  while true do
    local event = g:next()
    if not event then break end
    made = made + 1
    ring[made % 256] = event
  end
  return made
end

local function pipeline()
  local p = weir.pipeline { name = "bench_nexmark", checkpoint_interval = 0 }
  local made = 0
  p:nexmark { events = events }:filter(function(event)
    made = made + 1
    ring[made % 256] = event
    return false
  end)
  p:run()
  return made
end

local variants = { plain = plain, generator = generator, pipeline = pipeline }

local function median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)]
end

-- One variant in this process.
if arg[3] then
  local start = core.monotonic_ms()
  local made = variants[arg[3]]()
  print(string.format("%.6f %d", (core.monotonic_ms() - start) / 1000, made))
  os.exit(0)
end

-- Each run in a process of its own, the variants taking turns, RUNS times;
-- the medians decide, so that one disturbed run does not.
local function run_variant(name)
  local cmd = string.format("luajit %s %d %d %s", arg[0], events, runs, name)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local t, made = out:match("^([%d.]+) (%d+)")
  if not t or tonumber(made) ~= events then
    io.stderr:write("bench-nexmark-generator: ", name, " failed: ", out, "\n")
    os.exit(1)
  end
  return tonumber(t)
end

local order = { "plain", "generator", "pipeline" }
local times = { plain = {}, generator = {}, pipeline = {} }
for i = 1, runs do
  for _, name in ipairs(order) do times[name][i] = run_variant(name) end
end

local labels = {
  plain = "(a) plain LuaJIT loop, tables of the same fields",
  generator = "(b) weir.nexmark.generator, g:next()",
  pipeline = "(c) p:nexmark{...} into a filter, parallelism 1",
}
local base = median(times.plain)
print(string.format("%d events; median of %d runs each (fastest beside it)",
  events, runs))
print("| variant | median s | fastest s | events/s | x plain loop |")
print("| --- | ---: | ---: | ---: | ---: |")
for _, name in ipairs(order) do
  local m = median(times[name])
  local fastest = math.huge
  for _, t in ipairs(times[name]) do fastest = math.min(fastest, t) end
  print(string.format("| %s | %.2f | %.2f | %.2f M | %.2f |", labels[name],
    m, fastest, events / m / 1e6, base / m))
end
