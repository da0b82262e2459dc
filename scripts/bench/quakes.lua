-- Writes a synthetic earthquake catalogue for scripts/bench-windows:
--   luajit scripts/bench/quakes.lua ROWS YEARS FILE
-- ROWS lines "time,latitude,longitude,depth_km,magnitude,network", time
-- "YYYY-MM-DD HH:MM:SS" UTC, in time order over YEARS years from
-- 2015-01-01. Shocks come in bursts (a main shock and its aftershocks, on
-- one network) between quiet gaps, and 15 networks report at skewed
-- rates, so that 1-hour session windows per network are of many sizes.
-- The same ROWS always give the same file (a fixed linear congruential
-- generator, not math.random).
local rows, years, path = tonumber(arg[1]), tonumber(arg[2]), arg[3]

local seed = 20150101
local function random()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
end
local function exponential(mean) return -mean * math.log(1 - random()) end

local NETWORKS = { "ci", "nc", "ak", "us", "hv", "uw", "nn", "uu", "pr",
  "mb", "nm", "se", "ok", "tx", "av" }
local function network()
  -- Network i reports about twice as often as network i + 2.
  local i = math.floor(-math.log(1 - random()) * 3) % #NETWORKS + 1
  return NETWORKS[i]
end

local START, SPAN = 1420070400, years * 365.25 * 86400   -- seconds
-- Half the rows are aftershocks at most 2 minutes apart on average; the
-- quiet gaps between bursts fill the rest of the span.
local burst_mean = math.min(120, SPAN / rows / 4)
local gap_mean = 2 * SPAN / rows - burst_mean

local out = assert(io.open(path, "w"))
local t, net, left = START, network(), 0
for _ = 1, rows do
  if left > 0 then
    t, left = t + exponential(burst_mean), left - 1
  else
    t, net, left = t + exponential(gap_mean), network(), math.floor(
      exponential(1.5))
  end
  out:write(string.format("%s,%.4f,%.4f,%.1f,%.2f,%s\n",
    os.date("!%Y-%m-%d %H:%M:%S", math.floor(t)), -60 + 120 * random(),
    -180 + 360 * random(), 70 * random(), 1 + 4 * random() ^ 3, net))
end
out:close()
