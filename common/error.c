/* Error codes and their messages (the FNP_ERRNO_MAP table). */
#include <fnprof/common.h>

#include <stdio.h>
#include <string.h>

const char *fnp_strerror(int code) {
  switch (code) {
#define FNP_ERR_CASE(name, value, text)                                        \
  case FNP_##name:                                                             \
    return text;
    FNP_ERRNO_MAP(FNP_ERR_CASE)
#undef FNP_ERR_CASE
  case 0:
    return "success";
  default:
    break;
  }
  if (code < 0 && code > -4096)
    return strerror(-code);
  return "unknown error";
}

int fnp_fail(fnp_error *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}
