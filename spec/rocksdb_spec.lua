-- The RocksDB binding (engine/lua_rocksdb.c): column families, writes,
-- ordered range scans and checkpoints, on a database in a temporary
-- directory. Skips where weir was built without librocksdb.
local h = require "helpers"
local core = require "weir.core"

describe("core.rocksdb_open", function()
  if not core.rocksdb_open then
    it("needs librocksdb-dev", function()
      pending("weir was built without librocksdb (scripts/setup installs "
        .. "librocksdb-dev)")
    end)
    return
  end

  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- Key group kg (2 bytes, big-endian) then the key's bytes.
  local function kgkey(kg, k)
    return string.char(math.floor(kg / 256), kg % 256) .. k
  end

  it("keeps values per column family, and reopens with every family",
    function()
    local db = assert(core.rocksdb_open(dir .. "/db"))
    local a = assert(db:column_family("counts"))
    local b = assert(db:column_family("windows"))
    assert.are_not.equal(a, b)
    assert.are.equal(a, db:column_family("counts"))
    assert.is_true(db:put(a, "k", "1"))
    assert.is_true(db:put(b, "k", "2"))
    assert.are.equal("1", db:get(a, "k"))
    assert.is_nil(db:get(a, "missing"))
    assert.is_true(db:delete(b, "k"))
    assert.is_nil(db:get(b, "k"))
    db:close()
    assert.has_error(function() db:get(a, "k") end,
      "rocksdb: the database is closed")
    db = assert(core.rocksdb_open(dir .. "/db"))
    local again = assert(db:column_family("counts"))
    assert.are.equal("1", db:get(again, "k"))
    db:close()
  end)

  it("writes a batch at once, puts and deletes, and scans one key group "
    .. "in byte order", function()
    local db = assert(core.rocksdb_open(dir .. "/db"))
    local cf = assert(db:column_family("state"))
    local ops = {}
    for _, kg in ipairs({ 3, 255, 256, 4 }) do
      for _, k in ipairs({ "b", "a", "\0z" }) do
        ops[#ops + 1], ops[#ops + 2], ops[#ops + 3] = cf, kgkey(kg, k),
          kg .. k
      end
    end
    ops[#ops + 1], ops[#ops + 2], ops[#ops + 3] = cf, kgkey(4, "a"), false
    assert.is_true(db:write(ops))
    local got = db:scan(cf, kgkey(255, ""), kgkey(256, ""))
    assert.same({ kgkey(255, "\0z"), "255\0z", kgkey(255, "a"), "255a",
      kgkey(255, "b"), "255b" }, got)
    assert.same({ kgkey(4, "\0z"), "4\0z", kgkey(4, "b"), "4b" },
      db:scan(cf, kgkey(4, ""), kgkey(5, "")))
    assert.are.equal(2, #db:scan(cf, kgkey(0, ""), nil, 1))
    assert.has_error(function() db:write({ cf, "k" }) end,
      "rocksdb: write expects triples")
    -- A range delete takes [from, to): 255's keys from "a" on and 256's
    -- before "a".
    assert.is_true(db:delete_range(cf, kgkey(255, "a"), kgkey(256, "a")))
    assert.same({ kgkey(255, "\0z"), "255\0z" },
      db:scan(cf, kgkey(255, ""), kgkey(256, "")))
    assert.same({ kgkey(256, "a"), "256a", kgkey(256, "b"), "256b" },
      db:scan(cf, kgkey(256, ""), kgkey(257, "")))
    db:close()
  end)

  it("takes a checkpoint that opens as the database was", function()
    local db = assert(core.rocksdb_open(dir .. "/db"))
    local cf = assert(db:column_family("state"))
    assert(db:put(cf, "k", "before"))
    assert.is_true(db:checkpoint(dir .. "/chk"))
    assert(db:put(cf, "k", "after"))
    local ok, err = db:checkpoint(dir .. "/chk")
    assert.is_nil(ok)
    assert.is_string(err)
    db:close()
    local copy = assert(core.rocksdb_open(dir .. "/chk"))
    assert.are.equal("before", copy:get(assert(copy:column_family("state")),
      "k"))
    copy:close()
    assert.is_true(core.rocksdb_destroy(dir .. "/chk"))
  end)

  it("refuses a database it cannot open, with RocksDB's message",
    function()
    h.write_file(dir .. "/file", "not a directory")
    local db, err = core.rocksdb_open(dir .. "/file/db")
    assert.is_nil(db)
    assert.is_string(err)
  end)
end)
