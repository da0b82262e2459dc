local h = require "helpers"
local core = require "weir.core"

local SLICE = h.root .. "/spec/fixtures/apache_logs_slice.log"
local FULL = h.shared_data .. "/apache_logs.log"

-- The expected counts, computed by awk rather than by a Lua pattern like
-- the example's: split on double quotes, a combined-format line has
-- exactly seven fields, the client IP being the first word of the first
-- and the status the first word of the third. Any other line is malformed.
local REFERENCE_AWK = [=[awk -F'"' '
  NF == 7 { split($1, before, " "); split($3, after, " ")
            n["status\t" after[1]]++; n["ip\t" before[1]]++; next }
          { n["malformed"]++ }
  END     { for (k in n) print k "\t" n[k] }' ]=]

-- The whole format as a POSIX regular expression, a third way of telling
-- which lines parse.
local COMBINED_ERE = '^[^ ]+ [^ ]+ [^ ]+ \\[[^]]+\\] "[^"]*" [0-9]{3} '
  .. '[^ ]+ "[^"]*" "[^"]*"$'

-- Returns the lines of text, sorted.
local function sorted_lines(text)
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  table.sort(lines)
  return lines
end

-- Returns the reference counts of log as sorted output lines.
local function reference(log)
  local out, status = h.sh(REFERENCE_AWK .. h.quote(log))
  assert.are.equal(0, status)
  return sorted_lines(out)
end

-- Runs the example on log; returns its committed output lines, sorted.
local function run_example(log)
  local dir = h.tmpdir()
  local r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
    "examples/access_log.lua", log, dir .. "/out" })
  local lines = h.committed_lines(dir .. "/out")
  h.sh("rm -rf " .. h.quote(dir))
  assert.are.equal(0, r.status, r.stderr)
  return lines
end

-- Returns the lines that start with prefix, in their order.
local function starting_with(lines, prefix)
  local out = {}
  for _, line in ipairs(lines) do
    if line:sub(1, #prefix) == prefix then out[#out + 1] = line end
  end
  return out
end

describe("examples/access_log.lua", function()
  local actual, expected

  -- One run of the example serves every check on the fixture.
  lazy_setup(function()
    actual = run_example(SLICE)
    expected = reference(SLICE)
  end)

  it("counts requests per status code as awk does", function()
    local want = starting_with(expected, "status\t")
    assert.are_not.same({}, want)
    assert.same(want, starting_with(actual, "status\t"))
  end)

  it("counts requests per client IP as awk does", function()
    local want = starting_with(expected, "ip\t")
    assert.are_not.same({}, want)
    assert.same(want, starting_with(actual, "ip\t"))
  end)

  it("counts the one truncated line as malformed", function()
    local out = h.sh("grep -nvE " .. h.quote(COMBINED_ERE) .. " "
      .. h.quote(SLICE))
    local bad = sorted_lines(out)
    -- Line 399 of the slice is line 8,899 of the dataset, whose user agent
    -- lost its closing ')"'.
    assert.are.equal(1, #bad)
    assert.truthy(bad[1]:match("^399:.*bot%.html$"))
    assert.same({ "malformed\t1" }, starting_with(actual, "malformed"))
  end)

  it("matches awk on the full 10,000-line log", function()
    if not core.stat(FULL) then
      pending("needs " .. FULL)
    end
    local want = reference(FULL)
    assert.are.equal(1, #starting_with(want, "malformed"))
    assert.same(want, run_example(FULL))
  end)
end)
