-- JSON as weir writes it: weir.json, and the metrics file that uses it.
local h = require "helpers"
local json = require "weir.json"
local cjson = require "cjson"

describe("weir.json", function()
  describe(".decode()", function()
    it("gives tables for objects and arrays and drops nulls", function()
      assert.same({ a = 1, s = "x", t = { 1, 2 }, o = { b = true } },
        json.decode('{"a":1,"s":"x","t":[1,2],"o":{"b":true},"n":null}'))
      assert.is_nil(json.decode("null"))
      local holes = json.decode("[1,null,3]")
      assert.are.equal(1, holes[1])
      assert.is_nil(holes[2])
      assert.are.equal(3, holes[3])
    end)

    it("raises naming why text is not JSON", function()
      assert.has_error(function() json.decode('{"a": tru}') end,
        "weir.json.decode: invalid JSON (Expected value but found invalid "
        .. "token at character 7)")
      assert.has_error(function() json.decode(12) end,
        "weir.json.decode: expected a string, got a number")
    end)

    it("fails a job naming the operator and the record", function()
      local weir = require "weir"
      local dir = h.tmpdir()
      h.write_file(dir .. "/in.txt", '{"a":1}\n{"a": tru}\n')
      local p = weir.pipeline { name = "bad_json", checkpoint_interval = 0,
        restart = weir.none() }
      p:read_lines(dir .. "/in.txt"):map(weir.json.decode):collect()
      local line = debug.getinfo(1, "l").currentline - 1
      local ok, err = pcall(p.run, p)
      h.sh("rm -rf " .. h.quote(dir))
      assert.is_false(ok)
      assert.matches("map (spec/json_spec.lua:" .. line .. ") failed on "
        .. 'record "{\\"a\\": tru}": weir.json.decode: invalid JSON',
        err, 1, true)
    end)
  end)

  describe(".encode()", function()
    it("prints integral numbers up to 2^53 with every digit", function()
      assert.are.equal("[1436918400123,9007199254740992,-9007199254740992,"
        .. "0,0]", json.encode({ 1436918400123, 2 ^ 53, -2 ^ 53, 0, -0.0 }))
    end)

    it("prints other numbers with 14 significant digits", function()
      assert.are.equal("[1436918400123.5,0.33333333333333,1e+300,"
        .. "1.844674407371e+19]",
        json.encode({ 1436918400123.5, 1 / 3, 1e300, 2 ^ 64 }))
    end)

    it("prints NaN and the infinities as null", function()
      assert.are.equal("[null,null,null]",
        json.encode({ 0 / 0, math.huge, -math.huge }))
    end)

    it("escapes strings as JSON needs, leaving / alone", function()
      assert.are.equal('"a/b \\"q\\" \\\\/ \\n\\u0000 é"',
        json.encode('a/b "q" \\/ \n\0 é'))
      assert.are.equal('a/b "q" \\/ \n\0 é',
        cjson.decode(json.encode('a/b "q" \\/ \n\0 é')))
    end)

    it("prints a sequence as an array and an empty table as []", function()
      assert.are.equal('[[1,"two",true],[]]',
        json.encode({ { 1, "two", true }, {} }))
    end)

    it("prints a table with string keys as an object, keys sorted",
      function()
        assert.are.equal('{"a":{"x":1},"b":2,"c":[3]}',
          json.encode({ c = { 3 }, b = 2, a = { x = 1 } }))
      end)

    it("prints a map by numbers as a list of key and value, by key",
      function()
        -- Windows by start time, timers by time: neither is a sequence.
        assert.are.equal('[{"key":1436918400000,"value":{"n":1}},'
          .. '{"key":1436918460000,"value":{"n":2}}]',
          json.encode({ [1436918460000] = { n = 2 },
            [1436918400000] = { n = 1 } }))
      end)

    it("prints a sparse array as a list of key and value", function()
      assert.are.equal('[{"key":1,"value":"a"},{"key":3,"value":"c"}]',
        json.encode({ "a", nil, "c" }))
      assert.are.equal('[{"key":10,"value":true}]',
        json.encode({ [10] = true }))
    end)

    it("prints a table with boolean or table keys as a list of key and "
      .. "value", function()
        assert.are.equal('[{"key":false,"value":0},{"key":true,"value":1}]',
          json.encode({ [true] = 1, [false] = 0 }))
        assert.are.equal('[{"key":["a",1],"value":2},'
          .. '{"key":["b",0],"value":3}]',
          json.encode({ [{ "b", 0 }] = 3, [{ "a", 1 }] = 2 }))
      end)

    it("keeps every field of a mixed table: numbers, then strings",
      function()
        assert.are.equal('[{"key":1,"value":"x"},{"key":2,"value":"y"},'
          .. '{"key":"last","value":3}]',
          json.encode({ "x", "y", last = 3 }))
      end)

    it("writes what lua-cjson reads back", function()
      local v = { job = "j", tasks = { { at = 1436918400123.5, n = 7 } },
        by = { [5] = "five", [true] = { 1, 2 } } }
      assert.same({ job = "j", tasks = { { at = 1436918400123.5, n = 7 } },
        by = { { key = 5, value = "five" }, { key = true,
          value = { 1, 2 } } } }, cjson.decode(json.encode(v)))
    end)

    it("refuses a table that contains itself and a function", function()
      local t = { 1 }
      t[2] = t
      assert.has_error(function() json.encode(t) end,
        "json: a table contains itself")
      assert.has_error(function() json.encode({ f = print }) end,
        "json: cannot encode a function (JSON holds nil, booleans, "
        .. "numbers, strings and tables)")
    end)
  end)
end)

describe("weir.metrics", function()
  it("writes fractional figures with 14 significant digits", function()
    local dir = h.tmpdir()
    local metrics = require "weir.metrics"
    local r = metrics.reporter("j", dir .. "/metrics.json", false)
    r:close({ id = 3, duration_ms = 1436918400123.5, size_bytes = 2 ^ 53 })
    local line = h.read_file(dir .. "/metrics.json")
    h.sh("rm -rf " .. h.quote(dir))
    assert.matches('"last_checkpoint":{"duration_ms":1436918400123.5,"id":3,'
      .. '"size_bytes":9007199254740992}', line, 1, true)
  end)
end)
