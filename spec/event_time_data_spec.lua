local h = require "helpers"
local core = require "weir.core"

local TEMPERATURE_SLICE = h.root .. "/spec/fixtures/nab_temperature_slice.csv"
local TEMPERATURE_FULL = h.shared_data
  .. "/nab_machine_temperature_system_failure.csv"
local REVIEWS_SLICE = h.root .. "/spec/fixtures/anonreviews_slice.csv"
local REVIEWS_FULL = h.shared_data .. "/anonreviews.csv.bz2"

-- Runs examples/<script> on input with the extra arguments. Returns the
-- committed lines (sorted) of each directory in subdirs, relative to the
-- example's OUTDIR ("." for OUTDIR itself), and the number of late records
-- the summary line on stderr reports.
local function run_example(script, input, extra, subdirs)
  local dir = h.tmpdir()
  local args = { "run", "--checkpoint-dir", dir .. "/ck",
    "examples/" .. script, input, dir .. "/out" }
  for _, a in ipairs(extra) do args[#args + 1] = a end
  local r = h.run_weir(args)
  local out = {}
  for _, sub in ipairs(subdirs) do
    out[sub] = h.committed_lines(dir .. "/out/" .. sub)
  end
  h.sh("rm -rf " .. h.quote(dir))
  assert.are.equal(0, r.status, r.stderr)
  return out, tonumber(r.stderr:match("(%d+) late records")) or 0
end

-- Returns "<key>\t<average>\t<count>" for every key of the sums and
-- counts, sorted, in the format of the examples' output.
local function average_lines(sum, n)
  local lines = {}
  for k in pairs(n) do
    lines[#lines + 1] = string.format("%s\t%.3f\t%d", k, sum[k] / n[k], n[k])
  end
  table.sort(lines)
  return lines
end

-- The temperature example's output computed without weir and without
-- timestamp arithmetic. A row's window is its "YYYY-MM-DD HH:MM" text
-- with the minutes rounded down to a multiple of window_min (which
-- divides 60); such texts sort like the times they name. With drop_late
-- (no out-of-orderness allowed), a row is late exactly when a row of a
-- later window came before it: the watermark, one ms below the newest
-- timestamp, had then passed the end of the row's window, so the window
-- had fired. Returns the sorted average lines and the sorted late rows.
local function temperature_reference(csv, window_min, drop_late)
  local sum, n, late, newest = {}, {}, {}, ""
  for row in io.lines(csv) do
    local hour, minute, value =
      row:match("^(%d%d%d%d%-%d%d%-%d%d %d%d):(%d%d):%d%d,(.+)$")
    if hour then
      local window = string.format("%s:%02d", hour,
        tonumber(minute) - tonumber(minute) % window_min)
      if drop_late and window < newest then
        late[#late + 1] = row
      else
        sum[window] = (sum[window] or 0) + tonumber(value)
        n[window] = (n[window] or 0) + 1
      end
      if window > newest then newest = window end
    else
      assert.are.equal("timestamp,value", row)
    end
  end
  table.sort(late)
  return average_lines(sum, n), late
end

-- The runs the temperature specs check: the example's extra arguments
-- (MAX_OUT_OF_ORDERNESS_MS, WINDOW_MS) and the reference's settings.
local FIFTEEN_MINUTES_IN_ORDER =
  { args = { "0", "900000" }, window_min = 15, drop_late = true }
local HOURLY_IN_ORDER = { args = { "0" }, window_min = 60, drop_late = true }
local HOURLY_WAITING_AN_HOUR =
  { args = { "3600000" }, window_min = 60, drop_late = false }

-- Runs the temperature example on csv as run describes and computes its
-- reference; returns actual and expected, each { averages =, late =,
-- late_count = }.
local function temperature_case(csv, run)
  local out, late_count = run_example("temperature.lua", csv, run.args,
    { "averages", "late" })
  local averages, late = temperature_reference(csv, run.window_min,
    run.drop_late)
  return { averages = out.averages, late = out.late, late_count = late_count },
    { averages = averages, late = late, late_count = #late }
end

-- Returns the line of lines that starts with prefix, or nil.
local function line_starting(lines, prefix)
  for _, line in ipairs(lines) do
    if line:sub(1, #prefix) == prefix then return line end
  end
end

-- The average rating per vendor and month of a reviews file computed
-- without weir: the month is the first seven characters of the date.
-- Returns the sorted lines the example writes and the number of rows.
local function reviews_reference(csv)
  local sum, n, rows, header = {}, {}, 0, true
  for row in io.lines(csv) do
    -- The file has CRLF line ends; io.lines leaves the CR on each row.
    if header then
      assert.are.equal("reviewerId,vendorId,rating,date\r", row)
      header = false
    else
      local vendor, rating, date =
        row:match("^[^,]+,([^,]+),([^,]+),([^,]+)\r$")
      local k = vendor .. "\t" .. date:sub(1, 7)
      sum[k] = (sum[k] or 0) + tonumber(rating)
      n[k] = (n[k] or 0) + 1
      rows = rows + 1
    end
  end
  return average_lines(sum, n), rows
end

local function run_reviews(csv)
  local out, late_count = run_example("reviews.lua", csv, {}, { "." })
  return out["."], late_count
end

describe("examples/temperature.lua", function()
  describe("with 15-minute windows and no out-of-orderness", function()
    local actual, expected

    lazy_setup(function()
      actual, expected = temperature_case(TEMPERATURE_SLICE,
        FIFTEEN_MINUTES_IN_ORDER)
    end)

    it("writes the readings repeated after the clock stepped back to late/",
      function()
        -- After 02:55 the clock restarts at 02:00: the rows from 02:00 to
        -- 02:40 belong to the three windows that already fired.
        assert.are.equal(9, #expected.late)
        assert.are.equal("2014-01-07 02:00:00,94.13972336", expected.late[1])
        assert.same(expected.late, actual.late)
        assert.are.equal(9, actual.late_count)
      end)

    it("averages the readings that came in time", function()
      assert.same(expected.averages, actual.averages)
      -- Only the 02:45 window gets both of its repeated readings.
      assert.matches("^2014%-01%-07 02:45\t[%d.]+\t6$",
        line_starting(actual.averages, "2014-01-07 02:45"))
    end)
  end)

  describe("with hourly windows and no out-of-orderness", function()
    it("loses nothing: the 02:00 hour is still open when the clock steps "
      .. "back", function()
      local actual, expected = temperature_case(TEMPERATURE_SLICE,
        HOURLY_IN_ORDER)
      assert.same({}, expected.late)
      assert.same(expected, actual)
      assert.matches("^2014%-01%-07 02:00\t[%d.]+\t24$",
        line_starting(actual.averages, "2014-01-07 02:00"))
    end)
  end)

  describe("with an hour of out-of-orderness", function()
    it("averages every row of each hour", function()
      local actual, expected = temperature_case(TEMPERATURE_SLICE,
        HOURLY_WAITING_AN_HOUR)
      assert.are.equal(0, actual.late_count)
      assert.same({}, actual.late)
      assert.same(expected.averages, actual.averages)
    end)
  end)

  it("matches the references on the full 22,695-row file", function()
    if not core.stat(TEMPERATURE_FULL) then
      pending("needs " .. TEMPERATURE_FULL)
    end
    local late_counts = {}
    for i, run in ipairs({ FIFTEEN_MINUTES_IN_ORDER, HOURLY_IN_ORDER,
                           HOURLY_WAITING_AN_HOUR }) do
      local actual, expected = temperature_case(TEMPERATURE_FULL, run)
      assert.same(expected, actual)
      late_counts[i] = actual.late_count
    end
    -- The clock steps back only once in the whole file.
    assert.same({ 9, 0, 0 }, late_counts)
  end)
end)

describe("examples/reviews.lua", function()
  local actual, late_count

  lazy_setup(function()
    actual, late_count = run_reviews(REVIEWS_SLICE)
  end)

  it("averages each vendor's ratings per calendar month", function()
    local expected, rows = reviews_reference(REVIEWS_SLICE)
    assert.are.equal(20000, rows)
    assert.same(expected, actual)
  end)

  it("finds no review late", function()
    assert.are.equal(0, late_count)
  end)

  it("matches the reference on the full 578,805-row file, with no review "
    .. "late", function()
    if not core.stat(REVIEWS_FULL) then
      pending("needs " .. REVIEWS_FULL)
    end
    local dir = h.tmpdir()
    local csv = dir .. "/anonreviews.csv"
    local _, status = h.sh("bzip2 -dc " .. h.quote(REVIEWS_FULL) .. " >"
      .. h.quote(csv))
    local ok, err = pcall(function()
      assert.are.equal(0, status)
      local expected, rows = reviews_reference(csv)
      assert.are.equal(578805, rows)
      local full, full_late = run_reviews(csv)
      assert.are.equal(0, full_late)
      assert.same(expected, full)
    end)
    h.sh("rm -rf " .. h.quote(dir))
    if not ok then error(err, 0) end
  end)
end)
