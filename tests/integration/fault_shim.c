/* fault_shim.c: an LD_PRELOAD library for test_faults.py that makes the data directory fail
 * the way a full disk or a read-only mount does, on demand, without root, mounts or a small
 * filesystem (CI's machine may allow none of them).
 *
 *   RIPCORD_FAULT_DIR   files whose path starts with it are affected (the --storage.path)
 *   RIPCORD_FAULT_FLAG  a file: while it exists, its first word picks the fault:
 *                         ENOSPC  every write, pwrite and ftruncate to such a file fails
 *                                 with ENOSPC (a full disk);
 *                         EROFS   those fail with EROFS, and so does opening such a file
 *                                 for writing (a read-only mount).
 *
 * The daemon's own code is untouched: SQLite meets the errors in its unix VFS and reports
 * SQLITE_FULL / SQLITE_IOERR / read-only, exactly as it would on a real full disk. Test-only:
 * built as a shared module and never linked into ripcord. */
/* Plain names: with _FILE_OFFSET_BITS=64 (meson's default) the headers rename open to open64
 * and the shim could not define both. */
#undef _FILE_OFFSET_BITS
/* And no fortified inline wrappers of open() to collide with ours. */
#undef _FORTIFY_SOURCE
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*ftruncate_fn)(int, off_t);

static void *next(const char *name) { return dlsym(RTLD_NEXT, name); }

/* Which fault is on now: 0, ENOSPC or EROFS. Read from the flag file at every call (tests
 * switch it while the daemon runs), through the real open so as not to recurse. */
static int fault_now(void) {
  const char *flag = getenv("RIPCORD_FAULT_FLAG");
  if (flag == NULL) return 0;
  static open_fn real_open;
  if (real_open == NULL) real_open = (open_fn)next("open");
  int fd = real_open(flag, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char word[16] = "";
  ssize_t n = read(fd, word, sizeof(word) - 1);
  close(fd);
  if (n > 0) word[n] = 0;
  if (strncmp(word, "EROFS", 5) == 0) return EROFS;
  if (strncmp(word, "ENOSPC", 6) == 0) return ENOSPC;
  return 0;
}

static int path_affected(const char *path) {
  const char *dir = getenv("RIPCORD_FAULT_DIR");
  return dir != NULL && *dir && path != NULL && strncmp(path, dir, strlen(dir)) == 0;
}

static int fd_affected(int fd) {
  char link[64], path[4096];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  return path_affected(path);
}

/* The fault for a write to fd, or 0. */
static int write_fault(int fd) {
  int f = fault_now();
  return f != 0 && fd_affected(fd) ? f : 0;
}

ssize_t write(int fd, const void *buf, size_t n) {
  static write_fn real;
  if (real == NULL) real = (write_fn)next("write");
  int f = write_fault(fd);
  if (f) return errno = f, -1;
  return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  static pwrite_fn real;
  if (real == NULL) real = (pwrite_fn)next("pwrite");
  int f = write_fault(fd);
  if (f) return errno = f, -1;
  return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  static pwrite_fn real;
  if (real == NULL) real = (pwrite_fn)next("pwrite64");
  int f = write_fault(fd);
  if (f) return errno = f, -1;
  return real(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  static writev_fn real;
  if (real == NULL) real = (writev_fn)next("writev");
  int f = write_fault(fd);
  if (f) return errno = f, -1;
  return real(fd, iov, cnt);
}

int ftruncate(int fd, off_t len) {
  static ftruncate_fn real;
  if (real == NULL) real = (ftruncate_fn)next("ftruncate");
  int f = write_fault(fd);
  if (f) return errno = f, -1;
  return real(fd, len);
}

int ftruncate64(int fd, off_t len) {
  static ftruncate_fn real;
  if (real == NULL) real = (ftruncate_fn)next("ftruncate64");
  int f = write_fault(fd);
  if (f) return errno = f, -1;
  return real(fd, len);
}

/* A read-only mount refuses to open for writing. */
static int open_fault(const char *path, int flags) {
  if ((flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) == 0) return 0;
  return path_affected(path) && fault_now() == EROFS ? EROFS : 0;
}

#define OPEN_LIKE(name)                                            \
  int name(const char *path, int flags, ...) {                     \
    static open_fn real;                                           \
    if (real == NULL) real = (open_fn)next(#name);                 \
    mode_t mode = 0;                                               \
    if (flags & (O_CREAT | O_TMPFILE)) {                           \
      va_list ap;                                                  \
      va_start(ap, flags);                                         \
      mode = (mode_t)va_arg(ap, int);                              \
      va_end(ap);                                                  \
    }                                                              \
    int f = open_fault(path, flags);                               \
    if (f) return errno = f, -1;                                   \
    return real(path, flags, mode);                                \
  }
OPEN_LIKE(open)
OPEN_LIKE(open64)

#define OPENAT_LIKE(name)                                          \
  int name(int dirfd, const char *path, int flags, ...) {          \
    static openat_fn real;                                         \
    if (real == NULL) real = (openat_fn)next(#name);               \
    mode_t mode = 0;                                               \
    if (flags & (O_CREAT | O_TMPFILE)) {                           \
      va_list ap;                                                  \
      va_start(ap, flags);                                         \
      mode = (mode_t)va_arg(ap, int);                              \
      va_end(ap);                                                  \
    }                                                              \
    int f = open_fault(path, flags);                               \
    if (f) return errno = f, -1;                                   \
    return real(dirfd, path, flags, mode);                         \
  }
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)
