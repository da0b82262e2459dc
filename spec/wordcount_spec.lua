local h = require "helpers"

describe("examples/wordcount.lua", function()
  it("counts the words of the corpus as a plain Lua loop does", function()
    local dir = h.tmpdir()
    local r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
      "examples/wordcount.lua", h.shakespeare, dir .. "/out" })
    assert.are.equal(0, r.status, r.stderr)
    assert.same(h.wordcount_lines(h.shakespeare),
      (h.committed_lines(dir .. "/out")))
    h.sh("rm -rf " .. h.quote(dir))
  end)
end)
