-- weir.etcd against a real etcd (Debian's etcd-server), started on free
-- loopback ports: leases, keys, the create-if-absent of an election and a
-- leader's fenced put, and a lease's end deleting what it held.
local core = require "weir.core"
local etcd = require "weir.etcd"
local h = require "helpers"

local HAVE_ETCD = h.sh("command -v etcd"):find("%S") ~= nil

-- Runs f(args..., cb) and waits (bounded) for cb; returns what cb got.
local function await(f, ...)
  local out
  local n = select("#", ...)
  local args = { ... }
  args[n + 1] = function(...) out = { ... } end
  f(unpack(args, 1, n + 1))
  h.wait_until(function() return out end, 10000, "etcd to answer")
  return unpack(out)
end

describe("weir.etcd", function()
  if not HAVE_ETCD then
    it("talks to etcd", function()
      pending("etcd is not installed (Debian's etcd-server)")
    end)
    return
  end

  local dir, proc, client

  setup(function()
    dir = h.tmpdir()
    local url
    proc, url = h.start_etcd(dir)
    client = assert(etcd.new(url))
    h.wait_until(function()
      return (await(client.get, client, "ready?")) == nil
    end, 20000, "etcd to answer")
  end)

  teardown(function()
    if proc then os.execute("kill " .. proc .. "; sleep 0.2") end
    h.sh("rm -rf " .. h.quote(dir))
  end)

  it("parses etcd://HOST:PORT and names what is wrong", function()
    assert.same({ host = "10.0.0.1", port = 2379, address = "10.0.0.1:2379" },
      etcd.parse("etcd://10.0.0.1:2379"))
    local ok, err = etcd.new("http://10.0.0.1:2379")
    assert.is_nil(ok)
    assert.are.equal("--ha must be etcd://HOST:PORT, got "
      .. "'http://10.0.0.1:2379'", err)
  end)

  it("puts and gets a key, binary values included", function()
    local value = "a\0b\255c"
    assert.is_nil((await(client.put, client, "/weir/spec/k", value, nil)))
    local err, got, kv = await(client.get, client, "/weir/spec/k")
    assert.is_nil(err)
    assert.are.equal(value, got)
    assert.is_string(kv.create_revision)
    local _, missing = await(client.get, client, "/weir/spec/none")
    assert.is_nil(missing)
  end)

  it("elects one holder of a key, fences a deposed one, and frees the key "
    .. "when the holder's lease ends", function()
    local err, lease = await(client.grant, client, 2)
    assert.is_nil(err)
    assert.matches("^%d+$", lease)
    local _, won, revision = await(client.create, client, "/weir/spec/leader",
      "first", lease)
    assert.is_true(won)
    assert.is_number(revision)
    local _, other = await(client.grant, client, 30)
    local _, won2, holder = await(client.create, client, "/weir/spec/leader",
      "second", other)
    assert.is_false(won2)
    assert.are.equal("first", holder)
    -- The holder's fenced put goes through; the other's does not.
    local _, done = await(client.put_if, client, "/weir/spec/leader",
      "first", "/weir/spec/checkpoint", "chk-1")
    assert.is_true(done)
    local _, refused = await(client.put_if, client, "/weir/spec/leader",
      "second", "/weir/spec/checkpoint", "chk-2")
    assert.is_false(refused)
    assert.are.equal("chk-1", select(2, await(client.get, client,
      "/weir/spec/checkpoint")))
    local _, ttl = await(client.keepalive, client, lease)
    assert.is_true(ttl > 0)
    -- Without keepalives the lease ends and the key with it.
    h.wait_until(function()
      return select(2, await(client.get, client, "/weir/spec/leader")) == nil
    end, 15000, "the lease to end")
    local _, left = await(client.keepalive, client, lease)
    assert.is_true(left <= 0)
    local _, won3 = await(client.create, client, "/weir/spec/leader",
      "second", other)
    assert.is_true(won3)
  end)

  it("fails a request to an etcd that does not listen, naming it",
    function()
      local none = assert(etcd.new("etcd://127.0.0.1:" .. h.free_port()))
      local err = await(none.get, none, "k")
      assert.matches("^cannot reach etcd 127%.0%.0%.1:%d+: ", err)
    end)
end)
