/*
 * Stack buckets, after Go's runtime/mprof.go. One bucket per (stack, block
 * size, invocation), found through a chained hash table: lookups walk a
 * chain without a lock (buckets are published with a release store and
 * never freed or moved); inserts take bucket_lock and re-check the chain
 * first. Memory comes from the arena, so a full arena makes
 * agent__bucket_get return NULL and the sample is dropped (counted).
 *
 * Counters. Each bucket keeps `active` (what profiles show) and future[3]:
 *
 *            cycle c                 advance to c+1           advance to c+2
 *   alloc -> future[(c+2)%3]  ...................................-> active
 *   free  -> future[(c+1)%3]  ------> active   (block from an earlier cycle)
 *   free  -> future[(c+2)%3]  ...................................-> active
 *            (block allocated in this same cycle: see agent__free_slot)
 *
 * Advancing the cycle to C folds future[C%3] into active and zeroes it, so
 * a block shows in active two cycles after its allocation, and a block
 * that lived less than a cycle never shows as in use. Writers add to
 * future slots with relaxed atomics and never touch the slot being folded
 * (C%3 is neither (C+1)%3 nor (C+2)%3); a writer that read the cycle just
 * before an advance may still add to it, which is why the fold takes the
 * value with an atomic exchange: such a late add is published one round
 * later, never lost.
 *
 * Only buckets with something in slot s are folded when s comes round: the
 * first add to an empty slot puts the bucket on that slot's pending list
 * (a lock-free stack; a flag keeps it there once), and the advance takes
 * the whole list. Walking every bucket made each cycle end O(buckets):
 * with a request label per invocation (up to 1023 labels times the sampled
 * stacks) an invocation's end cost ~380 us at 16k buckets, now ~4 us.
 * Ordering: the fold clears the flag, then takes the counts with acq_rel
 * exchanges; a writer whose acq_rel add reads that zero sees the flag
 * clear and lists the bucket again. A writer held up between its add and
 * its listing has its add folded a round later, as above.
 */
#include "internal.h"

#include <string.h>

/* 16k chains (128 KiB): a hash spreads even a few buckets over every page
 * of the table, so its size is RSS; chains stay short up to tens of
 * thousands of buckets. */
#define BUCKET_HASH_SLOTS ((size_t)1 << 14)

_Atomic uint64_t agent__cycle;
pthread_mutex_t agent__cycle_lock = PTHREAD_MUTEX_INITIALIZER;

/* Serializes bucket creation (chains and the all-buckets list). */
static pthread_mutex_t bucket_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(agent__bucket *) *bucket_table; /* arena, BUCKET_HASH_SLOTS */
static _Atomic(agent__bucket *) bucket_all_head;
static _Atomic uint32_t bucket_n;

int agent__buckets_init(void) {
  if (bucket_table)
    return 0;
  bucket_table = agent__arena_alloc(BUCKET_HASH_SLOTS * sizeof(*bucket_table));
  return bucket_table ? 0 : -12 /* -ENOMEM */;
}

/* Go's hash: Jenkins' one-at-a-time over machine words. */
static uint64_t stack_hash(const uintptr_t *pc, int npc, uint64_t size,
                           uint32_t req) {
  uint64_t h = 0;
  for (int i = 0; i < npc; i++) {
    h += pc[i];
    h += h << 10;
    h ^= h >> 6;
  }
  h += size;
  h += h << 10;
  h ^= h >> 6;
  h += req;
  h += h << 10;
  h ^= h >> 6;
  h += h << 3;
  h ^= h >> 11;
  return h;
}

static bool bucket_eq(const agent__bucket *b, uint64_t h, const uintptr_t *pc,
                      int npc, uint64_t size, uint32_t req) {
  return b->hash == h && b->size == size && b->req == req &&
         b->npc == (uint32_t)npc &&
         memcmp(b->pc, pc, (size_t)npc * sizeof(*pc)) == 0;
}

static agent__bucket *chain_find(agent__bucket *b, uint64_t h,
                                 const uintptr_t *pc, int npc, uint64_t size,
                                 uint32_t req) {
  for (; b; b = atomic_load_explicit(&b->next, memory_order_acquire))
    if (bucket_eq(b, h, pc, npc, size, req))
      return b;
  return NULL;
}

