/* rwbuild.h: test helper that builds remote-write bodies (v1 or v2, snappy block format)
 * with protobuf-c's own packer, so decode tests start from bytes a real sender would make.
 * Aborting on allocation failure is acceptable here: this is test code, never the daemon. */
#ifndef RWBUILD_H
#define RWBUILD_H

#include <stddef.h>
#include <stdint.h>

typedef struct rwb rwb_t;

rwb_t *rwb_new(int version);
/* Starts a new series. spec is "name=value,name=value" in the order given (not sorted). */
void rwb_series(rwb_t *b, const char *spec);
/* Adds a label with explicit lengths (for empty names, NUL bytes, bad UTF-8). */
void rwb_label(rwb_t *b, const char *name, size_t nlen, const char *value, size_t vlen);
void rwb_sample(rwb_t *b, double v, int64_t ts);
void rwb_exemplar(rwb_t *b, double v, int64_t ts);
/* An integer native histogram: one positive span at offset 0 holding the deltas. */
void rwb_int_histogram(rwb_t *b, int64_t ts, uint64_t count, double sum, int32_t schema,
                       uint64_t zero_count, const int64_t *deltas, size_t ndeltas,
                       uint32_t span_len);
/* v1 only: metadata entries. */
void rwb_metadata(rwb_t *b, const char *family);
/* v2 only: metadata of the current series, with a raw help_ref. */
void rwb_v2_metadata(rwb_t *b, int type, uint32_t help_ref);
/* v2 only: override symbols[0] (to test the "must be empty" rule). */
void rwb_v2_first_symbol(rwb_t *b, const char *s);
/* v2 only: append a raw ref to the current series' labels_refs (for out-of-range refs). */
void rwb_v2_raw_ref(rwb_t *b, uint32_t ref);
/* Packs the protobuf (uncompressed). Caller frees. */
uint8_t *rwb_pack(rwb_t *b, size_t *len);
/* Packs and snappy-compresses. Caller frees. Frees b. */
char *rwb_finish(rwb_t *b, size_t *len);
char *rwb_snappy(const void *raw, size_t len, size_t *out_len);
void rwb_free(rwb_t *b);
/* Finishes b (frees it) and decodes the body with the daemon's decoder (generous limits)
 * into a batch the caller frees; NULL, with the reason on stderr, if it does not decode or
 * has an invalid series. For tests that feed the store directly. */
struct rc_batch *rwb_decode(rwb_t *b);
/* The series of store s with the labels spec ("__name__=up,job=db", as rwb_series), or NULL:
 * what a store test looks up. */
struct rc_store;
struct rc_store_series *rwb_store_find(struct rc_store *s, const char *spec);

#endif
