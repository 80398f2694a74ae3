/* The owned region: the one-compare ownership test, placement, alignment,
 * usable sizes, reuse of freed slots and spans (resident ones first), the
 * bootstrap pool. */
#include "internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

static int setup(void **state) {
  (void)state;
  return agent__region_init();
}

/* Freed spans over the dirty cap give their pages back; a request takes a
 * span whose pages are still resident before one that gave them back (no
 * refaults, and dirty_bytes falls so the next free can stay resident).
 * Runs first, so no other test's spans count against the cap. */
static void test_dirty_spans_reused_first(void **state) {
  (void)state;
  enum { N = 8 };
  const size_t size = (size_t)3 << 20; /* a 3.5 MiB span: 4 fit in 16 MiB */
  const size_t probe = 8192;           /* past the page holding the link */
  agent__region_set_dirty_cap(0);      /* the 16 MiB minimum */
  unsigned char *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = agent__region_alloc(size, 16, 0);
    assert_non_null(p[i]);
    p[i][probe] = 0xab;
  }
  for (int i = 0; i < N; i++)
    agent__region_free(p[i]);
  int dirty = 0, clean = 0;
  for (int i = 0; i < N; i++) {
    p[i] = agent__region_alloc(size, 16, 0);
    assert_non_null(p[i]);
    if (p[i][probe] == 0xab) {
      assert_int_equal(clean, 0); /* no resident span after a returned one */
      dirty++;
    } else {
      assert_int_equal(p[i][probe], 0);
      clean++;
    }
  }
  assert_true(dirty > 0 && clean > 0); /* the test saw both kinds */
  for (int i = 0; i < N; i++)
    agent__region_free(p[i]);
}

/* A request whose span class has no resident span borrows one from a few
 * classes above (up to ~2x its pages) instead of fresh address space, so
 * freed spans serve neighbouring sizes; one far larger is not taken. */
static void test_resident_span_borrowed(void **state) {
  (void)state;
  void *big = agent__region_alloc(60 << 10, 16, 0); /* a 16-page span */
  void *huge = agent__region_alloc(1 << 20, 16, 0); /* a ~1 MiB span */
  assert_non_null(big);
  assert_non_null(huge);
  agent__region_free(big);
  agent__region_free(huge);
  void *small = agent__region_alloc(48 << 10, 16, 0); /* 13 pages */
  assert_ptr_equal(small, big); /* same slot start, same offset */
  assert_true(agent__region_usable(small) >= (60u << 10));
  void *tiny = agent__region_alloc(40 << 10, 16, 0); /* 11 pages */
  assert_ptr_not_equal(tiny, huge); /* 1 MiB is too far above */
  agent__region_free(small);
  agent__region_free(tiny);
}

static void test_owned_check(void **state) {
  (void)state;
  void *p = agent__region_alloc(100, 16, 0);
  assert_non_null(p);
  assert_true(agent__owned(p));
  int local;
  void *heap = malloc(100);
  assert_false(agent__owned(&local));
  assert_false(agent__owned(heap));
  assert_false(agent__owned(NULL));
  assert_false(agent__owned(test_owned_check));
  free(heap);
  agent__region_free(p);
}

static void test_sizes_and_alignment(void **state) {
  (void)state;
  const size_t sizes[] = {0, 1, 16, 100, 4000, 32768, 70000, 1 << 20, 5 << 20};
  const size_t aligns[] = {16, 32, 64, 4096, 65536};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
    for (size_t j = 0; j < sizeof(aligns) / sizeof(aligns[0]); j++) {
      char *p = agent__region_alloc(sizes[i], aligns[j], 0);
      assert_non_null(p);
      assert_int_equal((uintptr_t)p % aligns[j], 0);
      assert_true(agent__region_usable(p) >= sizes[i]);
      assert_int_equal(agent__hdr(p)->size, sizes[i]);
      memset(p, 0xab, agent__region_usable(p)); /* all of it is writable */
      agent__region_free(p);
    }
}

static void test_reuse(void **state) {
  (void)state;
  uint64_t r0 = agent__region_resident();
  void *a = agent__region_alloc(200, 16, 0);
  agent__region_free(a);
  void *b = agent__region_alloc(200, 16, 0);
  assert_ptr_equal(a, b); /* same class: the freed slot comes back */
  agent__region_free(b);
  void *big = agent__region_alloc(3 << 20, 16, 0);
  agent__region_free(big);
  void *big2 = agent__region_alloc(3 << 20, 16, 0);
  assert_ptr_equal(big, big2); /* the freed span is reused */
  agent__region_free(big2);
  assert_int_equal(agent__region_resident(), r0);
}

