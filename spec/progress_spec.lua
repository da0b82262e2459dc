-- How far a bounded file input is read: the bytes each read_lines subtask
-- reports in its metric samples (the --metrics file's JSON lines) and the
-- progress the status line makes of them, with an ETA.
local h = require "helpers"
local core = require "weir.core"
local json = require "weir.json"
local metrics = require "weir.metrics"

describe("weir.metrics", function()
  describe(".progress_text()", function()
    it("gives the percent, the MB read of the total and the ETA", function()
      assert.are.equal("input 41% (12.3 of 30.0 MB, ETA 14 s)",
        metrics.progress_text(12.3e6, 30e6, 1.3e6))
    end)

    it("leaves the ETA out without a rate and once all is read", function()
      assert.are.equal("input 0% (0.0 of 30.0 MB)",
        metrics.progress_text(0, 30e6, nil))
      assert.are.equal("input 50% (15.0 of 30.0 MB)",
        metrics.progress_text(15e6, 30e6, 0))
      assert.are.equal("input 100% (30.0 of 30.0 MB)",
        metrics.progress_text(30e6, 30e6, 1e6))
    end)

    it("rounds the percent down, so that 100% means all read", function()
      assert.are.equal("input 99% (30.0 of 30.0 MB, ETA 1 s)",
        metrics.progress_text(30e6 - 1, 30e6, 1e6))
    end)

    it("counts in GB from 10^9 bytes and long ETAs in minutes and hours",
      function()
        assert.are.equal("input 50% (1.5 of 3.0 GB, ETA 25 min 0 s)",
          metrics.progress_text(1.5e9, 3e9, 1e6))
        assert.are.equal("input 33% (1.0 of 3.0 GB, ETA 1 h 23 min)",
          metrics.progress_text(1e9, 3e9, 4e5))
      end)
  end)

  describe("Reporter:tick()", function()
    local now_ms, written
    local monotonic_ms, stderr = core.monotonic_ms, io.stderr
    before_each(function()
      now_ms, written = 0, {}
      core.monotonic_ms = function() return now_ms end
      -- The live status line, as it would go to a terminal.
      io.stderr = { write = function(_, ...)
        written[#written + 1] = table.concat({ ... })
      end }
    end)
    after_each(function()
      core.monotonic_ms, io.stderr = monotonic_ms, stderr
    end)

    local function sample(task, bytes_read, bytes_total)
      return { task = task, operator = "lines", subtask = task - 1,
        source = true, records_in = 0, records_out = 0,
        backpressured_ms = 0, bytes_read = bytes_read,
        bytes_total = bytes_total }
    end

    it("sums the sources' bytes and gives an ETA once there is a rate",
      function()
        local r = metrics.reporter("job", nil, "line")
        local sink = { task = 3, operator = "out", subtask = 0,
          source = false, records_in = 0, records_out = 0,
          backpressured_ms = 0 }
        r:update("host", { sample(1, 1e6, 10e6), sample(2, 2e6, 10e6),
          sink })
        r:tick(nil)
        assert.are.equal("\r\27[Kweir: job  0 records/s from sources  "
          .. "input 15% (3.0 of 20.0 MB)  backpressure 0%  no checkpoint "
          .. "yet", written[#written])
        now_ms = 2000
        r:update("host", { sample(1, 3e6, 10e6), sample(2, 5e6, 10e6),
          sink })
        r:tick(nil)
        -- 5 MB in 2 s: 12 MB left take 4.8 s.
        assert.are.equal("\r\27[Kweir: job  0 records/s from sources  "
          .. "input 40% (8.0 of 20.0 MB, ETA 5 s)  backpressure 0%  no "
          .. "checkpoint yet", written[#written])
      end)

    it("takes the rate over the last RATE_SAMPLES reports", function()
      local r = metrics.reporter("job", nil, "line")
      -- 1 MB a second, then 2 MB a second for RATE_SAMPLES seconds.
      local read = 0
      for k = 0, 2 * metrics.RATE_SAMPLES do
        now_ms = k * 1000
        read = read + (k <= metrics.RATE_SAMPLES and 1e6 or 2e6)
        r:update("host", { sample(1, read, 100e6) })
        r:tick(nil)
      end
      -- 69 MB left at 2 MB a second.
      assert.matches("input 31%% %(31%.0 of 100%.0 MB, ETA 35 s%)",
        written[#written])
    end)

    it("leaves the input out for sources without a bounded input",
      function()
        local r = metrics.reporter("job", nil, "line")
        r:update("host", { sample(1, nil, nil) })
        r:tick(nil)
        assert.are.equal("\r\27[Kweir: job  0 records/s from sources  "
          .. "backpressure 0%  no checkpoint yet", written[#written])
      end)
  end)
end)

describe("read_lines's progress()", function()
  local sources = require "weir.sources"
  local dir, input, size
  before_each(function()
    dir = h.tmpdir()
    input = dir .. "/input.txt"
    -- Several splits (MIN_SPLIT_BYTES each) for each of three subtasks.
    local text = h.read_file(h.shakespeare):sub(1, 400000)
    h.write_file(input, text)
    size = #text
  end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  local function subtasks(p, olds)
    local insts = {}
    for i = 0, p - 1 do
      local inst = sources.read_lines({ path = input, defined_at = "spec" },
        function() end, { subtask = i, parallelism = p })
      if olds then inst.restore(olds) end
      inst.open()
      insts[i + 1] = inst
    end
    return insts
  end
  -- The bytes the subtasks read and in all.
  local function progress(insts)
    local read, total = 0, 0
    for _, inst in ipairs(insts) do
      local r, t = inst.progress()
      read, total = read + r, total + t
    end
    return read, total
  end

  it("counts what the old subtasks had read as read after a restore at "
    .. "another parallelism", function()
      local old = subtasks(3)
      local olds = {}
      for i, inst in ipairs(old) do
        inst.produce(i * 1000)
        olds[i] = { subtask = i - 1, state = inst.snapshot(1, 0) }
      end
      local read, total = progress(old)
      assert.are.equal(size, total)
      assert.is_true(read > 0 and read < total)
      local new = subtasks(2, olds)
      assert.are.same({ read, size }, { progress(new) })
      for _, inst in ipairs(new) do
        repeat local ended = inst.produce(1000) until ended
      end
      assert.are.same({ size, size }, { progress(new) })
    end)
end)

describe("weir run --metrics on a bounded file input", function()
  it("writes each source subtask's bytes read and in all, read rising to "
    .. "the input's size", function()
      local dir = h.tmpdir()
      finally(function() h.sh("rm -rf " .. h.quote(dir)) end)
      -- About 14,000 lines at 500 µs each over two subtasks: 3.5 s, so
      -- that several samples fall while the input is read.
      local input = dir .. "/input.txt"
      local text = h.read_file(h.shakespeare):sub(1, 400000)
      h.write_file(input, text)
      local r = h.run_weir({ "run", "--parallelism", "2", "--metrics",
        dir .. "/metrics.json", "--checkpoint-dir", dir .. "/ck",
        "spec/fixtures/copy_lines.lua", input, dir .. "/out", "500" })
      assert.are.equal(0, r.status, r.stderr)
      local last, mid_way, reports = {}, 0, 0
      local read, total
      for line in io.lines(dir .. "/metrics.json") do
        local report = json.decode(line)
        -- Once both workers sent their samples.
        if #report.tasks == 2 then
          reports = reports + 1
          read, total = 0, 0
          for _, s in ipairs(report.tasks) do
            assert.is_true(s.source)
            assert.is_true(s.bytes_read <= s.bytes_total)
            assert.is_true(s.bytes_read >= (last[s.subtask] or 0),
              "bytes_read went down: " .. line)
            last[s.subtask] = s.bytes_read
            read, total = read + s.bytes_read, total + s.bytes_total
          end
          assert.are.equal(#text, total)
          if read > 0 and read < total then mid_way = mid_way + 1 end
        end
      end
      assert.is_true(mid_way >= 1, reports .. " reports, none mid-way")
      assert.are.equal(#text, read)
    end)
end)
