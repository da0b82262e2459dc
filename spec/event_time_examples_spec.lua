-- The event-time examples on the Apache access log, each checked against
-- a reference computed without weir: awk takes the fields of each line,
-- plain Lua loops group them by time.
local h = require "helpers"
local core = require "weir.core"

local SLICE = h.root .. "/spec/fixtures/apache_logs_slice.log"
local FULL = h.shared_data .. "/apache_logs.log"
local LOGS = {
  { name = "the 1,000-line slice", path = SLICE },
  { name = "the full 10,000-line log", path = FULL },
}

local MINUTE = 60 * 1000

-- -- References -------------------------------------------------------------

-- Split on double quotes, a combined-format line has exactly seven fields
-- (any other line is malformed and left out): the first holds the client
-- IP and the time in brackets, the second the request, the third the
-- status. Prints "ip<TAB>time<TAB>status<TAB>path", the path without its
-- query string.
local FIELDS_AWK = [=[awk -F'"' '
  NF == 7 { split($1, before, " "); split($2, request, " ")
            split($3, after, " "); sub(/\?.*/, "", request[2])
            print before[1] "\t" substr(before[4], 2) " " \
              substr(before[5], 1, length(before[5]) - 1) "\t" \
              after[1] "\t" request[2] }' ]=]

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
  Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function is_leap(y)
  return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

-- Returns the ms since the epoch of a log time, "17/May/2015:10:05:03
-- +0000", counting the days one by one: weir.time computes them by a
-- formula, and a reference must not share the code it checks.
local function epoch_ms(time)
  local d, mon, y, hh, mm, ss, zone =
    time:match("^(%d+)/(%a+)/(%d+):(%d+):(%d+):(%d+) (%S+)$")
  assert(zone == "+0000", "expected a UTC time, got " .. time)
  y = tonumber(y)
  local days = tonumber(d) - 1
  for year = 1970, y - 1 do days = days + (is_leap(year) and 366 or 365) end
  for m = 1, MONTHS[mon] - 1 do
    days = days + MONTH_DAYS[m] + ((m == 2 and is_leap(y)) and 1 or 0)
  end
  return ((days * 24 + tonumber(hh)) * 60 + tonumber(mm)) * MINUTE
    + tonumber(ss) * 1000
end

local function utc_minute(ms)
  return os.date("!%Y-%m-%dT%H:%M", ms / 1000)
end
local function utc_second(ms)
  return os.date("!%Y-%m-%dT%H:%M:%S", ms / 1000)
end

local parsed = {}

-- Returns the well-formed requests of the log at path, { ip, ts, status,
-- path } each, in the order of the log (parsed once per path).
local function requests(path)
  if parsed[path] then return parsed[path] end
  local out, status = h.sh(FIELDS_AWK .. h.quote(path))
  assert.are.equal(0, status)
  local list = {}
  for ip, time, code, url in out:gmatch("([^\t]*)\t([^\t]*)\t([^\t]*)\t"
      .. "([^\n]*)\n") do
    list[#list + 1] = { ip = ip, ts = epoch_ms(time), status = code,
                        path = url }
  end
  parsed[path] = list
  return list
end

local function sorted(t)
  table.sort(t)
  return t
end

-- status_per_minute: "minute<TAB>status<TAB>count" lines, sorted.
local function status_reference(reqs)
  local counts = {}
  for _, r in ipairs(reqs) do
    local k = utc_minute(r.ts - r.ts % MINUTE) .. "\t" .. r.status
    counts[k] = (counts[k] or 0) + 1
  end
  local lines = {}
  for k, n in pairs(counts) do lines[#lines + 1] = k .. "\t" .. n end
  return sorted(lines)
end

-- sessions: sorts each IP's request times and cuts where two consecutive
-- ones are more than 30 minutes apart. Requests exactly 30 minutes apart
-- stay in one session, as weir.session documents: the windows [t, t + gap)
-- of two requests gap apart touch, and touching windows merge.
local function sessions_reference(reqs)
  local GAP = 30 * MINUTE
  local times = {}
  for _, r in ipairs(reqs) do
    times[r.ip] = times[r.ip] or {}
    table.insert(times[r.ip], r.ts)
  end
  local lines = {}
  for ip, ts in pairs(times) do
    table.sort(ts)
    local first = 1
    for i = 2, #ts + 1 do
      if i > #ts or ts[i] - ts[i - 1] > GAP then
        lines[#lines + 1] = string.format("%s\t%s\t%d\t%d", ip,
          utc_second(ts[first]), i - first,
          (ts[i - 1] - ts[first]) / 1000)
        first = i
      end
    end
  end
  return sorted(lines)
end

-- top_urls: for every minute from the first window that holds a request
-- to the last, counts the paths of the requests with start <= ts < start
-- + 5 min and ranks the five with most requests, equal counts by path.
local function top_urls_reference(reqs)
  local lo, hi = math.huge, -math.huge
  for _, r in ipairs(reqs) do
    lo, hi = math.min(lo, r.ts), math.max(hi, r.ts)
  end
  local lines = {}
  for start = lo - lo % MINUTE - 4 * MINUTE, hi, MINUTE do
    local counts, paths = {}, {}
    for _, r in ipairs(reqs) do
      if start <= r.ts and r.ts < start + 5 * MINUTE then
        if not counts[r.path] then paths[#paths + 1] = r.path end
        counts[r.path] = (counts[r.path] or 0) + 1
      end
    end
    table.sort(paths, function(a, b)
      if counts[a] ~= counts[b] then return counts[a] > counts[b] end
      return a < b
    end)
    for rank = 1, math.min(5, #paths) do
      lines[#lines + 1] = string.format("%s\t%s\t%d\t%s\t%d",
        utc_minute(start), utc_minute(start + 5 * MINUTE), rank,
        paths[rank], counts[paths[rank]])
    end
  end
  return sorted(lines)
end

-- -- Running the examples -----------------------------------------------------

local runs = {}

-- Runs examples/<name>.lua on log (once; later calls reuse the result) and
-- returns { lines = committed output, sorted; late = lines in OUTDIR/late;
-- stderr }. Marks the calling `it` pending if log does not exist.
local function run_example(name, log)
  if not core.stat(log) then pending("needs " .. log) end
  local id = name .. "\0" .. log
  if not runs[id] then
    local dir = h.tmpdir()
    local r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
      "examples/" .. name .. ".lua", log, dir .. "/out" })
    runs[id] = { status = r.status, stderr = r.stderr,
                 lines = h.committed_lines(dir .. "/out"),
                 late = h.committed_lines(dir .. "/out/late") }
    h.sh("rm -rf " .. h.quote(dir))
  end
  local run = runs[id]
  assert.are.equal(0, run.status, run.stderr)
  return run
end

-- Writes a made-up log, one combined-format line per { ip, time } with a
-- time of 17 May 2015 ("10:05:03"), into a temporary directory that the
-- calling `it` removes; returns the log's path.
local function made_up_log(list)
  local dir = h.tmpdir()
  finally(function() h.sh("rm -rf " .. h.quote(dir)) end)
  local lines = {}
  for i, r in ipairs(list) do
    lines[i] = r[1] .. " - - [17/May/2015:" .. r[2] .. " +0000] "
      .. '"GET / HTTP/1.1" 200 512 "-" "curl/7.38.0"\n'
  end
  h.write_file(dir .. "/access.log", table.concat(lines))
  return dir .. "/access.log"
end

-- -- The examples -------------------------------------------------------------

describe("examples/status_per_minute.lua", function()
  for _, log in ipairs(LOGS) do
    describe("on " .. log.name, function()
      it("counts requests per minute and status as a plain loop does",
        function()
          local run = run_example("status_per_minute", log.path)
          local want = status_reference(requests(log.path))
          assert.are_not.same({}, want)
          assert.same(want, run.lines)
        end)

      it("counts every well-formed line once and none as late", function()
        local run = run_example("status_per_minute", log.path)
        local total = 0
        for _, line in ipairs(run.lines) do
          total = total + tonumber(line:match("(%d+)$"))
        end
        assert.are.equal(#requests(log.path), total)
        assert.same({}, run.late)
        assert.is_nil(run.stderr:find("late record"))
      end)
    end)
  end

  -- The real log is in order by minute, so in minute windows none of its
  -- requests can be late; these made-up ones are out of order across
  -- minutes.
  describe("on requests out of order across minutes", function()
    it("counts a request up to a minute behind in its own minute",
      function()
        local log = made_up_log({ { "192.0.2.1", "10:06:30" },
          { "192.0.2.2", "10:05:40" } })
        local run = run_example("status_per_minute", log)
        assert.same({ "2015-05-17T10:05\t200\t1",
          "2015-05-17T10:06\t200\t1" }, run.lines)
        assert.same({}, run.late)
      end)

    it("writes a request that comes after its minute was counted to "
      .. "OUTDIR/late", function()
        -- 10:07:45 moves the watermark to 10:06:44.999, past the end of
        -- minute 10:05, before 10:05:50 comes.
        local log = made_up_log({ { "192.0.2.1", "10:06:30" },
          { "192.0.2.2", "10:07:45" }, { "192.0.2.3", "10:05:50" } })
        local run = run_example("status_per_minute", log)
        assert.same({ "2015-05-17T10:06\t200\t1",
          "2015-05-17T10:07\t200\t1" }, run.lines)
        assert.same({ "2015-05-17T10:05:50\t200" }, run.late)
        assert.truthy(run.stderr:find("1 late record"))
      end)
  end)
end)

describe("examples/status_per_minute.lua with follow", function()
  it("counts a log directory read as it grows and rotates, as a plain loop "
    .. "counts the whole log, once cancelled", function()
      local dir = h.tmpdir()
      finally(function() h.sh("rm -rf " .. h.quote(dir)) end)
      local lines = {}
      for line in io.lines(SLICE) do lines[#lines + 1] = line .. "\n" end
      local logs, ck = dir .. "/logs", dir .. "/ck"
      h.sh("mkdir " .. h.quote(logs))
      local function part(from, to)
        return table.concat(lines, "", from, to)
      end
      h.write_file(logs .. "/access.log", part(1, 400))
      local proc = h.spawn_weir({ "run", "--checkpoint-interval", "100",
        "--checkpoint-dir", ck, "examples/status_per_minute.lua",
        logs .. "/*.log", dir .. "/out", "follow" })
      h.wait_until(function()
        return #h.complete_checkpoints(ck .. "/status_per_minute") >= 1
      end, 20000, "a checkpoint of the running job")
      -- The log grows, is rotated, and a new one starts; then the job is
      -- cancelled at once: the cancel drains the files to their ends.
      local f = assert(io.open(logs .. "/access.log", "ab"))
      f:write(part(401, 700))
      f:close()
      os.rename(logs .. "/access.log", logs .. "/access.log.1")
      h.write_file(logs .. "/access.log", part(701, #lines))
      local r = h.run_weir({ "cancel", "status_per_minute",
        "--checkpoint-dir", ck })
      assert.are.equal(0, r.status, r.stderr)
      r = h.wait_exit(proc)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("draining", r.stderr)
      assert.same(status_reference(requests(SLICE)),
        h.committed_lines(dir .. "/out"))
    end)
end)

describe("examples/sessions.lua", function()
  for _, log in ipairs(LOGS) do
    describe("on " .. log.name, function()
      it("finds the sessions that sorting each IP's request times finds",
        function()
          local run = run_example("sessions", log.path)
          local want = sessions_reference(requests(log.path))
          assert.are_not.same({}, want)
          assert.same(want, run.lines)
        end)
    end)
  end

  -- In the real log every request falls in minute 5 of an hour, so no
  -- two of an IP's requests are 30 minutes apart and no session needs a
  -- merge; these made-up logs have both.
  describe("on made-up requests", function()
    it("keeps a request exactly 30 minutes after the last in the session",
      function()
        local log = made_up_log({ { "192.0.2.7", "10:05:03" },
          { "192.0.2.7", "10:35:03" }, { "192.0.2.7", "11:05:04" } })
        -- 10:35:03 continues the session of 10:05:03; 11:05:04 comes 30
        -- min 1 s after it and starts another.
        local want = { "192.0.2.7\t2015-05-17T10:05:03\t2\t1800",
          "192.0.2.7\t2015-05-17T11:05:04\t1\t0" }
        assert.same(want, sessions_reference(requests(log)))
        assert.same(want, run_example("sessions", log).lines)
      end)

    it("merges two sessions when a request between them comes after both",
      function()
        -- 10:05:00 and 10:35:30 are more than 30 minutes apart; 10:35:00,
        -- half a minute behind the latter and 30 minutes after the former,
        -- joins them.
        local log = made_up_log({ { "192.0.2.8", "10:05:00" },
          { "192.0.2.8", "10:35:30" }, { "192.0.2.8", "10:35:00" } })
        local want = { "192.0.2.8\t2015-05-17T10:05:00\t3\t1830" }
        assert.same(want, sessions_reference(requests(log)))
        assert.same(want, run_example("sessions", log).lines)
      end)
  end)
end)

describe("examples/top_urls.lua", function()
  for _, log in ipairs(LOGS) do
    describe("on " .. log.name, function()
      it("ranks the top five paths per window as a plain loop does",
        function()
          local run = run_example("top_urls", log.path)
          local want = top_urls_reference(requests(log.path))
          assert.are_not.same({}, want)
          assert.same(want, run.lines)
        end)
    end)
  end
end)
