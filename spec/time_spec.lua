local weir = require "weir"

describe("weir.time", function()
  describe(".parse_iso()", function()
    -- 2015-09-12T00:47:35Z is `date -u -d 2015-09-12T00:47:35Z +%s` =
    -- 1442018855 s after the epoch.
    local SECOND = 1442018855000

    it("parses RFC 3339 times with Z, offsets and fractions", function()
      local parse_iso = weir.time.parse_iso
      assert.are.equal(SECOND + 776, parse_iso("2015-09-12T00:47:35.776Z"))
      assert.are.equal(SECOND, parse_iso("2015-09-12T00:47:35Z"))
      assert.are.equal(SECOND, parse_iso("2015-09-12T02:47:35+02:00"))
      assert.are.equal(SECOND, parse_iso("2015-09-11T19:17:35-0530"))
      assert.are.equal(SECOND, parse_iso("2015-09-12T03:47:35+03"))
      assert.are.equal(SECOND + 500, parse_iso("2015-09-12t00:47:35.5z"))
      -- Digits past the ms are truncated.
      assert.are.equal(SECOND + 776,
        parse_iso("2015-09-12T00:47:35.776999+00:00"))
    end)

    it("still parses dates, and times without a zone as UTC", function()
      local parse_iso = weir.time.parse_iso
      assert.are.equal(SECOND, parse_iso("2015-09-12 00:47:35"))
      assert.are.equal(SECOND, parse_iso("2015-09-12T00:47:35"))
      assert.are.equal(SECOND - 35000, parse_iso("2015-09-12 00:47"))
      assert.are.equal(SECOND - (47 * 60 + 35) * 1000,
        parse_iso("2015-09-12"))
    end)

    it("returns nil for what is not such a time", function()
      local parse_iso = weir.time.parse_iso
      for _, s in ipairs({ "12/Sep/2015:00:47:35 +0000", "2015-09-12 ",
        "2015-09-12T00:47:35+2", "2015-09-12T00:47:35.Z",
        "2015-09-12T00:47:35 UTC", "2015-9-12" }) do
        assert.is_nil(parse_iso(s), s)
      end
    end)
  end)
end)
