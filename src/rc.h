/* rc.h: what every ripcord module shares — error codes, the error-detail struct, and a
 * few small helpers. Nothing here allocates or does I/O.
 *
 * Convention: functions return 0 on success or a negative RC_E* code on failure.
 * rc_strerror() maps a code to text from the single X-macro table below (libuv's
 * UV_ERRNO_MAP idea). Parsers that need more detail fill a caller-owned struct rc_err.
 */
#ifndef RC_H
#define RC_H

#include <stddef.h>
#include <stdint.h>

#define RC_ERRNO_MAP(X)                                                  \
  X(EINVAL, -1, "invalid argument")                                      \
  X(ENOMEM, -2, "out of memory")                                         \
  X(ELIMIT, -3, "limit exceeded")                                        \
  X(EPARSE, -4, "parse error")                                           \
  X(EIO, -5, "input/output error")                                       \
  X(EFULL, -6, "queue full")                                             \
  X(ENOTSUP, -7, "not supported")                                        \
  X(ENOENT, -8, "not found")

enum {
#define RC_ERR_ENUM(name, val, text) RC_##name = (val),
  RC_ERRNO_MAP(RC_ERR_ENUM)
#undef RC_ERR_ENUM
};

/* Returns a static string for an RC_E* code ("unknown error" for anything else). */
const char *rc_strerror(int code);

/* Error detail filled by parsers. line/col are 1-based; 0 means "not applicable". */
typedef struct rc_err {
  int code;
  int line, col;
  char msg[160];
} rc_err_t;

/* Sets e (if not NULL) and returns code, so callers can write `return rc_err_set(...)`.
 * A macro over rc_err_setf so that the value of the expression is visibly `code` where it is
 * written: static analysers (clang-analyzer, gcc -fanalyzer) then know that an error path
 * returns non-zero without looking into err.c. code is evaluated twice: pass a constant or a
 * variable, never an expression with side effects. */
int rc_err_setf(rc_err_t *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int rc_err_code_(int ignored, int code) {
  (void)ignored;
  return code;
}
#define rc_err_set(e, code, ...) rc_err_code_(rc_err_setf((e), (code), __VA_ARGS__), (code))

/* Copies s into buf (at most cap-1 bytes), control characters as '?': for echoing what a
 * client sent (a JSON key, a parameter) inside a one-line error. Returns buf. */
const char *rc_err_printable(char *buf, size_t cap, const char *s);

#define RC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RC_CONTAINER_OF(ptr, type, member) \
  ((type *)((char *)(ptr)-offsetof(type, member)))
#define RC_LIKELY(x) __builtin_expect(!!(x), 1)
#define RC_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
