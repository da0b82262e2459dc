-- weir.csv: RFC 4180 records for line sources, on LPeg.
local h = require "helpers"
local csv = require "weir.csv"

describe("weir.csv", function()
  it("decodes quoted fields, doubled quotes and empty fields", function()
    assert.same({ "a", "b", "c" }, csv.decode("a,b,c"))
    assert.same({ "a,1", 'say "hi"', "", "x" },
      csv.decode('"a,1","say ""hi""",,x'))
    assert.same({ "" }, csv.decode(""))
    assert.same({ "", "" }, csv.decode(","))
    assert.same({ "a", "b;c" }, csv.decode('a;"b;c"', { separator = ";" }))
    assert.same({ "tab\there", "x" }, csv.decode("tab\there,x"))
  end)

  it("names where a record is malformed", function()
    assert.has_error(function() csv.decode('a"b,c') end,
      'weir.csv.decode: malformed CSV at byte 2 (near "\\"b,c"): a quote may '
      .. "only start a field, and a quoted field must end at a separator")
    assert.has_error(function() csv.decode('"ab"c,d') end,
      'weir.csv.decode: malformed CSV at byte 5 (near "c,d"): a quote may '
      .. "only start a field, and a quoted field must end at a separator")
    assert.has_error(function() csv.decode('x,"abc') end,
      "weir.csv.decode: unterminated quoted field (a quoted field cannot "
      .. 'hold a line break here): "x,\\"abc"')
    assert.has_error(function() csv.decode(3) end,
      "weir.csv.decode: expected a string, got number")
    assert.has_error(function() csv.decode("a", { separator = '"' }) end)
  end)

  it("encodes what decode gives back", function()
    local fields = { "a,b", 'q"', "line\nbreak", "plain", "" }
    assert.are.equal('"a,b","q""","line\nbreak",plain,',
      csv.encode(fields))
    assert.same({ "a,b", 'q"', "plain", "3" },
      csv.decode(csv.encode({ "a,b", 'q"', "plain", 3 })))
  end)

  it("gives records by column in a job, the header skipped", function()
    local weir = require "weir"
    local path = "spec/fixtures/anonreviews_slice.csv"
    -- Plainly: the file has no quotes, so splitting at "," is its CSV.
    local want = {}
    local first = true
    for line in io.lines(path) do
      if not first then
        local vendor, rating = line:match("^[^,]*,([^,]*),([^,]*),")
        local w = want[vendor] or { n = 0, sum = 0 }
        w.n, w.sum = w.n + 1, w.sum + tonumber(rating)
        want[vendor] = w
      end
      first = false
    end
    local expected = {}
    for vendor, w in pairs(want) do
      expected[#expected + 1] = vendor .. "\t" .. w.n .. "\t" .. w.sum
    end
    table.sort(expected)
    local p = weir.pipeline { name = "csv_ratings", checkpoint_interval = 0,
      parallelism = 2 }
    local decode = weir.csv.decoder { columns = { "reviewerId",
      "vendorId", "rating", "date" }, skip_header = true }
    local out = p:read_lines(path)
      :flat_map(function(line, emit)
        local r = decode(line)
        if r then emit(r) end
      end)
      :key_by(function(r) return r.vendorId end)
      :process(function(ctx, r)
        ctx.state.n = (ctx.state.n or 0) + 1
        ctx.state.sum = (ctx.state.sum or 0) + tonumber(r.rating)
      end, { finish = function(ctx)
        ctx:emit(ctx.key .. "\t" .. ctx.state.n .. "\t" .. ctx.state.sum)
      end })
      :collect()
    p:run()
    table.sort(out)
    assert.are.equal(#expected, #out)
    assert.same(expected, out)
  end)

  it("fails a job naming the operator and the record with too few fields",
    function()
      local weir = require "weir"
      local dir = h.tmpdir()
      h.write_file(dir .. "/in.csv", "a,b\n1,2\n3\n")
      local p = weir.pipeline { name = "bad_csv", checkpoint_interval = 0 }
      p:read_lines(dir .. "/in.csv")
        :filter(function(line) return line ~= "a,b" end)
        :map(weir.csv.decoder { columns = { "a", "b" } })
        :collect()
      local ok, err = pcall(p.run, p)
      h.sh("rm -rf " .. h.quote(dir))
      assert.is_false(ok)
      assert.matches("a record of 1 fields, for 2 columns %(a, b%)",
        tostring(err))
      assert.matches("map %(", tostring(err))
      assert.matches('"3"', tostring(err))
    end)
end)
