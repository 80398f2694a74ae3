/*
 * The slow paths behind the shims: decide whether this allocation is
 * sampled, and if so capture its stack, find its bucket, serve the block
 * from the owned region and count it in the bucket's future slot. Frees and
 * reallocs of owned (sampled) blocks come here too. Everything runs under
 * the reentrancy guard, so allocations the agent makes (libunwind, the
 * arena never does) go straight to the real allocator.
 *
 * Sizes: the agent records the *requested* size. It is what the fast path
 * knows for free (asking the allocator underneath for the usable size would
 * cost a call on every allocation), the same under glibc, jemalloc or
 * tcmalloc, what the program can change, and what the countdown is charged
 * with, so the un-sampling math stays consistent. Allocators that report
 * usable sizes (redis' used_memory under jemalloc) read a few percent
 * higher for small blocks.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

_Atomic uint32_t agent__cur_req;

void agent__reset_countdown(agent__tls *t) {
  if (atomic_load_explicit(&agent__state, memory_order_acquire) !=
          AGENT_READY ||
      agent__cfg.rate <= 0) {
    t->countdown = INT64_MAX; /* off: the slow path is never taken again */
    return;
  }
  if (t->rng == 0)
    t->rng = agent__rng_seed();
  t->countdown = agent__next_interval(&t->rng, agent__cfg.rate);
}

/* Called when the countdown, already charged with n, is <= 0. */
static bool decide(size_t n) {
  agent__tls *t = &agent__tl;
  if (t->guard)
    return false;
  int s = atomic_load_explicit(&agent__state, memory_order_acquire);
  if (AGENT_UNLIKELY(s != AGENT_READY)) {
    s = agent__init();
    if (s != AGENT_READY) {
      if (s != AGENT_INITIALIZING)
        t->countdown = INT64_MAX;
      return false;
    }
  }
  if (AGENT_UNLIKELY(t->rng == 0)) {
    /* The thread's first allocation: the zero countdown it started with
     * was no sampling point. Draw one and charge this allocation. */
    agent__reset_countdown(t);
    t->countdown -= (int64_t)n;
    if (t->countdown > 0)
      return false;
  }
  agent__reset_countdown(t);
  return agent__cfg.rate > 0;
}

/* A sampled block of n bytes, or NULL when the sample had to be dropped
 * (the caller then serves the request from the real allocator). */
static void *sample_alloc(size_t n, size_t align, bool zero) {
  agent__guard_enter();
  agent__thread_ensure();
  uintptr_t pcs[AGENT_MAX_DEPTH];
  int npc = agent__unwind(pcs, agent__cfg.depth);
  uint32_t req = agent__current_req();
  agent__bucket *b = agent__bucket_get(pcs, npc, agent__size_key(n), req);
  int64_t w = (int64_t)agent__sample_weight(n, agent__cfg.rate);
  /* The region counts the sample in agent__st, under its lock. */
  void *p = b ? agent__region_alloc(n, align, w) : NULL;
  if (!p) {
    atomic_fetch_add_explicit(&agent__st.dropped, 1, memory_order_relaxed);
    agent__guard_exit();
    return NULL;
  }
  if (zero)
    memset(p, 0, n);
  uint64_t c = atomic_load_explicit(&agent__cycle, memory_order_acquire);
  agent__block_hdr *h = agent__hdr(p);
  h->bucket = b;
  h->cycle = (uint32_t)c;
  agent__bucket_record_alloc(b, n, c);
  agent__pace_check();
  agent__guard_exit();
  return p;
}

void agent__free_owned(void *p) {
  if (agent__region_is_boot(p))
    return;
  if (AGENT_UNLIKELY(!agent__region_live(p))) {
    atomic_fetch_add_explicit(&agent__st.invalid_frees, 1,
                              memory_order_relaxed);
    return;
  }
  agent__block_hdr *h = agent__hdr(p);
  agent__bucket *b = h->bucket;
  if (b) {
    uint64_t c = atomic_load_explicit(&agent__cycle, memory_order_acquire);
    agent__bucket_record_free(b, h->size, c, h->cycle);
  }
  agent__region_free(p); /* and takes the block off agent__st */
}

