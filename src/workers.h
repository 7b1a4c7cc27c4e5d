/* workers.h: the ingest workers — W threads that decode remote-write bodies and apply the
 * samples to the series store, which is split into W shards, one per worker.
 *
 * Data path: the loop thread submits a request body (rc_workers_submit) to one worker's inbox
 * (round robin). That worker decodes it with its own decoder, counts it in the shared tally,
 * and splits the batch by series: each series' label-set hash (XXH3-128, the one the store and
 * its decision cache use) picks its shard, hash.hi % W — the high half, because the store's
 * table and the decision cache take their slots from the low half. The parts for other shards
 * go to their owners' inboxes (one small job each, pointing into the shared batch); then the
 * worker reports the outcome (done callback: the HTTP answer) and applies its own part. The
 * batch is freed by whichever worker finishes its last part (a reference count).
 *
 * Why this shape: decoding is most of the cost and parallelises per request; the store wants a
 * single writer per series (no locks on the append path, lock-free readers); hashing once in
 * the decoder serves both the routing and the store's cache lookup. Order: a series' samples
 * reach its shard in the order their requests were decoded, and the parts of a request are
 * queued before its answer is sent, so a sender that waits for the answer before sending the
 * next request (Prometheus, per queue shard) never has its samples applied out of order.
 *
 * Threads: submit and stop from one thread (the loop thread). done_cb runs on the loop thread
 * when a loop was given (completions cross over through a lock-free stack and a uv_async),
 * otherwise on the worker thread that decoded. applied_cb runs on the owner thread of a shard
 * after each part it applies, with rc_store_changed() valid for that part — the hook the rule
 * evaluator uses. Stores are readable from other threads through their EBR (store.h).
 * Inline mode (cfg.inline_mode, one worker): no worker thread; the loop thread decodes and
 * applies in rc_workers_submit. For a process confined to one core (taskset, cpuset), where a
 * worker thread only adds a hand-off and two context switches per request to the same core
 * (perf on one core, issue 8). A batch the gate holds (a reader is reading) waits, with the
 * requests queued behind it, until the last reader's rc_workers_read_end wakes the loop.
 * Bounds: at most max_inflight requests are decoded or applied at once; submit refuses more
 * (the handler answers 503 + Retry-After).
 * Memory: a submitted body belongs to the workers until its decode ends; batches until their
 * last part is applied; the stores until rc_workers_close. Each shard has its own accountant
 * (mem.h), which counts everything its store holds and carries the shard's share of
 * --storage.max-memory; rc_workers_store_stats sums them.
 */
#ifndef RC_WORKERS_H
#define RC_WORKERS_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "mpsc.h"
#include "rc.h"
#include "rw_decode.h"
#include "store.h"
#include "tally.h"

#define RC_WORKERS_MAX 64

typedef struct rc_work_result {
  int status;        /* HTTP status: 204, 400 (malformed or with invalid series), 413, 500 */
  int version;       /* remote write 1 or 2 */
  uint64_t samples, histograms, exemplars; /* accepted (the *-Written headers) */
  char msg[320];     /* one-line reason when status != 204 */
} rc_work_result_t;

typedef void (*rc_workers_done_cb)(void *ctx, void *token, const rc_work_result_t *r);
typedef void (*rc_workers_applied_cb)(void *ctx, uint32_t shard, rc_store_t *store,
                                      uint64_t received_ns);

typedef struct rc_workers_cfg {
  uint32_t nworkers;     /* W, 1..RC_WORKERS_MAX */
  uint32_t max_inflight; /* requests decoded or being applied at once */
  rc_rw_limits_t limits;
  rc_store_cfg_t store;  /* max_series, cache_entries and max_memory are split evenly across
                            shards; mem is ignored (each shard has its own accountant) */
  const rc_selindex_t *idx; /* borrowed; may be NULL: nothing is selected */
  rc_tally_t *tally;     /* borrowed; may be NULL */
  uv_loop_t *loop;       /* deliver done_cb on this loop's thread; NULL: on the worker */
  rc_workers_done_cb done_cb;
  rc_workers_applied_cb applied_cb; /* may be NULL */
  void *applied_ctx;     /* applied_cb's */
  void *ctx;             /* done_cb's */
  int inline_mode;       /* 1: no thread, the loop thread decodes and applies (nworkers 1, a
                            loop required); see "Inline mode" above */
} rc_workers_cfg_t;

typedef struct rc_worker rc_worker_t;

