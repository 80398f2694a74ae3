/* Buckets: lookup/insert identity, and the active + future[3] slot
 * arithmetic of DESIGN.md "The heap cycle, in C". */
#include "internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>

static int64_t inuse(const agent__bucket *b) {
  return (int64_t)(b->active.alloc_bytes - b->active.free_bytes);
}

static void advance(void) {
  pthread_mutex_lock(&agent__cycle_lock);
  agent__cycle_advance_locked();
  pthread_mutex_unlock(&agent__cycle_lock);
}

static agent__bucket *bucket_with(uintptr_t leaf, uint64_t size) {
  uintptr_t pcs[3] = {leaf, 0x401000, 0x400500};
  return agent__bucket_get(pcs, 3, size, 0);
}

static void test_same_key_same_bucket(void **state) {
  (void)state;
  assert_int_equal(agent__buckets_init(), 0);
  agent__bucket *a = bucket_with(0x1000, 64);
  agent__bucket *b = bucket_with(0x1000, 64);
  agent__bucket *c = bucket_with(0x1000, 128); /* size is part of the key */
  agent__bucket *d = bucket_with(0x1001, 64);
  assert_non_null(a);
  assert_ptr_equal(a, b);
  assert_ptr_not_equal(a, c);
  assert_ptr_not_equal(a, d);
  uintptr_t pcs[1] = {0x1000};
  assert_ptr_not_equal(agent__bucket_get(pcs, 1, 64, 0), a); /* depth too */
  assert_ptr_not_equal(agent__bucket_get(pcs, 1, 64, 7),     /* request too */
                       agent__bucket_get(pcs, 1, 64, 0));
}

/* A block allocated and freed within one cycle never shows as in use, at
 * any cycle, and its allocation is still counted once published. */
static void test_short_lived_never_reaches_active(void **state) {
  (void)state;
  assert_int_equal(agent__buckets_init(), 0);
  agent__bucket *b = bucket_with(0x2000, 100);
  uint64_t c = atomic_load(&agent__cycle);
  agent__bucket_record_alloc(b, 100, c);
  agent__bucket_record_free(b, 100, c, (uint32_t)c);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(inuse(b), 0);
    assert_true(b->active.frees <= b->active.allocs);
    advance();
  }
  assert_int_equal(b->active.allocs, 1);
  assert_int_equal(b->active.frees, 1);
}

/* A long-lived block appears in active exactly two cycles after its
 * allocation, and its free from a later cycle one cycle after the free. */
static void test_long_lived_after_two_cycles(void **state) {
  (void)state;
  assert_int_equal(agent__buckets_init(), 0);
  agent__bucket *b = bucket_with(0x3000, 4096);
  uint64_t c0 = atomic_load(&agent__cycle);
  agent__bucket_record_alloc(b, 4096, c0);
  assert_int_equal(inuse(b), 0);
  advance(); /* c0 + 1 */
  assert_int_equal(inuse(b), 0);
  advance(); /* c0 + 2: published */
  assert_int_equal(inuse(b), 4096);
  assert_int_equal(b->active.allocs, 1);
  advance(); /* c0 + 3 */
  uint64_t c3 = atomic_load(&agent__cycle);
  agent__bucket_record_free(b, 4096, c3, (uint32_t)c0);
  assert_int_equal(inuse(b), 4096);
  advance(); /* the free lands in (c3+1)%3, folded now */
  assert_int_equal(inuse(b), 0);
  assert_int_equal(b->active.frees, 1);
}

/* A free of a block from the previous cycle never runs ahead of its
 * allocation either (alloc in (c+2)%3 and free in (c'+1)%3 = same slot). */
