/* buf.h: a growable byte buffer for building responses and exposition text.
 * Owns its memory; rc_buf_free() releases it. Appends never fail silently: on allocation
 * failure the buffer is marked `oom` and further appends are ignored, so callers check once
 * at the end instead of after every append. */
#ifndef RC_BUF_H
#define RC_BUF_H

#include <stddef.h>

typedef struct rc_buf {
  char *data;
  size_t len, cap;
  int oom;
} rc_buf_t;

void rc_buf_init(rc_buf_t *b);
void rc_buf_free(rc_buf_t *b);
void rc_buf_reset(rc_buf_t *b); /* len = 0, keeps the memory */
int rc_buf_reserve(rc_buf_t *b, size_t extra);
void rc_buf_append(rc_buf_t *b, const void *p, size_t n);
void rc_buf_puts(rc_buf_t *b, const char *s);
void rc_buf_printf(rc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Takes the memory out of b (caller frees it) and leaves b empty. */
char *rc_buf_steal(rc_buf_t *b, size_t *len);
/* Appends all of an open file (read until EOF), NUL-terminated past len. Returns 0,
 * RC_ELIMIT (more than max bytes: nothing kept past max), RC_ENOMEM or RC_EIO (read error;
 * errno tells). The caller opens and closes f, and words the error: the config, rule, test
 * and secret-scan loaders each say it their way. */
#include <stdio.h>
int rc_buf_read_file(rc_buf_t *b, FILE *f, size_t max);

#endif
