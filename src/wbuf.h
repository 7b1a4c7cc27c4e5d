/* wbuf.h: a bounded text writer with snprintf's contract — it writes what fits into a
 * caller's buffer and counts the full length, so a formatter can report the size it needed.
 * Used by the canonical printers of selectors (selector.c) and expressions (promql.c). */
#ifndef RC_WBUF_H
#define RC_WBUF_H

#include <stddef.h>
#include <string.h>

typedef struct wbuf {
  char *b;
  size_t cap, len;
} wbuf_t;

static inline void wbuf_put(wbuf_t *w, const char *s, size_t k) {
  if (w->len < w->cap) {
    size_t room = w->cap - w->len;
    memcpy(w->b + w->len, s, k < room ? k : room);
  }
  w->len += k;
}

static inline void wbuf_puts(wbuf_t *w, const char *s) { wbuf_put(w, s, strlen(s)); }

#endif
