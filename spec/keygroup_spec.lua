local core = require "weir.core"
local key = require "weir.key"

describe("weir.key", function()
  describe("encode()", function()
    it("encodes integral floats as integers", function()
      assert.are.equal(key.encode(3), key.encode(3.0))
      assert.are.equal("i3", key.encode(3))
    end)

    it("keeps strings, numbers and booleans apart", function()
      assert.are_not.equal(key.encode("1"), key.encode(1))
      assert.are_not.equal(key.encode("true"), key.encode(true))
    end)

    it("encodes composite keys without ambiguity", function()
      assert.are_not.equal(key.encode({ "a:", "b" }), key.encode({ "a", ":b" }))
      assert.are.equal(key.encode({ "a", 1 }), key.encode({ "a", 1.0 }))
    end)

    it("rejects NaN, nil, functions and non-array tables", function()
      assert.same({ nil, "NaN" }, { key.encode(0 / 0) })
      assert.same({ nil, "a nil" }, { key.encode(nil) })
      assert.same({ nil, "a function" }, { key.encode(print) })
      assert.same({ nil, "a table that is not an array" },
        { key.encode({ 1, x = 2 }) })
    end)
  end)

  describe("key_group()", function()
    it("is stable: the same key group on every run and machine", function()
      -- murmur3_32 of the canonical bytes "s5:hello", modulo 128.
      assert.are.equal(core.hash("s5:hello") % 128, key.key_group("hello", 128))
      assert.are.equal(0x248bfa47, core.hash("hello"))
    end)

    it("stays below max_parallelism", function()
      for i = 1, 500 do
        local kg = key.key_group("k" .. i, 7)
        assert.is_true(kg >= 0 and kg < 7)
      end
    end)
  end)

  describe("string_key_group()", function()
    it("gives a string the key group of its encoding", function()
      local words = { "", "a", "hello", "naïve", "a\0b", ("x"):rep(300) }
      for n = 1, 64 do
        local bytes = {}
        for i = 1, n do bytes[i] = string.char((n * 31 + i * 7) % 256) end
        words[#words + 1] = table.concat(bytes)
      end
      for _, w in ipairs(words) do
        for _, maxp in ipairs({ 1, 100, 128, 32768 }) do
          assert.are.equal(key.key_group(w, maxp),
            tonumber(key.string_key_group(w, #w, maxp)))
        end
      end
    end)
  end)

  describe("core.key_group_range()", function()
    it("covers 0..max_parallelism-1 exactly once for every parallelism",
      function()
        for p = 1, 16 do
          local seen = {}
          for i = 0, p - 1 do
            local first, last = core.key_group_range(128, p, i)
            for kg = first, last do
              assert.is_nil(seen[kg])
              seen[kg] = i
              assert.are.equal(i, core.key_group_subtask(128, p, kg))
            end
          end
          for kg = 0, 127 do assert.is_not_nil(seen[kg]) end
        end
      end)
  end)
end)
