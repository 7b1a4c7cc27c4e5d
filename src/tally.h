/* tally.h: the counting consumer — per metric name, how many series entries, samples,
 * histograms and exemplars arrived. It stands where the series store will stand (issue 3) and
 * is what tests compare against what a load generator sent.
 *
 * Bounded: at most `max_names` distinct names are tracked; series of further names are counted
 * under an overflow entry (and in ripcord_ingest_tally_overflow_total), never grow the table.
 * Threads: the ingest consumer thread adds; any thread may snapshot. A mutex taken once per
 * batch (not per sample) guards the table, uncontended except while a snapshot is rendered.
 */
#ifndef RC_TALLY_H
#define RC_TALLY_H

#include <stdint.h>
#include <uv.h>

#include "batch.h"
#include "buf.h"

typedef struct rc_tally_entry {
  char *name; /* owned; NULL = empty slot */
  uint32_t name_len;
  uint64_t series, samples, histograms, exemplars;
} rc_tally_entry_t;

typedef struct rc_tally {
  uv_mutex_t lock;
  rc_tally_entry_t *slots;
  uint32_t cap, used, max_names;
  rc_tally_entry_t overflow;
  uint64_t batches;
} rc_tally_t;

int rc_tally_init(rc_tally_t *t, uint32_t max_names);
void rc_tally_close(rc_tally_t *t);
void rc_tally_add_batch(rc_tally_t *t, const rc_batch_t *b);
/* Appends a JSON object {"batches":N,"totals":{...},"metrics":{"name":{...},...}} to out. */
int rc_tally_render_json(rc_tally_t *t, rc_buf_t *out);
/* Looks up one name (for tests). Returns 1 and fills *out if found. */
int rc_tally_get(rc_tally_t *t, const char *name, rc_tally_entry_t *out);

#endif
