-- Replays the committed fuzz inputs (spec/fuzz/<target>/) through each
-- fuzz target, built without libFuzzer (build/weir_fuzz_<target>): the
-- regression seeds of every crash scripts/fuzz found stay fixed. No
-- search happens here, so the result depends on the inputs only.
local h = require "helpers"

describe("fuzz targets", function()
  for _, target in ipairs({ "frame", "snapshot", "manifest", "content" }) do
    it("survive every committed input: " .. target, function()
      local out, status = h.sh(string.format("%s %s 2>&1",
        h.quote(h.root .. "/build/weir_fuzz_" .. target),
        h.quote(h.root .. "/spec/fuzz/" .. target)))
      assert.are.equal(0, status, out)
      assert.is_truthy(out:find("^%d+ inputs replayed"), out)
    end)
  end
end)