static void test_free_next_cycle_same_publication(void **state) {
  (void)state;
  assert_int_equal(agent__buckets_init(), 0);
  agent__bucket *b = bucket_with(0x4000, 10);
  uint64_t c0 = atomic_load(&agent__cycle);
  agent__bucket_record_alloc(b, 10, c0);
  advance();
  agent__bucket_record_free(b, 10, atomic_load(&agent__cycle), (uint32_t)c0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(inuse(b), 0);
    advance();
  }
  assert_int_equal(b->active.allocs, 1);
}

static void test_settle_all(void **state) {
  (void)state;
  assert_int_equal(agent__buckets_init(), 0);
  agent__bucket *b = bucket_with(0x5000, 32);
  agent__bucket_record_alloc(b, 32, atomic_load(&agent__cycle));
  assert_int_equal(inuse(b), 0);
  pthread_mutex_lock(&agent__cycle_lock);
  agent__settle_all_locked();
  pthread_mutex_unlock(&agent__cycle_lock);
  assert_int_equal(inuse(b), 32);
  for (int s = 0; s < 3; s++)
    assert_int_equal(atomic_load(&b->future[s].allocs), 0);
}

/* Concurrent first lookups of the same keys create each bucket once. */
#define RACE_THREADS 4
#define RACE_KEYS 2000
static agent__bucket *seen[RACE_THREADS][RACE_KEYS];

static void *race(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int k = 0; k < RACE_KEYS; k++) {
    uintptr_t pcs[2] = {0x100000 + (uintptr_t)k * 16, 0x200000};
    seen[t][k] = agent__bucket_get(pcs, 2, 8, 0);
  }
  return NULL;
}

static void test_concurrent_insert(void **state) {
  (void)state;
  assert_int_equal(agent__buckets_init(), 0);
  uint32_t before = agent__bucket_count();
  pthread_t th[RACE_THREADS];
  for (int t = 0; t < RACE_THREADS; t++)
    pthread_create(&th[t], NULL, race, (void *)(intptr_t)t);
  for (int t = 0; t < RACE_THREADS; t++)
    pthread_join(th[t], NULL);
  for (int k = 0; k < RACE_KEYS; k++)
    for (int t = 1; t < RACE_THREADS; t++)
      assert_ptr_equal(seen[t][k], seen[0][k]);
  assert_int_equal(agent__bucket_count() - before, RACE_KEYS);
  size_t n = 0;
  for (agent__bucket *b = agent__bucket_all(); b; b = b->allnext)
    n++;
  assert_int_equal(n, agent__bucket_count());
}

/* Only buckets with something in a slot are folded when it comes round
 * (their pending lists): against a model that folds every bucket each
 * advance, as Go does, over random allocations and frees of many buckets,
 * every bucket's active counts agree after every advance. */
#define MODEL_BUCKETS 300
static void test_pending_lists_match_full_fold(void **state) {
  (void)state;
  assert_int_equal(agent__buckets_init(), 0);
  static agent__bucket *b[MODEL_BUCKETS];
  static uint64_t fut[MODEL_BUCKETS][3][2], act[MODEL_BUCKETS][2],
      base[MODEL_BUCKETS][2];
  for (int i = 0; i < MODEL_BUCKETS; i++) {
    uintptr_t pcs[2] = {0x700000 + (uintptr_t)i * 16, 0x200000};
    b[i] = agent__bucket_get(pcs, 2, 48, 0);
    assert_non_null(b[i]);
    pthread_mutex_lock(&agent__cycle_lock);
    agent__settle_all_locked();
    pthread_mutex_unlock(&agent__cycle_lock);
    base[i][0] = b[i]->active.alloc_bytes;
    base[i][1] = b[i]->active.free_bytes;
  }
  uint64_t r = 88172645463325252ULL;
  for (int step = 0; step < 200; step++) {
    uint64_t c = atomic_load(&agent__cycle);
    for (int k = 0; k < 40; k++) { /* a few buckets per cycle */
      r ^= r << 13, r ^= r >> 7, r ^= r << 17;
      int i = (int)(r % MODEL_BUCKETS);
      uint64_t size = 16 + (r >> 40) % 512;
      if ((r >> 20) % 2) {
        agent__bucket_record_alloc(b[i], size, c);
        fut[i][agent__alloc_slot(c)][0] += size;
      } else {
        uint32_t born = (uint32_t)(c - (r >> 24) % 3);
        agent__bucket_record_free(b[i], size, c, born);
        fut[i][agent__free_slot(c, born)][1] += size;
      }
    }
    advance();
    unsigned s = (unsigned)(atomic_load(&agent__cycle) % 3);
    for (int i = 0; i < MODEL_BUCKETS; i++) {
      act[i][0] += fut[i][s][0], act[i][1] += fut[i][s][1];
      fut[i][s][0] = fut[i][s][1] = 0;
      assert_int_equal(b[i]->active.alloc_bytes - base[i][0], act[i][0]);
      assert_int_equal(b[i]->active.free_bytes - base[i][1], act[i][1]);
    }
  }
}

