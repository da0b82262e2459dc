local h = require "helpers"

describe("examples/wordcount.lua", function()
  it("counts the words of the corpus as a plain Lua loop does", function()
    local dir = h.tmpdir()
    local r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
      "examples/wordcount.lua", h.shakespeare, dir .. "/out" })
    assert.are.equal(0, r.status, r.stderr)
    local expected = {}
    for w, n in pairs(h.reference_wordcount(h.shakespeare)) do
      expected[#expected + 1] = w .. "\t" .. n
    end
    table.sort(expected)
    assert.same(expected, (h.committed_lines(dir .. "/out")))
    h.sh("rm -rf " .. h.quote(dir))
  end)
end)
