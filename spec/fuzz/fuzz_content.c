/*
** Fuzz target: a state file's decoded content
** (weir.checkpoint_storage.decode_file and weir.state.decode_group), as a restore or `weir inspect` meets it
** once the checksums hold: every key group is decoded, several times, so
** the JIT (on, as in production) traces the loops around the decoding. It
** must end in a value or a message naming the file, never a crash or an
** allocation of what the bytes only claim.
*/
#include "fuzz_lua.h"

static const char target[] =
  "local checkpoint = require 'weir.checkpoint_storage'\n"
  "local state = require 'weir.state'\n"
  "local entry = { uid = 'counts', subtask = 0 }\n"
  "local name = 'chk-1/counts-0.snap'\n"
  "return function(bytes)\n"
  "  for _ = 1, 3 do\n"
  "    local v, err = checkpoint.decode_file(bytes, name, entry, 128)\n"
  "    if not v then\n"
  "      assert(err:sub(1, #name) == name, err)\n"
  "      return\n"
  "    end\n"
  "    for kg, b in pairs(v.state.key_groups or {}) do\n"
  "      local flat, gerr = state.decode_group(b, kg, 128)\n"
  "      if flat then\n"
  "        for i = 1, flat.n, 4 do assert(flat[i] ~= nil) end\n"
  "      else\n"
  "        assert(gerr:find('key group', 1, true), gerr)\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wr_fuzz_lua_run(target, data, size);
  return 0;
}