agent__bucket *agent__bucket_get(const uintptr_t *pc, int npc, uint64_t size,
                                 uint32_t req) {
  if (!bucket_table)
    return NULL;
  uint64_t h = stack_hash(pc, npc, size, req);
  _Atomic(agent__bucket *) *slot = &bucket_table[h % BUCKET_HASH_SLOTS];
  agent__bucket *head = atomic_load_explicit(slot, memory_order_acquire);
  agent__bucket *b = chain_find(head, h, pc, npc, size, req);
  if (b)
    return b;
  pthread_mutex_lock(&bucket_lock);
  head = atomic_load_explicit(slot, memory_order_acquire);
  b = chain_find(head, h, pc, npc, size, req); /* re-check under the lock */
  if (!b) {
    b = agent__arena_alloc(sizeof(*b) + (size_t)npc * sizeof(uintptr_t));
    if (b) {
      memset(b, 0, sizeof(*b));
      b->hash = h;
      b->size = size;
      b->req = req;
      b->npc = (uint32_t)npc;
      memcpy(b->pc, pc, (size_t)npc * sizeof(*pc));
      b->id = atomic_load_explicit(&bucket_n, memory_order_relaxed) + 1;
      atomic_store_explicit(&b->next, head, memory_order_relaxed);
      b->allnext = atomic_load_explicit(&bucket_all_head, memory_order_relaxed);
      atomic_store_explicit(&bucket_all_head, b, memory_order_release);
      atomic_store_explicit(&bucket_n, b->id, memory_order_release);
      atomic_store_explicit(slot, b, memory_order_release);
    }
  }
  pthread_mutex_unlock(&bucket_lock);
  return b;
}

agent__bucket *agent__bucket_all(void) {
  return atomic_load_explicit(&bucket_all_head, memory_order_acquire);
}

uint32_t agent__bucket_count(void) {
  return atomic_load_explicit(&bucket_n, memory_order_acquire);
}

/* Heads of the per-slot lists of buckets with something to fold. */
static _Atomic(agent__bucket *) pending_head[3];

static void list_pending(agent__bucket *b, unsigned s) {
  if (atomic_exchange_explicit(&b->pending[s], 1, memory_order_acq_rel))
    return; /* already listed */
  agent__bucket *head =
      atomic_load_explicit(&pending_head[s], memory_order_relaxed);
  do
    atomic_store_explicit(&b->pending_next[s], head, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(
      &pending_head[s], &head, b, memory_order_release, memory_order_relaxed));
}

void agent__bucket_record_alloc(agent__bucket *b, uint64_t size, uint64_t c) {
  unsigned s = agent__alloc_slot(c);
  agent__atomic_counts *f = &b->future[s];
  atomic_fetch_add_explicit(&f->alloc_bytes, size, memory_order_relaxed);
  if (atomic_fetch_add_explicit(&f->allocs, 1, memory_order_acq_rel) == 0)
    list_pending(b, s);
}

void agent__bucket_record_free(agent__bucket *b, uint64_t size, uint64_t c,
                               uint32_t alloc_cycle) {
  unsigned s = agent__free_slot(c, alloc_cycle);
  agent__atomic_counts *f = &b->future[s];
  atomic_fetch_add_explicit(&f->free_bytes, size, memory_order_relaxed);
  if (atomic_fetch_add_explicit(&f->frees, 1, memory_order_acq_rel) == 0)
    list_pending(b, s);
}

/* After the caller cleared the bucket's pending flag (see the top
 * comment). Writers add bytes, then the count (acq_rel); the fold takes the
 * counts (acq_rel), then the bytes: an add whose count the fold took has
 * its bytes taken too, and one whose count came after finds zero and lists
 * the bucket again, bytes and all. */
static void fold(agent__bucket *b, unsigned s) {
  agent__atomic_counts *f = &b->future[s];
  b->active.allocs +=
      atomic_exchange_explicit(&f->allocs, 0, memory_order_acq_rel);
  b->active.frees +=
      atomic_exchange_explicit(&f->frees, 0, memory_order_acq_rel);
  b->active.alloc_bytes +=
      atomic_exchange_explicit(&f->alloc_bytes, 0, memory_order_relaxed);
  b->active.free_bytes +=
      atomic_exchange_explicit(&f->free_bytes, 0, memory_order_relaxed);
}

uint64_t agent__cycle_advance_locked(void) {
  uint64_t c = atomic_load_explicit(&agent__cycle, memory_order_relaxed) + 1;
  unsigned s = (unsigned)(c % 3);
  atomic_store_explicit(&agent__cycle, c, memory_order_release);
  agent__bucket *b =
      atomic_exchange_explicit(&pending_head[s], NULL, memory_order_acquire);
  while (b) {
    /* The link first: once the flag is clear a writer may list b again. */
    agent__bucket *next =
        atomic_load_explicit(&b->pending_next[s], memory_order_relaxed);
    atomic_store_explicit(&b->pending[s], 0, memory_order_seq_cst);
    fold(b, s);
    b = next;
  }
  return c;
}

void agent__settle_all_locked(void) {
  for (agent__bucket *b = agent__bucket_all(); b; b = b->allnext)
    for (unsigned s = 0; s < 3; s++)
      fold(b, s);
}

void agent__buckets_lock_all(void) { pthread_mutex_lock(&bucket_lock); }
void agent__buckets_unlock_all(void) { pthread_mutex_unlock(&bucket_lock); }
void agent__buckets_reset_locks(void) {
  pthread_mutex_init(&bucket_lock, NULL);
  pthread_mutex_init(&agent__cycle_lock, NULL);
}