static void test_many_blocks(void **state) {
  (void)state;
  enum { N = 20000 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = agent__region_alloc((size_t)(i % 997) * 7, 16, 0);
    assert_non_null(p[i]);
    memset(p[i], i & 0xff, (size_t)(i % 997) * 7);
  }
  for (int i = 0; i < N; i++) {
    size_t n = (size_t)(i % 997) * 7;
    for (size_t k = 0; k < n; k += 61)
      assert_int_equal(((unsigned char *)p[i])[k], i & 0xff);
    agent__region_free(p[i]);
  }
}

/* A second free of the same block is ignored, whatever the size kind. */
static void test_double_free_ignored(void **state) {
  (void)state;
  const size_t sizes[] = {16, 3000, 40000, 2 << 20};
  for (size_t i = 0; i < 4; i++) {
    uint64_t r0 = agent__region_resident();
    void *p = agent__region_alloc(sizes[i], 64, 0);
    assert_true(agent__region_live(p));
    agent__region_free(p);
    assert_false(agent__region_live(p));
    agent__region_free(p); /* ignored */
    assert_int_equal(agent__region_resident(), r0);
    void *a = agent__region_alloc(sizes[i], 64, 0);
    void *b = agent__region_alloc(sizes[i], 64, 0);
    assert_ptr_not_equal(a, b); /* the free list was not corrupted */
    agent__region_free(a);
    agent__region_free(b);
  }
}

/* The owned blocks' statistics move with the region under its lock: a
 * sampled block (one with a bucket) counts once allocated and leaves them
 * when freed, whatever its size; a free from inside the region (a signal
 * handler's, deferred) is folded in by the next holder. */
static void test_owned_stats(void **state) {
  (void)state;
  static agent__bucket dummy; /* any non-NULL bucket marks a sample */
  agent__cfg.rate = 524288;
  agent__stats *st = &agent__st;
  uint64_t s0 = atomic_load(&st->samples), f0 = atomic_load(&st->sampled_frees);
  int64_t live0 = atomic_load(&st->est_live_bytes);
  int64_t own0 = atomic_load(&st->region_live_bytes);
  size_t sizes[] = {24, 4000, 300000, 2u << 20};
  void *p[4];
  for (int i = 0; i < 4; i++) {
    int64_t w = (int64_t)agent__sample_weight(sizes[i], agent__cfg.rate);
    p[i] = agent__region_alloc(sizes[i], 16, w);
    assert_non_null(p[i]);
    agent__hdr(p[i])->bucket = &dummy;
  }
  assert_int_equal(atomic_load(&st->samples), s0 + 4);
  assert_int_equal(atomic_load(&st->region_live_bytes),
                   own0 + 24 + 4000 + 300000 + (2 << 20));
  assert_true(atomic_load(&st->est_live_bytes) > live0);
  for (int i = 0; i < 3; i++)
    agent__region_free(p[i]);
  agent__region_lock_all(); /* as if a handler ran inside the region */
  agent__region_free(p[3]);
  agent__region_unlock_all();
  agent__region_lock_all(); /* the next holder folds the deferred free */
  agent__region_unlock_all();
  assert_int_equal(atomic_load(&st->sampled_frees), f0 + 4);
  assert_int_equal(atomic_load(&st->est_live_bytes), live0);
  assert_int_equal(atomic_load(&st->region_live_bytes), own0);
}

static void test_boot_pool(void **state) {
  (void)state;
  char *p = agent__region_boot_alloc(64);
  assert_non_null(p);
  assert_true(agent__owned(p));
  assert_true(agent__region_is_boot(p));
  for (int i = 0; i < 64; i++)
    assert_int_equal(p[i], 0);
  assert_true(agent__region_usable(p) >= 64);
  assert_null(agent__region_boot_alloc(1 << 20)); /* bounded */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dirty_spans_reused_first),
      cmocka_unit_test(test_resident_span_borrowed),
      cmocka_unit_test(test_owned_check),
      cmocka_unit_test(test_sizes_and_alignment),
      cmocka_unit_test(test_reuse),
      cmocka_unit_test(test_many_blocks),
      cmocka_unit_test(test_double_free_ignored),
      cmocka_unit_test(test_owned_stats),
      cmocka_unit_test(test_boot_pool),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
