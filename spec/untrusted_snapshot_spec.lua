-- Snapshots from a directory anyone may have written: content with valid
-- checksums but crafted values, manifests with fields of the wrong type,
-- lz4 headers that lie about the content size, and files that are not
-- regular files. Each is refused with one line naming the file and exit 1;
-- nothing crashes, blocks or allocates what the bytes only claim.
local buffer = require "string.buffer"
local ffi = require "ffi"
local h = require "helpers"
local core = require "weir.core"
local checkpoint = require "weir.checkpoint_storage"
local weir = require "weir"

-- Memory a weir process may use in these specs (ulimit -v, KiB): far above
-- what a small job needs, far below what a crafted count asks for.
local LIMIT = "ulimit -v 4000000;"
-- Seconds a command may take before it is taken to block.
local BOUND = "timeout 60"

-- A table of four tables that claim 2^24 array slots each: 26 bytes that
-- string.buffer would turn into gigabytes, then fail on.
local BOMB = "\x0c\x05" .. string.rep("\x0a\xff\x00\x00\x00\x01", 4)

local function copy_of(chk, dir, name)
  local copy = dir .. "/" .. name
  h.sh("rm -rf " .. h.quote(copy))
  h.sh("cp -r " .. h.quote(chk) .. " " .. h.quote(copy))
  return copy
end

local function read_manifest(copy)
  local bytes = assert(core.snapshot_read(copy .. "/_manifest"))
  return buffer.decode(bytes)
end

local function write_manifest(copy, m)
  assert(core.snapshot_write(copy .. "/_manifest", buffer.encode(m)))
end

-- Replaces the content of state file name in copy with bytes and makes
-- the manifest vouch for them (size and checksum), as a writer of the
-- directory could.
local function vouch(copy, name, bytes)
  local size, checksum = assert(core.snapshot_write(copy .. "/" .. name,
    bytes))
  local m = read_manifest(copy)
  for _, f in ipairs(m.files) do
    if f.name == name then f.size_bytes, f.checksum = size, checksum end
  end
  write_manifest(copy, m)
end