/* malloc_usable_size of a sampled block is its requested size, not the
 * slot's capacity. Programs that trim by comparing the two (redis'
 * trimStringObjectIfNeeded reallocs a string whose usable size exceeds its
 * length by 10 %) would otherwise move exactly the sampled blocks out of
 * the region, since our size classes are coarser than the allocator's, and
 * the profile would lose them: a bias, not noise. The requested size is a
 * valid answer (usable >= requested is all the contract says). */
size_t agent__usable_owned(void *p) { return agent__hdr(p)->size; }

AGENT_NOINLINE void *agent__malloc_slow(size_t n) {
  if (decide(n)) {
    void *p = sample_alloc(n, 16, false);
    if (p)
      return p;
  }
  return agent__real.malloc(n);
}

AGENT_NOINLINE void *agent__calloc_slow(size_t m, size_t n) {
  if (decide(m * n)) { /* the shim checked the product for overflow */
    void *p = sample_alloc(m * n, 16, true);
    if (p)
      return p;
  }
  return agent__real.calloc(m, n);
}

static size_t pow2_at_least(size_t a) {
  size_t p = 16;
  while (p < a && p < ((size_t)1 << 40))
    p <<= 1;
  return p;
}

AGENT_NOINLINE void *agent__aligned_slow(enum agent__aligned_kind kind,
                                         size_t align, size_t n) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  size_t want = n;
  if (kind == AGENT_VALLOC || kind == AGENT_PVALLOC)
    align = pg;
  if (kind == AGENT_PVALLOC)
    want = n > SIZE_MAX - pg ? n : (n + pg - 1) & ~(pg - 1);
  /* glibc's memalign and aligned_alloc round odd alignments up to a power
   * of two; so do we. Anything that large is left to the real allocator. */
  bool ok = align <= pg * 16 && want >= n;
  if (ok && decide(n)) {
    void *p = sample_alloc(want, pow2_at_least(align), false);
    if (p)
      return p;
  }
  switch (kind) {
  case AGENT_ALIGNED_ALLOC:
    return agent__real.aligned_alloc(align, n);
  case AGENT_MEMALIGN:
    return agent__real.memalign(align, n);
  case AGENT_VALLOC:
    return agent__real.valloc(n);
  case AGENT_PVALLOC:
    return agent__real.pvalloc(n);
  }
  return NULL;
}

AGENT_NOINLINE int agent__posix_memalign_slow(void **out, size_t align,
                                              size_t n) {
  if (align <= (size_t)sysconf(_SC_PAGESIZE) * 16 && decide(n)) {
    void *p = sample_alloc(n, align, false);
    if (p) {
      *out = p;
      return 0;
    }
  }
  return agent__real.posix_memalign(out, align, n);
}

/* realloc is a free of the old block and an allocation of n bytes: the new
 * size is charged to the countdown (as Go charges a new slice backing), and
 * the new block is sampled or not on its own. Owned blocks never reach the
 * real realloc: they move to the real allocator or to a new owned block. */
AGENT_NOINLINE void *agent__realloc_slow(void *p, size_t n, bool charged) {
  agent__tls *t = &agent__tl;
  bool owned = agent__owned(p);
  if (owned && n == 0) { /* glibc: realloc(p, 0) frees p */
    agent__free_owned(p);
    return NULL;
  }
  if (!charged)
    t->countdown -= (int64_t)n;
  bool sampled = t->countdown <= 0 && decide(n) && !(p && n == 0);
  if (!sampled && !owned)
    return agent__real.realloc(p, n);
  void *q = sampled ? sample_alloc(n, 16, false) : NULL;
  if (!q && !owned)
    return agent__real.realloc(p, n);
  if (!q) {
    q = agent__real.malloc(n);
    if (!q)
      return NULL; /* p is left as it was */
  }
  if (p) {
    size_t old =
        owned ? agent__hdr(p)->size : agent__real.malloc_usable_size(p);
    memcpy(q, p, old < n ? old : n);
    if (owned)
      agent__free_owned(p);
    else
      agent__real.free(p);
  }
  return q;
}
