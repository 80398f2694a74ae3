/*
 * pprof_top: flat is the leaf (innermost inline) frame's, cum counts each
 * function once per sample (recursion included), names are display names,
 * sorting is by magnitude then name, and it stays linear on big profiles.
 */
#include "ops_fixture.h"

#include <time.h>

typedef struct top {
  pprof_top_entry *e;
  size_t n;
  int64_t total;
} top;

static top run_top(const pprof_profile *p, pprof_sort sort) {
  top t = {0};
  assert_int_equal(pprof_top(p, 0, sort, &t.e, &t.n, &t.total), 0);
  return t;
}

static void expect(const top *t, size_t i, const char *name, int64_t flat,
                   int64_t cum) {
  assert_true(i < t->n);
  assert_string_equal(t->e[i].name, name);
  assert_int_equal(t->e[i].flat, flat);
  assert_int_equal(t->e[i].cum, cum);
}

static void top_counts_recursion_once(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(p, 1, 0, 0x10, "a");
  FX_LOC(p, 2, 0, 0x20, "b");
  FX_LOC(p, 3, 0, 0x30, "main");
  FX_SAMPLE(p, ((int64_t[]){10}), 1, 2, 1, 3); /* main -> a -> b -> a */
  FX_SAMPLE(p, ((int64_t[]){5}), 2, 3);        /* main -> b */
  top t = run_top(p, PPROF_SORT_FLAT);
  assert_int_equal(t.total, 15);
  assert_int_equal(t.n, 3);
  expect(&t, 0, "a", 10, 10); /* twice on the stack, counted once */
  expect(&t, 1, "b", 5, 15);
  expect(&t, 2, "main", 0, 15);
  free(t.e);
  t = run_top(p, PPROF_SORT_CUM);
  expect(&t, 0, "b", 5, 15); /* tie with main: by name */
  expect(&t, 1, "main", 0, 15);
  expect(&t, 2, "a", 10, 10);
  free(t.e);
  pprof_profile_free(p);
}

static void top_attributes_flat_to_innermost_inline(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(p, 1, 0, 0x10, "inl", "outer"); /* inl inlined into outer */
  FX_LOC(p, 2, 0, 0x20, "main");
  FX_LOC(p, 4, 0, 0x40, "outer");
  FX_SAMPLE(p, ((int64_t[]){7}), 1, 2);
  FX_SAMPLE(p, ((int64_t[]){3}), 4, 2);
  top t = run_top(p, PPROF_SORT_CUM);
  assert_int_equal(t.total, 10);
  assert_int_equal(t.n, 3);
  expect(&t, 0, "main", 0, 10);
  expect(&t, 1, "outer", 3, 10);
  expect(&t, 2, "inl", 7, 7);
  free(t.e);
  pprof_profile_free(p);
}

static void top_names_addresses_and_merges_equal_names(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  pprof_location raw = {.id = 1, .address = 0x401000};
  assert_int_equal(pprof_add_location(p, &raw), 0);
  FX_LOC(p, 2, 0, 0x20, "main");
  FX_LOC(p, 3, 0, 0x30, "dup");
  /* A second function of the same name elsewhere (say a static one). */
  pprof_function f = {.id = 999,
                      .name = pprof_string(p, "dup"),
                      .filename = pprof_string(p, "other.c")};
  assert_int_equal(pprof_add_function(p, &f), 0);
  pprof_line line = {999, 5, 0};
  pprof_location l = {.id = 4, .address = 0x40, .line = &line, .n_line = 1};
  assert_int_equal(pprof_add_location(p, &l), 0);
  FX_SAMPLE(p, ((int64_t[]){4}), 1, 2);
  FX_SAMPLE(p, ((int64_t[]){1}), 3, 2);
  FX_SAMPLE(p, ((int64_t[]){2}), 4, 2);
  FX_SAMPLE(p, ((int64_t[]){0}), 3); /* zero: changes nothing */
  top t = run_top(p, PPROF_SORT_FLAT);
  assert_int_equal(t.total, 7);
  assert_int_equal(t.n, 3);
  expect(&t, 0, "0x401000", 4, 4);
  expect(&t, 1, "dup", 3, 3);
  expect(&t, 2, "main", 0, 7);
  pprof_profile_free(p);
  /* The address name lives in the result block, not in the profile. */
  assert_string_equal(t.e[0].name, "0x401000");
  free(t.e);
}

