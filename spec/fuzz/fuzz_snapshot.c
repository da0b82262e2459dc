/*
** Fuzz target: the snapshot reader (engine/snapshot.c). The input is a
** snapshot file's bytes; decoding must end in 0 or an error, never read
** out of bounds or allocate what a header only claims.
*/
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  char* out;
  size_t len;
  uint32_t checksum;
  if (wr_snapshot_decode((const char*) data, size, &out, &len,
                         &checksum) == 0)
    free(out);
  return 0;
}
