/*
** Fuzz target: a checkpoint's manifest
** (weir.checkpoint_storage.parse_manifest).
** The input is the manifest's content, as its snapshot file holds it
** after the checksums: it must be refused with a message naming the file
** or accepted, and then every field used has its type.
*/
#include "fuzz_lua.h"

static const char target[] =
  "local checkpoint = require 'weir.checkpoint_storage'\n"
  "return function(bytes)\n"
  "  local m, err = checkpoint.parse_manifest(bytes, 'chk-1/_manifest')\n"
  "  if not m then\n"
  "    assert(err:sub(1, 15) == 'chk-1/_manifest', err)\n"
  "    return\n"
  "  end\n"
  "  local size = 0\n"
  "  for _, f in ipairs(m.files) do size = size + f.size_bytes end\n"
  "  for _, op in ipairs(m.operators) do\n"
  "    assert(op.uid:len() + op.kind:len() + op.parallelism >= 1)\n"
  "  end\n"
  "  assert(m.final == true or m.final == false)\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wr_fuzz_lua_run(target, data, size);
  return 0;
}
