/*
 * Every operation fails cleanly when any one of its allocations fails: it
 * returns -ENOMEM, hands out nothing, and leaks nothing (run under ASan's
 * leak checker in the sanitizer build). The Nth allocation fails for every
 * N until the operation gets through (tests/unit/fail_alloc.h).
 */
#include "ops_fixture.h"

#include <errno.h>

#include "fail_alloc.h"

/* Enough of everything that every code path allocates: two sample types,
 * a mapping, inline and raw frames, labels, comments. */
static pprof_profile *make(uint64_t load, int64_t scale) {
  pprof_profile *p =
      fx_new("inuse_objects", "count", "inuse_space", "bytes", NULL);
  fx_mapping(p, 1, load, "/srv/app", "feedbeef");
  FX_LOC(p, 1, 1, load + 0x100, "inl", "parse");
  FX_LOC(p, 2, 1, load + 0x200, "main");
  FX_LOC(p, 3, 1, load + 0x300, "cache_put");
  pprof_location raw = {.id = 4, .mapping_id = 1, .address = load + 0x400};
  assert_int_equal(pprof_add_location(p, &raw), 0);
  FX_SAMPLE(p, ((int64_t[]){1, 100}), 1, 2);
  FX_SAMPLE(p, ((int64_t[]){scale, 64 * scale}), 3, 4, 2);
  pprof_label l[] = {{pprof_string(p, "bytes"), 0, 64, 0},
                     {pprof_string(p, "route"), pprof_string(p, "/x"), 0, 0}};
  uint64_t st[] = {3, 2};
  assert_int_equal(pprof_add_sample(p, st, 2, (int64_t[]){2, 128}, l, 2), 0);
  assert_int_equal(pprof_add_comment(p, "cycle 1"), 0);
  return p;
}

typedef int (*op_fn)(const pprof_profile *base, const pprof_profile *cur);

/* Runs op with allocation N failing, for N = 0, 1, ... until it succeeds. */
static void fail_each_allocation(op_fn op, const char *what) {
  pprof_profile *base = make(0x400000, 1), *cur = make(0x7f0000000000, 3);
  long n;
  for (n = 0;; n++) {
    fail_alloc_arm(n);
    int rc = op(base, cur);
    fail_alloc_disarm();
    if (rc == 0)
      break;
    if (rc != -ENOMEM)
      fail_msg("%s: allocation %ld failed, got %d (%s)", what, n, rc,
               fnp_strerror(rc));
  }
  assert_true(n > 0); /* it does allocate, so the loop tested something */
  pprof_profile_free(base);
  pprof_profile_free(cur);
}

static int op_merge(const pprof_profile *base, const pprof_profile *cur) {
  const pprof_profile *in[] = {base, cur};
  pprof_profile *out = (pprof_profile *)1;
  fnp_error err;
  int rc = pprof_merge(in, 2, &out, &err);
  if (rc == 0) {
    assert_int_equal(out->n_sample, 3);
    pprof_profile_free(out);
  } else {
    assert_null(out);
    assert_int_equal(err.code, rc);
  }
  return rc;
}

/* cur - base leaves one sample changed and two cancelled: the clean-up
 * pass runs too. */
static int op_diff(const pprof_profile *base, const pprof_profile *cur) {
  pprof_profile *out = (pprof_profile *)1;
  int rc = pprof_diff(base, cur, &out, NULL);
  if (rc == 0) {
    assert_int_equal(out->n_sample, 1);
    pprof_profile_free(out);
  } else {
    assert_null(out);
  }
  return rc;
}

static int op_top(const pprof_profile *base, const pprof_profile *cur) {
  (void)base;
  pprof_top_entry *e = (pprof_top_entry *)1;
  size_t n;
  int rc = pprof_top(cur, 1, PPROF_SORT_CUM, &e, &n, NULL);
  if (rc != 0)
    assert_null(e);
  free(e);
  return rc;
}

static int op_folded(const pprof_profile *base, const pprof_profile *cur) {
  (void)base;
  FILE *out = fopen("/dev/null", "w");
  assert_non_null(out);
  int rc = pprof_write_folded(cur, 1, out);
  fclose(out);
  return rc;
}

static int op_flame(const pprof_profile *base, const pprof_profile *cur) {
  (void)base;
  FILE *out = fopen("/dev/null", "w");
  assert_non_null(out);
  int rc = pprof_write_flame_svg(cur, 1, NULL, out);
  fclose(out);
  return rc;
}

static void alloc_fail_merge(void **state) {
  (void)state;
  fail_each_allocation(op_merge, "merge");
}
static void alloc_fail_diff(void **state) {
  (void)state;
  fail_each_allocation(op_diff, "diff");
}
static void alloc_fail_top(void **state) {
  (void)state;
  fail_each_allocation(op_top, "top");
}
static void alloc_fail_folded(void **state) {
  (void)state;
  fail_each_allocation(op_folded, "folded");
}
static void alloc_fail_flame(void **state) {
  (void)state;
  fail_each_allocation(op_flame, "flame");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(alloc_fail_merge), cmocka_unit_test(alloc_fail_diff),
      cmocka_unit_test(alloc_fail_top),   cmocka_unit_test(alloc_fail_folded),
      cmocka_unit_test(alloc_fail_flame),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
