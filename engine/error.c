/*
** Messages and names of weir's error codes, in one place (see error.h).
*/
#include "error.h"

#include <uv.h>

const char* wr_strerror(int err) {
  switch (err) {
#define WR_ERR_MSG(name, msg) case WR_##name: return msg;
    WR_ERRNO_MAP(WR_ERR_MSG)
#undef WR_ERR_MSG
    default: return uv_strerror(err);
  }
}

const char* wr_err_name(int err) {
  switch (err) {
#define WR_ERR_NAME(name, msg) case WR_##name: return "WR_" #name;
    WR_ERRNO_MAP(WR_ERR_NAME)
#undef WR_ERR_NAME
    default: return uv_err_name(err);
  }
}
