/*
 * pprof_write_folded: one "root;...;leaf value" line per distinct name
 * stack, equal stacks added, zeros skipped, lines sorted by their text.
 */
#include "ops_fixture.h"

#include <errno.h>

static void expect_folded(const pprof_profile *p, int index, const char *want) {
  char *got = NULL;
  FX_CAPTURE(got, pprof_write_folded(p, index, out));
  assert_string_equal(got, want);
  free(got);
}

static void folded_merges_equal_stacks_sorted(void **state) {
  (void)state;
  pprof_profile *p =
      fx_new("alloc_space", "bytes", "inuse_space", "bytes", NULL);
  FX_LOC(p, 1, 0, 0x10, "inl", "outer");
  FX_LOC(p, 2, 0, 0x20, "main");
  FX_LOC(p, 3, 0, 0x30, "b");
  FX_LOC(p, 4, 0, 0x40, "a");
  FX_LOC(p, 5, 0, 0x50, "b"); /* another call site in b: same name stack */
  FX_SAMPLE(p, ((int64_t[]){7, 1}), 1, 2);
  FX_SAMPLE(p, ((int64_t[]){2, 2}), 3, 2);
  FX_SAMPLE(p, ((int64_t[]){3, 0}), 1, 2);
  FX_SAMPLE(p, ((int64_t[]){5, 0}), 4, 3, 2);
  FX_SAMPLE(p, ((int64_t[]){0, 0}), 4);
  FX_SAMPLE(p, ((int64_t[]){1, 9}), 5, 2);
  expect_folded(p, 0,
                "main;b 3\n"
                "main;b;a 5\n"
                "main;outer;inl 10\n");
  expect_folded(p, 1,
                "main;b 11\n"
                "main;outer;inl 1\n");
  pprof_profile_free(p);
}

static void folded_handles_diffs_and_odd_frames(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  pprof_location raw = {.id = 1, .address = 0x401000};
  assert_int_equal(pprof_add_location(p, &raw), 0);
  FX_LOC(p, 2, 0, 0x20, "main");
  FX_LOC(p, 3, 0, 0x30, "ns::f;g\nh"); /* separators inside a name */
  FX_SAMPLE(p, ((int64_t[]){-20}), 1, 2);
  FX_SAMPLE(p, ((int64_t[]){6}), 3, 2);
  assert_int_equal(pprof_add_sample(p, NULL, 0, (int64_t[]){4}, NULL, 0), 0);
  FX_SAMPLE(p, ((int64_t[]){5}), 2);
  FX_SAMPLE(p, ((int64_t[]){-5}), 2); /* cancels: no line */
  expect_folded(p, 0,
                "[unknown] 4\n"
                "main;0x401000 -20\n"
                "main;ns::f_g_h 6\n");
  pprof_profile_free(p);
}

static void folded_rejects_bad_input(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  expect_folded(p, 0, ""); /* no samples, no lines */
  FILE *out = fopen("/dev/null", "w");
  assert_non_null(out);
  assert_int_equal(pprof_write_folded(p, 1, out), FNP_EUSAGE);
  assert_int_equal(pprof_write_folded(p, -1, out), FNP_EUSAGE);
  assert_int_equal(pprof_write_folded(NULL, 0, out), FNP_EUSAGE);
  assert_int_equal(pprof_write_folded(p, 0, NULL), FNP_EUSAGE);
  /* A write that fails is reported, not lost in the stream's buffer. */
  FX_LOC(p, 1, 0, 0x10, "main");
  FX_SAMPLE(p, ((int64_t[]){1}), 1);
  FILE *full = fopen("/dev/full", "w");
  if (full != NULL) {
    assert_int_equal(pprof_write_folded(p, 0, full), -ENOSPC);
    fclose(full);
  }
  FX_SAMPLE(p, ((int64_t[]){1}), 3);
  assert_int_equal(pprof_write_folded(p, 0, out), FNP_EPARSE);
  fclose(out);
  pprof_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(folded_merges_equal_stacks_sorted),
      cmocka_unit_test(folded_handles_diffs_and_odd_frames),
      cmocka_unit_test(folded_rejects_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
