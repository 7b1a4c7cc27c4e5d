/* buf.c: growable byte buffer; see buf.h. */
#include "buf.h"
#include "rc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rc_buf_init(rc_buf_t *b) { memset(b, 0, sizeof(*b)); }

void rc_buf_free(rc_buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

void rc_buf_reset(rc_buf_t *b) {
  b->len = 0;
  b->oom = 0;
}

int rc_buf_reserve(rc_buf_t *b, size_t extra) {
  if (b->oom) return -1;
  if (b->len + extra + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->data, cap);
  if (p == NULL) {
    b->oom = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void rc_buf_append(rc_buf_t *b, const void *p, size_t n) {
  if (rc_buf_reserve(b, n) != 0) return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void rc_buf_puts(rc_buf_t *b, const char *s) { rc_buf_append(b, s, strlen(s)); }

void rc_buf_printf(rc_buf_t *b, const char *fmt, ...) {
  va_list ap;
  char tmp[512];
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof(tmp)) {
    rc_buf_append(b, tmp, (size_t)n);
    return;
  }
  if (rc_buf_reserve(b, (size_t)n) != 0) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

char *rc_buf_steal(rc_buf_t *b, size_t *len) {
  char *p = b->data;
  if (len) *len = b->len;
  memset(b, 0, sizeof(*b));
  return p;
}

int rc_buf_read_file(rc_buf_t *b, FILE *f, size_t max) {
  size_t start = b->len;
  for (;;) {
    size_t room = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
    if (room == 0) {
      if (b->len - start >= max) return RC_ELIMIT;
      if (rc_buf_reserve(b, b->cap ? b->cap : 8192) != 0) return RC_ENOMEM;
      room = b->cap - b->len - 1;
      /* Zeroed: what fread leaves unwritten is never read, but the analysers cannot tell
       * (clang-analyzer saw "garbage" in rules.c's reads of the text); files here are small. */
      memset(b->data + b->len, 0, room + 1);
    }
    if (room > max - (b->len - start) + 1) room = max - (b->len - start) + 1;
    size_t n = fread(b->data + b->len, 1, room, f);
    b->len += n;
    b->data[b->len] = '\0';
    if (b->len - start > max) {
      b->len = start + max;
      b->data[b->len] = '\0';
      return RC_ELIMIT;
    }
    if (n == 0) return ferror(f) ? RC_EIO : 0;
  }
}