-- The content of state file name with its key group kg replaced by bytes.
local function with_key_group(copy, name, bytes)
  local m = read_manifest(copy)
  local entry
  for _, f in ipairs(m.files) do if f.name == name then entry = f end end
  local file = assert(checkpoint.read_file(copy, entry, m.max_parallelism))
  local kgs = {}
  for kg in pairs(file.state.key_groups) do kgs[#kgs + 1] = kg end
  table.sort(kgs)
  file.state.key_groups[kgs[#kgs]] = bytes
  local parts = checkpoint.encode_file(file)
  return type(parts) == "table" and table.concat(parts) or parts
end

-- xxHash32 of a string shorter than 16 bytes (an lz4 frame descriptor).
local function xxh32_short(s)
  local u32 = function(v) return ffi.cast("uint32_t", v) end
  local function mul(a, b)
    return u32(ffi.cast("uint64_t", a) * ffi.cast("uint64_t", b))
  end
  local function rotl(v, r) return u32(bit.rol(tonumber(v), r)) end
  local P1, P2, P3, P4, P5 = 2654435761, 2246822519, 3266489917, 668265263,
    374761393
  local acc = u32(P5 + #s)
  local i = 1
  while i + 3 <= #s do
    local a, b, c, d = s:byte(i, i + 3)
    local w = a + b * 256 + c * 65536 + d * 16777216
    acc = mul(rotl(u32(acc + mul(w, P3)), 17), P4)
    i = i + 4
  end
  while i <= #s do
    acc = mul(rotl(u32(acc + mul(s:byte(i), P5)), 11), P1)
    i = i + 1
  end
  acc = u32(bit.bxor(tonumber(acc), bit.rshift(tonumber(acc), 15)))
  acc = mul(acc, P2)
  acc = u32(bit.bxor(tonumber(acc), bit.rshift(tonumber(acc), 13)))
  acc = mul(acc, P3)
  acc = u32(bit.bxor(tonumber(acc), bit.rshift(tonumber(acc), 16)))
  return tonumber(acc)
end

-- A snapshot file whose lz4 frame header claims 1 TB of content and that
-- holds none: a valid header checksum, an end mark, a content checksum.
local function terabyte_claim()
  local descriptor = "\x7c\x70" .. "\0\0\0\0\0\x01\0\0"
  local hc = bit.band(bit.rshift(xxh32_short(descriptor), 8), 0xff)
  return "WEIR\1\0\0\0" .. "\x04\x22\x4d\x18" .. descriptor
    .. string.char(hc) .. "\0\0\0\0" .. "\x05\x5d\xcc\x02"
end

local function one_line_naming(r, file)
  assert.are.equal(1, r.status, r.stderr)
  assert.is_truthy(r.stderr:find(file, 1, true), r.stderr)
  assert.is_falsy(r.stderr:find("internal error", 1, true), r.stderr)
  assert.is_falsy(r.stderr:find("traceback", 1, true), r.stderr)
  -- A restore says which checkpoint it restores (again after a worker's
  -- restart); the error is one line of its own, the last.
  local lines = {}
  for line in r.stderr:gmatch("[^\n]+") do
    if not line:find("^weir: restoring ") and not line:find("^weir: worker "
        .. "%d+ exited with status 1; restarting") then
      lines[#lines + 1] = line
    end
  end
  assert.are.equal(1, #lines, r.stderr)
end

describe("untrusted snapshots", function()
  local dir, chk

  setup(function()
    dir = h.tmpdir()
    local r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/ck",
      "examples/wordcount.lua", h.shakespeare, dir .. "/out" })
    assert(r.status == 0, r.stderr)
    local ids = h.complete_checkpoints(dir .. "/ck/wordcount")
    chk = dir .. "/ck/wordcount/chk-" .. ids[#ids]
  end)

  teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

  -- Restores into the output directory of the run that took chk, so that
  -- the sinks find their files whichever worker restores first: what fails
  -- is the damaged state file, never a sink.
  local function restore(copy)
    return h.run_weir({ "run", "--restore", copy, "examples/wordcount.lua",
      h.shakespeare, dir .. "/out" }, LIMIT .. BOUND)
  end

  describe("a key group that claims more than its bytes hold", function()
    local copy
    setup(function()
      copy = copy_of(chk, dir, "bomb")
      vouch(copy, "counts-0.snap", with_key_group(copy, "counts-0.snap",
        BOMB))
    end)

    it("is refused by weir inspect, naming the file", function()
      local r = h.run_weir({ "inspect", copy }, LIMIT .. BOUND)
      one_line_naming(r, copy .. "/counts-0.snap")
      assert.is_truthy(r.stderr:find("key group", 1, true), r.stderr)
    end)

    it("is refused by a restore, naming the file", function()
      one_line_naming(restore(copy), copy .. "/counts-0.snap")
    end)
  end)

  it("refuses a key group holding keys of another key group", function()
    local copy = copy_of(chk, dir, "foreign")
    local flat = { "no-such-word", { n = 1 }, n = 4 }
    local kg
    for g = 0, 127 do
      if require("weir.key").key_group("no-such-word", 128) ~= g then
        kg = g
        break
      end
    end
    local m = read_manifest(copy)
    local file = assert(checkpoint.read_file(copy, m.files[1],
      m.max_parallelism))
    assert.are.equal("counts-0.snap", m.files[1].name)
    file.state.key_groups = { [kg] = buffer.encode(flat) }
    vouch(copy, "counts-0.snap", table.concat(checkpoint.encode_file(file)))
    local r = h.run_weir({ "inspect", copy }, LIMIT .. BOUND)
    one_line_naming(r, copy .. "/counts-0.snap")
    one_line_naming(restore(copy), copy .. "/counts-0.snap")
  end)

  it("names the file for every change of a key group's bytes", function()
    local copy = copy_of(chk, dir, "mutants")
    local m = read_manifest(copy)
    local file = assert(checkpoint.read_file(copy, m.files[1],
      m.max_parallelism))
    local kg, bytes = next(file.state.key_groups)
    local name = copy .. "/counts-0.snap"
    -- Every byte of the key group set to values that make tags, counts
    -- and lengths lie; each mutant is checksummed as a writer would.
    for at = 1, math.min(#bytes, 40) do
      for _, v in ipairs({ 0x00, 0x08, 0x0b, 0x0e, 0x1f, 0xff }) do
        file.state.key_groups[kg] = bytes:sub(1, at - 1) .. string.char(v)
          .. bytes:sub(at + 1)
        vouch(copy, "counts-0.snap", table.concat(
          checkpoint.encode_file(file)))
        local ok, err = pcall(function()
          local snap, oerr = weir.snapshot.open(copy)
          if not snap then error(oerr, 0) end
          snap:each_key("counts", function() end)
        end)
        if not ok then
          assert.are.equal(name, tostring(err):sub(1, #name), err)
        end
      end
    end
  end)

  describe("a manifest whose fields have the wrong types", function()
    local cases = {
      { "final", function(m) m.final = 1 end, "field final is 1" },
      { "files", function(m) m.files = "all" end, "field files is" },
      { "id", function(m) m.id = 1.5 end, "field id is 1.5" },
      { "a file's subtask", function(m) m.files[1].subtask = "0" end,
        "files[1] is not" },
      { "a file's name", function(m) m.files[1].name = "../x" end,
        "files[1] has the name" },
      { "max_parallelism", function(m) m.max_parallelism = {} end,
        "field max_parallelism" },
    }
    for _, c in ipairs(cases) do
      it("is refused: " .. c[1], function()
        local copy = copy_of(chk, dir, "manifest")
        local m = read_manifest(copy)
        c[2](m)
        write_manifest(copy, m)
        local r = h.run_weir({ "inspect", copy }, BOUND)
        one_line_naming(r, copy .. "/_manifest")
        assert.is_truthy(r.stderr:find(c[3], 1, true), r.stderr)
        r = restore(copy)
        one_line_naming(r, copy .. "/_manifest")
        assert.is_truthy(r.stderr:find(c[3], 1, true), r.stderr)
      end)
    end
  end)

  it("refuses an lz4 header that claims 1 TB, as damaged", function()
    local copy = copy_of(chk, dir, "terabyte")
    h.write_file(copy .. "/counts-0.snap", terabyte_claim())
    local r = h.run_weir({ "inspect", copy }, LIMIT .. BOUND)
    one_line_naming(r, copy .. "/counts-0.snap")
    assert.is_truthy(r.stderr:find(copy .. "/counts-0.snap: snapshot is "
      .. "damaged", 1, true), r.stderr)
  end)

  describe("a FIFO in place of a file", function()
    it("as a state file is refused by inspect and restore", function()
      local copy = copy_of(chk, dir, "fifo-state")
      os.remove(copy .. "/counts-0.snap")
      h.sh("mkfifo " .. h.quote(copy .. "/counts-0.snap"))
      local r = h.run_weir({ "inspect", copy }, BOUND)
      one_line_naming(r, copy .. "/counts-0.snap: not a regular file")
      one_line_naming(restore(copy), copy .. "/counts-0.snap: not a "
        .. "regular file")
    end)

    it("as a manifest is refused, and --restore latest goes on", function()
      local copy = copy_of(chk, dir, "fifo-manifest")
      os.remove(copy .. "/_manifest")
      h.sh("mkfifo " .. h.quote(copy .. "/_manifest"))
      local r = h.run_weir({ "inspect", copy }, BOUND)
      one_line_naming(r, copy .. "/_manifest: not a regular file")
      one_line_naming(restore(copy), copy .. "/_manifest: not a regular "
        .. "file")
      local job_dir = dir .. "/latest/wordcount"
      h.sh("mkdir -p " .. h.quote(job_dir))
      h.sh("cp -r " .. h.quote(copy) .. " " .. h.quote(job_dir .. "/chk-9"))
      r = h.run_weir({ "run", "--checkpoint-dir", dir .. "/latest",
        "--restore", "latest", "examples/wordcount.lua", h.shakespeare,
        dir .. "/latest-out" }, BOUND)
      assert.are.equal(0, r.status, r.stderr)
      assert.is_truthy(r.stderr:find(job_dir .. "/chk-9/_manifest: not a "
        .. "regular file", 1, true), r.stderr)
    end)
  end)
end)
