/* workers.c: ingest worker threads, their inboxes, batch routing to store shards, and the
 * hand-back of answers to the loop thread; see workers.h. */
#include "workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stats.h"

enum { JOB_DECODE, JOB_PART, JOB_INDEX };

/* A live index swap (rule reload): every worker re-matches its shard, then counts down. */
typedef struct barrier {
  uv_mutex_t mu;
  uv_cond_t cv;
  uint32_t left;
  int rc;
} barrier_t;

/* Shared by the parts of one batch; lives in the batch's arena. */
typedef struct shared {
  rc_batch_t *b;
  _Atomic uint32_t refs; /* parts not yet applied */
} shared_t;

typedef struct job {
  rc_mpsc_node_t node; /* first: the queue hands back node pointers */
  int type;
  /* JOB_DECODE (malloc'ed, freed by the decoding worker) */
  int version;
  rc_buf_t body;
  uint64_t received_ns;
  void *token;
  /* JOB_INDEX (malloc'ed, freed by the worker) */
  const rc_selindex_t *index;
  barrier_t *bar;
  /* JOB_PART (in the batch's arena) */
  shared_t *sh;
  const uint32_t *idx;
  const rc_selindex_hash_t *hs;
  uint32_t n;
} job_t;

/* A finished decode on its way to the loop thread. */
typedef struct done {
  struct done *next;
  void *token;
  rc_work_result_t r;
} done_t;

/* A decoded batch held back by the gate, with what its start needs. */
typedef struct deferred {
  rc_batch_t *b;
  void *token;
  rc_work_result_t res;
} deferred_t;

struct rc_worker {
  rc_workers_t *ws;
  uint32_t id;
  deferred_t held; /* held.b != NULL: a batch waits for the gate */
  uv_thread_t thread;
  /* Two inboxes: parts routed here by other workers go first, so that a decoded batch is
   * applied (and visible to rules) before this worker decodes more; and the batches waiting
   * for their parts stay few, instead of one per request queued. */
  rc_mpsc_t parts, decodes;
  uv_sem_t wake;
  _Atomic int idle; /* see wake() */
  rc_rw_decoder_t dec;
  rc_store_t *store;
  rc_mem_t mem; /* the shard's accountant: everything its store holds (store.h) */
  /* Routing scratch: per shard, how many series of the batch being split go there. */
  uint32_t *count;
};

/* The wake-up handshake of each inbox (Dekker-style, hence seq_cst): the worker sets idle=1,
 * re-checks its queue, and only then sleeps; a producer pushes, then takes idle with an
 * exchange and posts only if it was 1. Either the re-check sees the item or the producer's
 * exchange sees idle=1 and posts; a push still in progress at the re-check is followed by
 * its producer's exchange, which then sees idle=1. */
static void wake(rc_worker_t *w) {
  if (atomic_exchange(&w->idle, 0)) uv_sem_post(&w->wake);
}

static void push(rc_worker_t *w, job_t *j) {
  /* Index swaps go with the parts: ahead of new decodes, behind parts already routed. */
  rc_mpsc_push(j->type == JOB_DECODE ? &w->decodes : &w->parts, &j->node);
  wake(w);
}

static int inbox_empty(rc_worker_t *w) {
  return rc_mpsc_empty(&w->parts) && rc_mpsc_empty(&w->decodes);
}

/*------------------------------------------------------------------------------------------
 * Answers
 *----------------------------------------------------------------------------------------*/

/* Loop thread: answers every completion posted so far, oldest first. */
static void drain_done(rc_workers_t *ws) {
  done_t *d = atomic_exchange_explicit(&ws->done_stack, NULL, memory_order_acquire);
  done_t *rev = NULL;
  while (d != NULL) { /* the stack is newest first */
    done_t *n = d->next;
    d->next = rev;
    rev = d;
    d = n;
  }
  while (rev != NULL) {
    done_t *n = rev->next;
    ws->cfg.done_cb(ws->cfg.ctx, rev->token, &rev->r);
    free(rev);
    rev = n;
  }
}

