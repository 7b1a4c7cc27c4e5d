/* err.c: rc_strerror() and rc_err_set(), the two helpers behind rc.h's error convention. */
#include "rc.h"

#include <stdarg.h>
#include <stdio.h>

const char *rc_strerror(int code) {
  switch (code) {
#define RC_ERR_STR(name, val, text) \
  case (val):                       \
    return text;
    RC_ERRNO_MAP(RC_ERR_STR)
#undef RC_ERR_STR
    case 0:
      return "success";
    default:
      return "unknown error";
  }
}

int rc_err_setf(rc_err_t *e, int code, const char *fmt, ...) {
  if (e != NULL) {
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
  }
  return code;
}