typedef struct rc_workers {
  rc_workers_cfg_t cfg;
  rc_worker_t *w;        /* nworkers */
  uint32_t next;         /* round robin (submitting thread) */
  _Atomic uint32_t inflight;
  _Atomic int stop;
  int started, async_on;
  uv_async_t async;
  /* Inline mode: the loop waits for the gate with a batch held (set before it tries the gate,
   * so that a reader leaving either sees it or left before the try: seq_cst); the last reader
   * to leave then wakes held_async. */
  _Atomic int held_waiting;
  uv_async_t held_async;
  /* Whether held_async may be sent to, and readers sending right now: a reader raises
   * held_senders before it looks at held_async_on, rc_workers_stop clears held_async_on before
   * it waits for held_senders to drain (seq_cst, Dekker), so no send races the uv_close. */
  _Atomic int held_async_on;
  _Atomic int held_senders;
  uint64_t inline_held; /* inline mode: batches that waited for the gate (loop thread's) */
  void *_Atomic done_stack; /* completions for the loop thread, newest first */
  /* The batch gate (rc_workers_read_begin): readers waiting or reading, batches partly
   * applied; the mutex and condition only for a reader waiting on the last of those. */
  _Atomic uint32_t readers, applying;
  uv_mutex_t gate_mu;
  uv_cond_t gate_cv;
  int gate_init;
} rc_workers_t;

/* Creates the stores (one per worker) and decoders. Returns 0, or an error with its reason
 * (RC_EINVAL when a shard's share of max_memory is already taken by its fixed-size table and
 * decision cache). */
int rc_workers_init(rc_workers_t *ws, const rc_workers_cfg_t *cfg, rc_err_t *err);
int rc_workers_start(rc_workers_t *ws, rc_err_t *err);
/* Submitting is two steps so that the handler can take the body from the HTTP layer (which
 * cannot be undone) only once the submit cannot fail. Reserve counts the request in flight
 * and allocates its job: NULL with *rc = RC_EFULL when max_inflight requests are in flight,
 * or RC_ENOMEM. Submit queues the body (moved: *body is emptied) for decoding, and token
 * comes back in done_cb. Unreserve gives back a reservation that will not be submitted. */
typedef struct rc_work_slot rc_work_slot_t;
rc_work_slot_t *rc_workers_reserve(rc_workers_t *ws, int *rc);
void rc_workers_submit(rc_workers_t *ws, rc_work_slot_t *slot, int version, rc_buf_t *body,
                       uint64_t received_ns, void *token);
void rc_workers_unreserve(rc_workers_t *ws, rc_work_slot_t *slot);
/* Lets every queued request finish (answers delivered), then joins the threads and closes the
 * async handle (the loop must run once more for its close callback). Submitting thread. */
void rc_workers_stop(rc_workers_t *ws);
/* After stop (or if never started): frees stores, decoders, everything. */
void rc_workers_close(rc_workers_t *ws);

uint32_t rc_workers_count(const rc_workers_t *ws);
/* Shard i's store: its owner writes it; others read it through its EBR. */
rc_store_t *rc_workers_store(rc_workers_t *ws, uint32_t i);
/* The shard a series' label hash belongs to. */
static inline uint32_t rc_workers_shard_of(const rc_workers_t *ws, rc_selindex_hash_t h) {
  return (uint32_t)(h.hi % ws->cfg.nworkers);
}
/* The batch gate. A reader on another thread sees every append as it happens, so it could
 * see part of a batch — the 5xx counters of a request without its 2xx ones, in two shards —
 * and a ratio over them would be wrong for a moment: enough for a trigger to fire on data
 * that never existed. Readers that must see whole batches (the rule evaluator, ad-hoc
 * queries) bracket a read with read_begin/read_end: begin waits until no batch is partly
 * applied (well under a millisecond: parts go first in every inbox) and, until end, a worker
 * holds a newly decoded batch back — answering and routing it later — while it keeps
 * applying parts, so no worker ever blocks. Any thread; readers may overlap. */
void rc_workers_read_begin(rc_workers_t *ws);
void rc_workers_read_end(rc_workers_t *ws);
/* Sum of every shard's counters (any thread). */
void rc_workers_store_stats(const rc_workers_t *ws, rc_store_stats_t *out);
/* Rule reload before start or after stop: each shard re-matches its series against idx on
 * the calling thread. Returns 0 or RC_ENOMEM. */
int rc_workers_set_index(rc_workers_t *ws, const rc_selindex_t *idx);
/* Rule reload while running (the submitting thread): each worker re-matches its shard
 * against idx on its own thread, after the parts already routed to it and before any new
 * decode; returns once every worker has switched, so the previous index may then be freed.
 * Returns 0, or RC_ENOMEM (some shard keeps its old selection until the next reload). */
int rc_workers_swap_index(rc_workers_t *ws, const rc_selindex_t *idx);

#endif