static void on_async(uv_async_t *a) { drain_done(a->data); }

static void post_done(rc_workers_t *ws, void *token, const rc_work_result_t *r) {
  if (ws->cfg.loop == NULL) {
    ws->cfg.done_cb(ws->cfg.ctx, token, r);
    return;
  }
  done_t *d = malloc(sizeof(*d));
  if (d == NULL) {
    /* Cannot hand it over: the request is answered when the connection times out or the
     * client gives up. Out of memory here is logged once a minute. */
    static rc_complaint_t c;
    rc_log_complain(&c, uv_hrtime() / 1000000u, 60000, RC_LOG_ERROR,
                    "workers: out of memory handing an answer back", NULL);
    return;
  }
  d->token = token;
  d->r = *r;
  void *head = atomic_load_explicit(&ws->done_stack, memory_order_relaxed);
  do {
    d->next = head;
  } while (!atomic_compare_exchange_weak_explicit(&ws->done_stack, &head, d,
                                                  memory_order_release, memory_order_relaxed));
  uv_async_send(&ws->async);
}

/*------------------------------------------------------------------------------------------
 * Work
 *----------------------------------------------------------------------------------------*/

/* A request (or a batch) has left the pipeline. When stopping, the last one wakes everyone
 * so that idle workers notice there is nothing left and exit. */
static void release_inflight(rc_workers_t *ws) {
  rc_stat_sub(&rc_stats.queue_depth, 1);
  if (atomic_fetch_sub(&ws->inflight, 1) == 1 && atomic_load(&ws->stop))
    for (uint32_t i = 0; i < ws->cfg.nworkers; i++) uv_sem_post(&ws->w[i].wake);
}

static void finish_batch(rc_workers_t *ws, rc_batch_t *b) {
  rc_stat_add(&rc_stats.consumed_batches, 1);
  rc_stat_add(&rc_stats.consumed_series, b->nseries);
  rc_stat_add(&rc_stats.consumed_samples, b->nsamples);
  rc_stat_add(&rc_stats.consumed_histograms, b->nhistograms);
  rc_batch_free(b);
  release_inflight(ws);
}

static void store_oom(void) {
  static rc_complaint_t c;
  rc_log_complain(&c, uv_hrtime() / 1000000u, 60000, RC_LOG_ERROR,
                  "store: out of memory applying a batch", NULL);
}

/*------------------------------------------------------------------------------------------
 * The batch gate (workers.h). A Dekker pair, hence seq_cst: a batch counts itself applying,
 * then checks for readers; a reader counts itself, then checks for batches applying. At least
 * one sees the other: either the batch backs off, or the reader waits for it.
 *----------------------------------------------------------------------------------------*/

static int gate_try_enter(rc_workers_t *ws) {
  if (atomic_load(&ws->readers) > 0) return 0;
  atomic_fetch_add(&ws->applying, 1);
  if (atomic_load(&ws->readers) == 0) return 1;
  /* A reader came in between: back off (and let it go if it waits for us). */
  if (atomic_fetch_sub(&ws->applying, 1) == 1) {
    uv_mutex_lock(&ws->gate_mu);
    uv_cond_broadcast(&ws->gate_cv);
    uv_mutex_unlock(&ws->gate_mu);
  }
  return 0;
}

static void gate_exit(rc_workers_t *ws) {
  if (atomic_fetch_sub(&ws->applying, 1) == 1 && atomic_load(&ws->readers) > 0) {
    uv_mutex_lock(&ws->gate_mu);
    uv_cond_broadcast(&ws->gate_cv);
    uv_mutex_unlock(&ws->gate_mu);
  }
}

void rc_workers_read_begin(rc_workers_t *ws) {
  atomic_fetch_add(&ws->readers, 1);
  if (atomic_load(&ws->applying) == 0) return;
  uv_mutex_lock(&ws->gate_mu);
  while (atomic_load(&ws->applying) > 0) uv_cond_wait(&ws->gate_cv, &ws->gate_mu);
  uv_mutex_unlock(&ws->gate_mu);
}