/* Writers on several threads and cycle ends on another: once the writers
 * are done, three more advances bring every add into active, none lost
 * to a bucket left off its list, none counted twice. */
#define PEND_THREADS 3
#define PEND_ADDS 200000
#define PEND_KEYS 64
static agent__bucket *pend_b[PEND_KEYS];
static _Atomic int pend_done;

static void *pend_writer(void *arg) {
  uint64_t r = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL | 1;
  for (int k = 0; k < PEND_ADDS; k++) {
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    agent__bucket_record_alloc(pend_b[r % PEND_KEYS], 1,
                               atomic_load(&agent__cycle));
  }
  return NULL;
}

static void *pend_advancer(void *arg) {
  (void)arg;
  while (!atomic_load(&pend_done))
    advance();
  return NULL;
}

static void test_pending_lists_concurrent(void **state) {
  (void)state;
  assert_int_equal(agent__buckets_init(), 0);
  uint64_t before = 0, before_bytes = 0;
  pthread_mutex_lock(&agent__cycle_lock);
  agent__settle_all_locked();
  pthread_mutex_unlock(&agent__cycle_lock);
  for (int k = 0; k < PEND_KEYS; k++) {
    uintptr_t pcs[2] = {0x900000 + (uintptr_t)k * 16, 0x200000};
    pend_b[k] = agent__bucket_get(pcs, 2, 8, 0);
    before += pend_b[k]->active.allocs;
    before_bytes += pend_b[k]->active.alloc_bytes;
  }
  pthread_t w[PEND_THREADS], adv;
  pthread_create(&adv, NULL, pend_advancer, NULL);
  for (int t = 0; t < PEND_THREADS; t++)
    pthread_create(&w[t], NULL, pend_writer, (void *)(uintptr_t)(t + 1));
  for (int t = 0; t < PEND_THREADS; t++)
    pthread_join(w[t], NULL);
  atomic_store(&pend_done, 1);
  pthread_join(adv, NULL);
  for (int i = 0; i < 3; i++)
    advance();
  uint64_t allocs = 0, bytes = 0;
  for (int k = 0; k < PEND_KEYS; k++) {
    allocs += pend_b[k]->active.allocs;
    bytes += pend_b[k]->active.alloc_bytes;
  }
  assert_int_equal(allocs - before, (uint64_t)PEND_THREADS * PEND_ADDS);
  assert_int_equal(bytes - before_bytes, (uint64_t)PEND_THREADS * PEND_ADDS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_key_same_bucket),
      cmocka_unit_test(test_short_lived_never_reaches_active),
      cmocka_unit_test(test_long_lived_after_two_cycles),
      cmocka_unit_test(test_free_next_cycle_same_publication),
      cmocka_unit_test(test_settle_all),
      cmocka_unit_test(test_concurrent_insert),
      cmocka_unit_test(test_pending_lists_match_full_fold),
      cmocka_unit_test(test_pending_lists_concurrent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
