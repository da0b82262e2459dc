-- What a line is, for read_lines: the bytes up to "\n", NUL bytes and
-- any other byte included, one trailing "\r" stripped unless keep_cr;
-- positions are exact byte offsets, so splits and restores give every
-- line exactly once.
local h = require "helpers"
local weir = require "weir"

-- Runs read_lines on path in-process and returns what it collected, in
-- order at parallelism 1.
local function read(path, opts, parallelism)
  local p = weir.pipeline { name = "lines", checkpoint_interval = 0,
                            parallelism = parallelism }
  local out = p:read_lines(path, opts):collect()
  p:run()
  return out
end

-- Raises unless the lists of strings want and got are equal, naming the
-- first difference (assert.same would print both lists whole).
local function assert_lines(want, got)
  for i = 1, math.max(#want, #got) do
    if want[i] ~= got[i] then
      error(string.format("%d lines expected, %d got; line %d: expected "
        .. "%q, got %q", #want, #got, i, tostring(want[i]),
        tostring(got[i])), 2)
    end
  end
end

local function sorted(t)
  table.sort(t)
  return t
end

-- n lines "line <i>", a NUL byte and more text in every tenth, "\r\n" at
-- the end of every seventh. Returns the file's content and its lines as
-- read_lines must emit them by default.
local function nul_lines(n)
  local content, lines = {}, {}
  for i = 1, n do
    local line = "line " .. i
    if i % 10 == 0 then line = line .. "\0pad\0" .. i end
    lines[i] = line
    content[i] = line .. (i % 7 == 0 and "\r\n" or "\n")
  end
  return table.concat(content), lines
end

describe("weir.sources", function()
  describe("splits()", function()
    local sources = require "weir.sources"

    it("hands interleaved splits of the input to the subtasks in turn",
      function()
        local total = 10 * 1024 * 1024
        local a, b = sources.splits(total, 0, 2), sources.splits(total, 1, 2)
        assert.are.equal(64, #a)
        assert.are.equal(64, #b)
        -- Split k goes to subtask k % 2: both read near the same place.
        local size = total / 128
        for k = 1, 64 do
          assert.same({ (2 * k - 2) * size, (2 * k - 1) * size }, a[k])
          if k < 64 then
            assert.same({ (2 * k - 1) * size, 2 * k * size }, b[k])
          end
        end
        assert.same({ 127 * size, math.huge }, b[64])
      end)

    it("reads the whole input at parallelism 1 and splits no finer than "
      .. "MIN_SPLIT_BYTES", function()
      assert.same({ { 0, math.huge } }, sources.splits(1e9, 0, 1))
      local parts = sources.splits(100000, 0, 2)
      assert.same({ { 0, 65536 } }, parts)
      assert.same({ { 65536, math.huge } }, sources.splits(100000, 1, 2))
      assert.same({}, sources.splits(0, 0, 2))
    end)
  end)

  describe(":read_lines()", function()
    local dir

    setup(function() dir = h.tmpdir() end)
    teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

    it("emits a line holding NUL bytes whole, as one record", function()
      local path = dir .. "/nul.txt"
      h.write_file(path, "rec 10\0pad\nrec 11\n\0\n\0")
      assert.same({ "rec 10\0pad", "rec 11", "\0", "\0" }, read(path))
    end)

    it("gives each line with NUL bytes exactly once at parallelism 1 and "
      .. "across a split into two subtasks", function()
        local path = dir .. "/nul-many.txt"
        local content, lines = nul_lines(40000)
        h.write_file(path, content)
        assert_lines(lines, read(path))
        assert_lines(sorted(lines), sorted(read(path, nil, 2)))
      end)

    it("reproduces random bytes: its records joined by \"\\n\" are the "
      .. "input, byte for byte (keep_cr)", function()
        local ffi = require "ffi"
        local n = 3 * 1024 * 1024
        local bytes = ffi.new("uint8_t[?]", n)
        math.randomseed(20261204)
        for i = 0, n - 1 do bytes[i] = math.random(0, 255) end
        bytes[n - 1] = 120  -- "x": the last line has no "\n"
        local content = ffi.string(bytes, n)
        local path = dir .. "/random.bin"
        h.write_file(path, content)
        local records = read(path, { keep_cr = true })
        assert.is_true(#records > 10000)
        assert.is_true(table.concat(records, "\n") == content,
          "the records joined differ from the input")
        -- Split into two subtasks, each line is still read once.
        local lines = {}
        for line in (content .. "\n"):gmatch("([^\n]*)\n") do
          lines[#lines + 1] = line
        end
        assert_lines(sorted(lines),
          sorted(read(path, { keep_cr = true }, 2)))
      end)

    it("strips one \"\\r\" at the end of a line by default and keeps it "
      .. "with keep_cr", function()
        local path = dir .. "/crlf.txt"
        h.write_file(path, "one\r\ntwo\r\r\n\r\nin\rside\nlast\r")
        assert.same({ "one", "two\r", "", "in\rside", "last" }, read(path))
        assert.same({ "one\r", "two\r\r", "\r", "in\rside", "last\r" },
          read(path, { keep_cr = true }))
        assert.same({ "one", "two\r", "", "in\rside", "last" },
          read(path, { keep_cr = false }))
      end)

    it("refuses a directory as input, naming the operator and the path",
      function()
        local p = weir.pipeline { name = "lines", checkpoint_interval = 0 }
        local line = debug.getinfo(1, "l").currentline + 1
        p:read_lines(dir):collect()
        assert.has_error(function() p:run() end, "read_lines "
          .. "(spec/lines_spec.lua:" .. line .. "): cannot open input: "
          .. dir .. " is a directory, not a file (for the files in it "
          .. "give a glob: " .. dir .. "/*)")
      end)

    it("refuses an unknown or mistyped option, naming it", function()
      local p = weir.pipeline {}
      assert.has_error(function()
        p:read_lines(dir .. "/nul.txt", { keepcr = true })
      end, "read_lines: unknown option 'keepcr' (known: follow, keep_cr)")
      assert.has_error(function()
        p:read_lines(dir .. "/nul.txt", { keep_cr = "yes" })
      end, "read_lines: option 'keep_cr' must be a boolean, got string")
      assert.has_error(function()
        p:read_lines(dir .. "/nul.txt", true)
      end, "read_lines: argument 2 must be a table of options, got boolean")
    end)

    it("restores a checkpoint taken mid-file in input with NUL bytes and "
      .. "\"\\r\\n\": each line exactly once after kill -9", function()
        local path = dir .. "/nul-restore.txt"
        local content, lines = nul_lines(100000)
        h.write_file(path, content)
        for _, parallelism in ipairs({ 1, 2 }) do
          local case = dir .. "/restore-p" .. parallelism
          local r = h.kill_after_checkpoints({ "run", "--parallelism",
            tostring(parallelism), "--restore", "latest",
            "--checkpoint-interval", "50", "--checkpoint-dir", case .. "/ck",
            "spec/fixtures/copy_lines.lua", path, case .. "/out", "10" },
            case .. "/ck/copy_lines", { 2, 3 })
          assert.are.equal(0, r.status, r.stderr)
          assert.matches("restored from .*/chk%-%d+", r.stderr)
          assert_lines(sorted(lines), (h.committed_lines(case .. "/out")))
        end
      end)
  end)
end)

describe("weir.line_reader", function()
  local line_reader = require "weir.line_reader"
  local path

  setup(function()
    path = os.tmpname()
    h.write_file(path, "a\0b\r\n\r\nlong " .. string.rep("x", 200000)
      .. "\nend")
  end)
  teardown(function() os.remove(path) end)

  it("returns each line with the bytes it consumed, the stripped \"\\r\" "
    .. "and the \"\\n\" included", function()
      local reader = assert(line_reader.open(path))
      assert.are.equal(200016, reader.size_bytes)
      local got = {}
      while true do
        local line, consumed = reader:next()
        if not line then break end
        got[#got + 1] = { #line, consumed }
      end
      assert.same({ { 3, 5 }, { 0, 2 }, { 200005, 200006 }, { 3, 3 } }, got)
      reader:seek(5)
      assert.same({ "", 2 }, { reader:next() })
      reader:close()
    end)

  it("raises on a read error, naming its context and the file", function()
    local reader = assert(line_reader.open(path, { context = "here" }))
    reader:close()
    assert.has_error(function() reader:next() end,
      "here: cannot read " .. path .. ": Bad file descriptor")
  end)
end)