void rc_workers_read_end(rc_workers_t *ws) {
  if (atomic_fetch_sub(&ws->readers, 1) != 1) return;
  if (ws->cfg.inline_mode) {
    atomic_fetch_add(&ws->held_senders, 1);
    if (atomic_load(&ws->held_waiting) && atomic_load(&ws->held_async_on))
      uv_async_send(&ws->held_async);
    atomic_fetch_sub(&ws->held_senders, 1);
    return;
  }
  /* Every worker, running or not: waking a stopped one is harmless (its semaphore lives
   * until rc_workers_close, after every reader has stopped), and `started` is not ours. */
  for (uint32_t i = 0; i < ws->cfg.nworkers; i++) wake(&ws->w[i]);
}

static void apply_part(rc_worker_t *w, shared_t *sh, const uint32_t *idx,
                       const rc_selindex_hash_t *hs, uint32_t n) {
  rc_workers_t *ws = w->ws;
  if (n > 0 && rc_store_apply_part(w->store, sh->b, idx, hs, n) != 0) store_oom();
  /* The last part closes the batch's gate entry before the hook runs, so the evaluator the
   * hook wakes is not kept waiting by this very batch. */
  uint64_t received_ns = sh->b->received_ns;
  int last = atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1;
  if (last) gate_exit(ws);
  if (n > 0 && ws->cfg.applied_cb != NULL)
    ws->cfg.applied_cb(ws->cfg.applied_ctx, w->id, w->store, received_ns);
  if (last) finish_batch(ws, sh->b);
}

static void set_result(rc_work_result_t *res, int rc, const rc_rw_result_t *r,
                       const rc_batch_t *b, int version) {
  memset(res, 0, sizeof(*res));
  res->version = version;
  if (rc != 0 || b == NULL) {
    res->status = rc == RC_EPARSE ? 400 : rc == RC_ELIMIT ? 413 : 500;
    snprintf(res->msg, sizeof(res->msg), "%s", r->msg);
    return;
  }
  res->samples = b->nsamples;
  res->histograms = b->nhistograms;
  res->exemplars = b->nexemplars;
  if (r->invalid_series) {
    res->status = 400; /* the valid series are ingested; Prometheus will not retry a 400 */
    snprintf(res->msg, sizeof(res->msg), "%s (%u invalid series dropped, the rest ingested)",
             r->msg, r->invalid_series);
  } else {
    res->status = 204;
  }
}

static void count_decoded(const rc_batch_t *b, const rc_rw_result_t *r) {
  rc_stat_add(&rc_stats.samples, b->nsamples);
  rc_stat_add(&rc_stats.histograms, b->nhistograms);
  rc_stat_add(&rc_stats.exemplars, b->nexemplars);
  rc_stat_add(&rc_stats.series, b->nseries);
  rc_stat_add(&rc_stats.metadata, b->nmetadata);
  rc_stat_add(&rc_stats.stale_markers, b->nstale);
  if (r->invalid_series) {
    for (int i = 0; i < RC_RWS__COUNT; i++)
      if (r->invalid_by[i]) rc_stat_add(&rc_stats.invalid_series[i], r->invalid_by[i]);
    rc_stat_add(&rc_stats.dropped_samples, r->dropped_samples);
    rc_stat_add(&rc_stats.dropped_histograms, r->dropped_histograms);
    rc_stat_add(&rc_stats.dropped_exemplars, r->dropped_exemplars);
  }
}

/* Splits b by shard into parts allocated in its arena; queues the others' parts; returns our
 * own part in *own. Returns 0 or RC_ENOMEM (nothing queued then). */