static void top_sorts_by_magnitude_for_diffs(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(p, 1, 0, 0x10, "shrank");
  FX_LOC(p, 2, 0, 0x20, "grew");
  FX_LOC(p, 3, 0, 0x30, "gone");
  FX_SAMPLE(p, ((int64_t[]){-20}), 1);
  FX_SAMPLE(p, ((int64_t[]){5}), 2);
  FX_SAMPLE(p, ((int64_t[]){5}), 3);
  FX_SAMPLE(p, ((int64_t[]){-5}), 3); /* cancels: no entry */
  top t = run_top(p, PPROF_SORT_FLAT);
  assert_int_equal(t.total, 35); /* |-20| + 5 + 5 + |-5|, as pprof's */
  assert_int_equal(t.n, 2);
  expect(&t, 0, "shrank", -20, -20);
  expect(&t, 1, "grew", 5, 5);
  free(t.e);
  pprof_profile_free(p);
}

static void top_rejects_bad_input(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  pprof_top_entry *e = (pprof_top_entry *)1;
  size_t n = 7;
  assert_int_equal(pprof_top(p, -1, PPROF_SORT_FLAT, &e, &n, NULL), FNP_EUSAGE);
  assert_int_equal(pprof_top(p, 1, PPROF_SORT_FLAT, &e, &n, NULL), FNP_EUSAGE);
  assert_int_equal(pprof_top(p, 0, (pprof_sort)7, &e, &n, NULL), FNP_EUSAGE);
  assert_int_equal(pprof_top(NULL, 0, PPROF_SORT_FLAT, &e, &n, NULL),
                   FNP_EUSAGE);
  assert_int_equal(pprof_top(p, 0, PPROF_SORT_FLAT, &e, &n, NULL), 0);
  assert_int_equal(n, 0); /* empty profile: empty answer */
  free(e);
  FX_SAMPLE(p, ((int64_t[]){1}), 42); /* dangling location id */
  assert_int_equal(pprof_top(p, 0, PPROF_SORT_FLAT, &e, &n, NULL), FNP_EPARSE);
  assert_null(e);
  assert_int_equal(n, 0);
  pprof_profile_free(p);
}

#define BIG_FUNCTIONS 5000
#define BIG_SAMPLES 50000
#define BIG_DEPTH 20
/* Linear work here takes a few ms; a quadratic pass over 50k samples x 5k
 * names would take seconds. The bound leaves room for sanitizers and a
 * busy machine. */
#define BIG_MAX_MS 250

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void top_is_linear_on_big_profiles(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  char name[32];
  for (uint64_t i = 1; i <= BIG_FUNCTIONS; i++) {
    snprintf(name, sizeof name, "fn%llu", (unsigned long long)i);
    FX_LOC(p, i, 0, 0x1000 + i, name);
  }
  FX_LOC(p, BIG_FUNCTIONS + 1, 0, 0x10, "main");
  uint64_t stack[BIG_DEPTH], rng = 12345;
  int64_t total = 0;
  for (int64_t s = 0; s < BIG_SAMPLES; s++) {
    for (int k = 0; k < BIG_DEPTH - 1; k++) {
      rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
      stack[k] = 1 + (rng >> 33) % BIG_FUNCTIONS;
    }
    stack[BIG_DEPTH - 1] = BIG_FUNCTIONS + 1;
    int64_t v = 1 + s % 97;
    total += v;
    assert_int_equal(pprof_add_sample(p, stack, BIG_DEPTH, &v, NULL, 0), 0);
  }
  double t0 = now_ms();
  top t = run_top(p, PPROF_SORT_CUM);
  double ms = now_ms() - t0;
  if (ms > BIG_MAX_MS)
    fail_msg("pprof_top took %.1f ms", ms);
  assert_int_equal(t.total, total);
  expect(&t, 0, "main", 0, total);
  free(t.e);
  pprof_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(top_counts_recursion_once),
      cmocka_unit_test(top_attributes_flat_to_innermost_inline),
      cmocka_unit_test(top_names_addresses_and_merges_equal_names),
      cmocka_unit_test(top_sorts_by_magnitude_for_diffs),
      cmocka_unit_test(top_rejects_bad_input),
      cmocka_unit_test(top_is_linear_on_big_profiles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
