/*
** Shared by the fuzz targets that run weir's Lua decoding: one LuaJIT
** state, JIT on as the weir executable runs it, with weir.core preloaded
** and lua/ of the source tree on the path.
*/
#ifndef WEIR_FUZZ_LUA_H
#define WEIR_FUZZ_LUA_H

#include <stddef.h>
#include <stdint.h>

/* Calls the Lua function that the chunk `code` returns with the input as
** a string, once per input; the state is made on the first call. The
** function must return normally on any input: an error it raises, or a
** crash, is a finding (abort). */
void wr_fuzz_lua_run(const char* code, const uint8_t* data, size_t size);

#endif