static int route(rc_worker_t *w, shared_t *sh, job_t *own) {
  rc_workers_t *ws = w->ws;
  rc_batch_t *b = sh->b;
  uint32_t W = ws->cfg.nworkers, n = b->nseries;
  rc_selindex_hash_t *hs = rc_arena_alloc(&b->arena, (size_t)n * sizeof(*hs));
  uint32_t *shard = rc_arena_alloc(&b->arena, (size_t)n * sizeof(*shard));
  job_t *parts = rc_arena_alloc(&b->arena, (size_t)W * sizeof(*parts));
  if (hs == NULL || shard == NULL || parts == NULL) return RC_ENOMEM;
  memset(w->count, 0, W * sizeof(*w->count));
  for (uint32_t k = 0; k < n; k++) {
    rc_selindex_hash_t h = rc_series_hash(&b->series[k]);
    shard[k] = rc_workers_shard_of(ws, h);
    w->count[shard[k]]++;
    hs[k] = h;
  }
  /* Lay each shard's (index, hash) pairs out contiguously, in batch order. */
  uint32_t *idx = rc_arena_alloc(&b->arena, (size_t)n * sizeof(*idx));
  rc_selindex_hash_t *phs = rc_arena_alloc(&b->arena, (size_t)n * sizeof(*phs));
  if (idx == NULL || phs == NULL) return RC_ENOMEM;
  uint32_t off = 0, nparts = 0;
  for (uint32_t i = 0; i < W; i++) {
    parts[i] = (job_t){.type = JOB_PART, .sh = sh, .idx = idx + off, .hs = phs + off};
    off += w->count[i];
    nparts += w->count[i] > 0 || i == w->id;
  }
  for (uint32_t k = 0; k < n; k++) {
    job_t *p = &parts[shard[k]];
    /* parts[i].idx is idx + off for every i < W, and shard[k] < W: never NULL. */
    ((uint32_t *)p->idx)[p->n] = k; // NOLINT(clang-analyzer-core.NullDereference)
    ((rc_selindex_hash_t *)p->hs)[p->n] = hs[k];
    p->n++;
  }
  /* Our own part always counts (even empty), so the batch cannot be freed under us. */
  atomic_store_explicit(&sh->refs, nparts, memory_order_relaxed);
  for (uint32_t i = 0; i < W; i++)
    if (i != w->id && parts[i].n > 0) push(&ws->w[i], &parts[i]);
  *own = parts[w->id];
  return 0;
}

/* A decoded batch, with its gate entry taken: route it, answer, apply our part. */
static void start_batch(rc_worker_t *w, rc_batch_t *b, void *token, rc_work_result_t *res) {
  rc_workers_t *ws = w->ws;
  if (ws->cfg.nworkers == 1) {
    /* One shard: no routing. Answer first, then apply (the answer does not wait for it). */
    post_done(ws, token, res);
    uint64_t received_ns = b->received_ns;
    if (rc_store_apply(w->store, b) != 0) store_oom();
    gate_exit(ws);
    if (ws->cfg.applied_cb != NULL)
      ws->cfg.applied_cb(ws->cfg.applied_ctx, w->id, w->store, received_ns);
    finish_batch(ws, b);
    return;
  }
  shared_t *sh = rc_arena_alloc(&b->arena, sizeof(*sh));
  job_t own;
  if (sh == NULL || (sh->b = b, route(w, sh, &own)) != 0) {
    /* Nothing was queued: answer 500 so the sender retries; the tally already counted it. */
    gate_exit(ws);
    res->status = 500;
    snprintf(res->msg, sizeof(res->msg), "internal error: out of memory routing the batch");
    post_done(ws, token, res);
    rc_batch_free(b);
    release_inflight(ws);
    return;
  }
  post_done(ws, token, res); /* after the other parts are queued: see workers.h, Order */
  apply_part(w, sh, own.idx, own.hs, own.n);
}

