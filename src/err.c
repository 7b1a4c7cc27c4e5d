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

const char *rc_err_printable(char *buf, size_t cap, const char *s) {
  size_t n = 0;
  for (; s != NULL && *s && n + 1 < cap; s++, n++)
    buf[n] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
  if (cap > 0) buf[n] = 0;
  return buf;
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
