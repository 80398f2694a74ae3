/* heap_rules.c: when mallinfo2 may run again (a preempted call on a small
 * heap is not an expensive heap), and which heaps the spike rule compares
 * (no estimates among exact values). */
#include "internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static void test_mallinfo_wait(void **state) {
  (void)state;
  /* Cheap: small heap, quick call. */
  assert_int_equal(agent__mallinfo_wait_ns(1500, 200), 0);
  /* Preempted: 3 ms on 100 free chunks is 8 us of walk at most: cheap. */
  assert_int_equal(agent__mallinfo_wait_ns(3000000, 100), 0);
  /* Dear: 2.5 ms over 50k chunks waits a hundred times that. */
  assert_int_equal(agent__mallinfo_wait_ns(2500000, 50000), 250000000);
  /* The walk bounds the cost: 50 ms taken over 50k chunks counts 3 ms. */
  assert_int_equal(agent__mallinfo_wait_ns(50000000, 50000), 300200000);
}

static agent__cycle_rec rec(int64_t exact, int64_t est) {
  agent__cycle_rec r = {.exact_live_bytes = exact, .est_live_bytes = est};
  return r;
}

static void test_spike_heap(void **state) {
  bool seen = false;
  int64_t cur = 0;
  agent__cycle_rec r;
  (void)state;
  /* Estimates count while no exact number was ever told (jemalloc). */
  r = rec(-1, 7 << 20);
  assert_int_equal(agent__spike_heap(&r, &seen, &cur), 0);
  assert_int_equal(cur, 7 << 20);
  assert_false(seen);
  r = rec(12 << 20, 9 << 20);
  assert_int_equal(agent__spike_heap(&r, &seen, &cur), 0);
  assert_int_equal(cur, 12 << 20);
  assert_true(seen);
  /* After that, a cycle with only an estimate is left out. */
  r = rec(-1, 6 << 20);
  assert_int_equal(agent__spike_heap(&r, &seen, &cur), -1);
  assert_true(seen);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mallinfo_wait),
      cmocka_unit_test(test_spike_heap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