static void do_decode(rc_worker_t *w, job_t *j) {
  rc_workers_t *ws = w->ws;
  rc_batch_t *b = NULL;
  rc_rw_result_t r;
  rc_work_result_t res;
  int rc = rc_rw_decode(&w->dec, j->version, j->body.data ? j->body.data : "", j->body.len, &b, &r);
  rc_stat_add(&rc_stats.decoded_bytes, r.decoded_bytes);
  void *token = j->token;
  int version = j->version;
  uint64_t received_ns = j->received_ns;
  rc_buf_free(&j->body);
  free(j);
  if (rc != 0) {
    rc_stat_add(&rc_stats.decode_errors[r.reason], 1);
    set_result(&res, rc, &r, NULL, version);
    post_done(ws, token, &res);
    release_inflight(ws);
    return;
  }
  b->received_ns = received_ns;
  count_decoded(b, &r);
  if (ws->cfg.tally != NULL) rc_tally_add_batch(ws->cfg.tally, b);
  set_result(&res, 0, &r, b, version);
  if (b->nseries == 0) {
    post_done(ws, token, &res);
    rc_batch_free(b);
    release_inflight(ws);
    return;
  }
  if (gate_try_enter(ws)) start_batch(w, b, token, &res);
  else {
    w->held = (deferred_t){.b = b, .token = token, .res = res}; /* a reader is reading */
    if (ws->cfg.inline_mode) ws->inline_held++;
  }
}

static void worker_main(void *arg) {
  rc_worker_t *w = arg;
  rc_workers_t *ws = w->ws;
  for (;;) {
    /* Parts first, then a held batch once the gate opens, then new decodes (one batch held
     * at most: decoding more while the gate is shut would only pile them up). */
    rc_mpsc_node_t *n = rc_mpsc_pop(&w->parts);
    if (n == NULL && w->held.b != NULL) {
      if (gate_try_enter(ws)) {
        deferred_t h = w->held;
        w->held.b = NULL;
        start_batch(w, h.b, h.token, &h.res);
        continue;
      }
    } else if (n == NULL) {
      n = rc_mpsc_pop(&w->decodes);
    }
    if (n == NULL) {
      /* Parts can come from other workers until nothing is in flight: only then exit. */
      if (atomic_load(&ws->stop) && atomic_load(&ws->inflight) == 0 && inbox_empty(w))
        break;
      atomic_store(&w->idle, 1);
      atomic_thread_fence(memory_order_seq_cst);
      int work = !rc_mpsc_empty(&w->parts) ||
                 (w->held.b != NULL ? atomic_load(&ws->readers) == 0 : !rc_mpsc_empty(&w->decodes));
      if (!work && !(atomic_load(&ws->stop) && atomic_load(&ws->inflight) == 0))
        uv_sem_wait(&w->wake);
      atomic_store(&w->idle, 0);
      continue;
    }
    job_t *j = (job_t *)n;
    if (j->type == JOB_DECODE) {
      do_decode(w, j);
    } else if (j->type == JOB_INDEX) {
      int rc = rc_store_set_index(w->store, j->index);
      barrier_t *b = j->bar;
      free(j);
      uv_mutex_lock(&b->mu);
      if (rc != 0) b->rc = rc;
      if (--b->left == 0) uv_cond_signal(&b->cv);
      uv_mutex_unlock(&b->mu);
    } else {
      apply_part(w, j->sh, j->idx, j->hs, j->n);
    }
  }
}

/* Inline mode, on the loop thread: the held batch once the gate opens, then every decode
 * queued behind it, in order. Returns with the queue empty, or with a batch still held (a
 * reader is reading: its read_end wakes held_async, which calls this again). */
static void inline_run(rc_workers_t *ws) {
  rc_worker_t *w = &ws->w[0];
  for (;;) {
    if (w->held.b != NULL) {
      atomic_store(&ws->held_waiting, 1);
      if (!gate_try_enter(ws)) return;
      atomic_store(&ws->held_waiting, 0);
      deferred_t h = w->held;
      w->held.b = NULL;
      start_batch(w, h.b, h.token, &h.res);
      continue;
    }
    rc_mpsc_node_t *n = rc_mpsc_pop(&w->decodes);
    if (n == NULL) return;
    do_decode(w, (job_t *)n);
  }
}

static void on_held_async(uv_async_t *a) { inline_run(a->data); }

/*------------------------------------------------------------------------------------------
 * Lifetime
 *----------------------------------------------------------------------------------------*/

int rc_workers_init(rc_workers_t *ws, const rc_workers_cfg_t *cfg, rc_err_t *err) {
  memset(ws, 0, sizeof(*ws));
  if (cfg->nworkers < 1 || cfg->nworkers > RC_WORKERS_MAX)
    return rc_err_set(err, RC_EINVAL, "ingest workers must be 1..%d", RC_WORKERS_MAX);
  if (cfg->max_inflight < 1) return rc_err_set(err, RC_EINVAL, "max in flight must be >= 1");
  if (cfg->done_cb == NULL) return rc_err_set(err, RC_EINVAL, "no done callback");
  if (cfg->inline_mode && (cfg->nworkers != 1 || cfg->loop == NULL))
    return rc_err_set(err, RC_EINVAL, "inline ingest needs one worker and a loop");
  ws->cfg = *cfg;
  uint32_t W = cfg->nworkers;
  ws->w = calloc(W, sizeof(*ws->w));
  if (ws->w == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  rc_store_cfg_t sc = cfg->store;
  sc.max_series = (cfg->store.max_series + W - 1) / W;
  sc.cache_entries = (cfg->store.cache_entries + W - 1) / W;
  /* The memory bound is split evenly, as max_series is: series spread evenly over the shards
   * (by hash), and each shard enforces its share without looking at the others. */
  sc.max_memory = cfg->store.max_memory / W;
  if (cfg->store.max_memory > 0 && sc.max_memory == 0) sc.max_memory = 1; /* not unbounded */
  for (uint32_t i = 0; i < W; i++) {
    rc_worker_t *w = &ws->w[i];
    w->ws = ws;
    w->id = i;
    rc_mpsc_init(&w->parts);
    rc_mpsc_init(&w->decodes);
    rc_rw_decoder_init(&w->dec, &cfg->limits);
    w->dec.lazy_labels = 1; /* what reads the batch (store, tally) copes with raw labels */
    rc_mem_init(&w->mem, 0);
    sc.mem = &w->mem;
    int rc = uv_sem_init(&w->wake, 0) != 0 ? RC_ENOMEM : rc_store_new(&sc, cfg->idx, &w->store);
    w->count = calloc(W, sizeof(*w->count));
    if (rc == 0 && w->count == NULL) rc = RC_ENOMEM;
    if (rc != 0) {
      ws->cfg.nworkers = i + 1;
      rc_workers_close(ws);
      return rc_err_set(err, rc, "cannot create store shard %u: %s", i, rc_strerror(rc));
    }
    /* The table and the decision cache are allocated up front: a bound they already fill
     * would refuse every series from the first, so say so at start instead. */
    int64_t fixed = rc_mem_bytes(&w->mem);
    if (sc.max_memory > 0 && fixed >= w->mem.high) {
      ws->cfg.nworkers = i + 1;
      rc_workers_close(ws);
      /* Short: rc_err_t holds 160 bytes. */
      return rc_err_set(err, RC_EINVAL,
                        "--storage.max-memory too small for the table and decision cache (%lld "
                        "of %zu bytes per shard): lower --storage.decision-cache-size",
                        (long long)fixed, sc.max_memory);
    }
  }
  uv_mutex_init(&ws->gate_mu);
  uv_cond_init(&ws->gate_cv);
  ws->gate_init = 1;
  rc_stat_set(&rc_stats.queue_capacity, cfg->max_inflight);
  return 0;
}

int rc_workers_start(rc_workers_t *ws, rc_err_t *err) {
  if (ws->cfg.loop != NULL) {
    if (uv_async_init(ws->cfg.loop, &ws->async, on_async) != 0)
      return rc_err_set(err, RC_ENOMEM, "cannot create the workers' async handle");
    ws->async.data = ws;
    ws->async_on = 1;
  }
  if (ws->cfg.inline_mode) {
    if (uv_async_init(ws->cfg.loop, &ws->held_async, on_held_async) != 0)
      return rc_err_set(err, RC_ENOMEM, "cannot create the workers' async handle");
    ws->held_async.data = ws;
    atomic_store(&ws->held_async_on, 1);
    return 0; /* no thread: the loop thread does the work in rc_workers_submit */
  }
  for (uint32_t i = 0; i < ws->cfg.nworkers; i++) {
    if (uv_thread_create(&ws->w[i].thread, worker_main, &ws->w[i]) != 0) {
      rc_workers_stop(ws); /* joins the ones that started */
      return rc_err_set(err, RC_ENOMEM, "cannot start ingest worker %u", i);
    }
    ws->started = (int)i + 1;
  }
  return 0;
}

struct rc_work_slot {
  job_t job;
};

rc_work_slot_t *rc_workers_reserve(rc_workers_t *ws, int *rc) {
  /* Only this thread adds: room seen now is still there when we add. */
  if (atomic_load(&ws->inflight) >= ws->cfg.max_inflight) {
    *rc = RC_EFULL;
    return NULL;
  }
  rc_work_slot_t *slot = malloc(sizeof(*slot));
  if (slot == NULL) {
    *rc = RC_ENOMEM;
    return NULL;
  }
  atomic_fetch_add(&ws->inflight, 1);
  rc_stat_add(&rc_stats.queue_depth, 1);
  *rc = 0;
  return slot;
}

void rc_workers_unreserve(rc_workers_t *ws, rc_work_slot_t *slot) {
  free(slot);
  release_inflight(ws);
}

void rc_workers_submit(rc_workers_t *ws, rc_work_slot_t *slot, int version, rc_buf_t *body,
                       uint64_t received_ns, void *token) {
  job_t *j = &slot->job; /* first member: freeing j frees the slot */
  *j = (job_t){.type = JOB_DECODE, .version = version, .body = *body,
               .received_ns = received_ns, .token = token};
  rc_buf_init(body);
  if (ws->cfg.inline_mode) {
    /* Queued first: behind a batch the gate holds, if any. */
    rc_mpsc_push(&ws->w[0].decodes, &j->node);
    inline_run(ws);
    return;
  }
  uint32_t i = ws->next++ % ws->cfg.nworkers;
  push(&ws->w[i], j);
}

void rc_workers_stop(rc_workers_t *ws) {
  atomic_store(&ws->stop, 1);
  if (ws->cfg.inline_mode && ws->w != NULL) {
    /* Finish what is queued; a batch held for a reader waits for it (readers are single
     * evaluations: milliseconds). */
    for (;;) {
      inline_run(ws);
      if (ws->w[0].held.b == NULL && rc_mpsc_empty(&ws->w[0].decodes)) break;
      uv_sleep(1);
    }
    atomic_store(&ws->held_waiting, 0);
    if (atomic_exchange(&ws->held_async_on, 0)) {
      /* The engine may still be evaluating (the daemon stops it after the loop): wait out a
       * reader caught between its check and its send, a few instructions long. */
      for (int spin = 0; atomic_load(&ws->held_senders) > 0; spin++)
        if (spin > 1000) uv_sleep(0);
      uv_close((uv_handle_t *)&ws->held_async, NULL);
    }
  }
  for (int i = 0; i < ws->started; i++) uv_sem_post(&ws->w[i].wake);
  for (int i = 0; i < ws->started; i++) uv_thread_join(&ws->w[i].thread);
  ws->started = 0;
  if (ws->async_on) {
    drain_done(ws); /* answers posted after the last async callback */
    uv_close((uv_handle_t *)&ws->async, NULL);
    ws->async_on = 0;
  }
}

void rc_workers_close(rc_workers_t *ws) {
  if (ws->w == NULL) return;
  for (uint32_t i = 0; i < ws->cfg.nworkers; i++) {
    rc_worker_t *w = &ws->w[i];
    /* Jobs still queued (only if the workers never ran): free decode jobs. Parts live in
     * batch arenas whose decode job was consumed, so none can be left without a worker. */
    rc_mpsc_node_t *n;
    while (w->store != NULL && (n = rc_mpsc_pop(&w->decodes)) != NULL) {
      job_t *j = (job_t *)n;
      if (j->type == JOB_DECODE) {
        rc_buf_free(&j->body);
        free(j);
      }
    }
    rc_store_free(w->store);
    /* Every block the shard held went back through its accountant: anything else is a
     * block freed with the wrong one, which would make the bound drift. */
    if (w->store != NULL && (rc_mem_bytes(&w->mem) != 0 || rc_mem_blocks(&w->mem) != 0))
      rc_log(RC_LOG_WARN, "store: memory accounting did not return to zero",
             "shard=%u bytes=%lld blocks=%lld", i, (long long)rc_mem_bytes(&w->mem),
             (long long)rc_mem_blocks(&w->mem));
    rc_rw_decoder_close(&w->dec);
    uv_sem_destroy(&w->wake);
    free(w->count);
  }
  free(ws->w);
  ws->w = NULL;
  if (ws->gate_init) {
    uv_cond_destroy(&ws->gate_cv);
    uv_mutex_destroy(&ws->gate_mu);
    ws->gate_init = 0;
  }
}

uint32_t rc_workers_count(const rc_workers_t *ws) { return ws->cfg.nworkers; }

rc_store_t *rc_workers_store(rc_workers_t *ws, uint32_t i) {
  return i < ws->cfg.nworkers ? ws->w[i].store : NULL;
}

void rc_workers_store_stats(const rc_workers_t *ws, rc_store_stats_t *out) {
  memset(out, 0, sizeof(*out));
  out->watermark_ms = INT64_MIN;
  for (uint32_t i = 0; ws->w != NULL && i < ws->cfg.nworkers; i++) {
    rc_store_stats_t s;
    rc_store_stats(ws->w[i].store, &s);
    out->series += s.series;
    out->series_created += s.series_created;
    out->series_removed += s.series_removed;
    out->refused_series += s.refused_series;
    out->refused_series_memory += s.refused_series_memory;
    out->refused_samples_memory += s.refused_samples_memory;
    out->refused_hist_memory += s.refused_hist_memory;
    out->dropped_series += s.dropped_series;
    out->dropped_samples += s.dropped_samples;
    out->appended += s.appended;
    out->too_old += s.too_old;
    out->duplicates += s.duplicates;
    out->conflicts += s.conflicts;
    out->too_far_ahead += s.too_far_ahead;
    out->hist_appended += s.hist_appended;
    out->hist_invalid += s.hist_invalid;
    out->dropped_histograms += s.dropped_histograms;
    out->bytes += s.bytes;
    out->memory_limit += s.memory_limit;
    if (s.watermark_ms > out->watermark_ms) out->watermark_ms = s.watermark_ms;
  }
}

int rc_workers_swap_index(rc_workers_t *ws, const rc_selindex_t *idx) {
  if (ws->started == 0) return rc_workers_set_index(ws, idx);
  barrier_t b = {.left = ws->cfg.nworkers};
  uv_mutex_init(&b.mu);
  uv_cond_init(&b.cv);
  uint32_t queued = 0;
  for (uint32_t i = 0; i < ws->cfg.nworkers; i++) {
    job_t *j = calloc(1, sizeof(*j));
    if (j == NULL) break;
    j->type = JOB_INDEX;
    j->index = idx;
    j->bar = &b;
    push(&ws->w[i], j);
    queued++;
  }
  uv_mutex_lock(&b.mu);
  b.left -= ws->cfg.nworkers - queued; /* jobs that could not be queued never count down */
  if (queued < ws->cfg.nworkers) b.rc = RC_ENOMEM;
  while (b.left > 0) uv_cond_wait(&b.cv, &b.mu);
  uv_mutex_unlock(&b.mu);
  uv_cond_destroy(&b.cv);
  uv_mutex_destroy(&b.mu);
  if (b.rc == 0) ws->cfg.idx = idx;
  return b.rc;
}

int rc_workers_set_index(rc_workers_t *ws, const rc_selindex_t *idx) {
  ws->cfg.idx = idx;
  for (uint32_t i = 0; i < ws->cfg.nworkers; i++) {
    int rc = rc_store_set_index(ws->w[i].store, idx);
    if (rc != 0) return rc;
  }
  return 0;
}
