/*
 * pprof_diff: cur minus base as `go tool pprof -base base cur` reports it;
 * a profile minus itself is empty, and stacks cancel across processes whose
 * addresses differ but whose symbols (or binary + offset) are equal.
 */
#include "ops_fixture.h"

static pprof_profile *diff(const pprof_profile *base,
                           const pprof_profile *cur) {
  pprof_profile *out = NULL;
  fnp_error err = {0};
  if (pprof_diff(base, cur, &out, &err) != 0)
    fail_msg("diff: %s", err.msg);
  assert_int_equal(pprof_validate(out, &err), 0);
  return out;
}

/* A heap-shaped profile: two sample types, inline frames, labels. */
static pprof_profile *heapish(uint64_t load, uint64_t id0) {
  pprof_profile *p =
      fx_new("inuse_objects", "count", "inuse_space", "bytes", NULL);
  fx_mapping(p, 1, load, "/srv/app", "feedbeef");
  FX_LOC(p, id0 + 1, 1, load + 0x1233, "inl", "parse");
  FX_LOC(p, id0 + 2, 1, load + 0x2233, "main");
  FX_LOC(p, id0 + 3, 1, load + 0x3233, "cache_put");
  FX_SAMPLE(p, ((int64_t[]){2, 128}), id0 + 1, id0 + 2);
  FX_SAMPLE(p, ((int64_t[]){1, 4096}), id0 + 3, id0 + 2);
  uint64_t loc = id0 + 3;
  pprof_label l = {pprof_string(p, "bytes"), 0, 4096, 0};
  assert_int_equal(pprof_add_sample(p, &loc, 1, (int64_t[]){1, 4096}, &l, 1),
                   0);
  return p;
}

static void diff_of_itself_is_empty(void **state) {
  (void)state;
  pprof_profile *p = heapish(0x400000, 0);
  pprof_profile *d = diff(p, p);
  assert_int_equal(d->n_sample, 0);
  assert_int_equal(d->n_location, 0);
  assert_int_equal(d->n_function, 0);
  pprof_top_entry *e;
  size_t n;
  int64_t total = -1;
  assert_int_equal(pprof_top(d, 1, PPROF_SORT_FLAT, &e, &n, &total), 0);
  assert_int_equal(total, 0);
  assert_int_equal(n, 0);
  free(e);
  pprof_profile_free(d);
  pprof_profile_free(p);
}

static void diff_cancels_across_address_layouts(void **state) {
  (void)state;
  /* Same program, another process: other load address, other ids. */
  pprof_profile *base = heapish(0x400000, 0);
  pprof_profile *cur = heapish(0x55d2c0a00000, 100);
  pprof_profile *d = diff(base, cur);
  assert_int_equal(d->n_sample, 0);
  pprof_profile_free(d);
  /* Symbolized frames match by symbols alone, even at unrelated addresses
   * in different binaries. */
  pprof_profile *other =
      fx_new("inuse_objects", "count", "inuse_space", "bytes", NULL);
  FX_LOC(other, 9, 0, 0x9999, "main");
  FX_LOC(other, 8, 0, 0x8888, "inl", "parse");
  FX_SAMPLE(other, ((int64_t[]){2, 128}), 8, 9);
  d = diff(base, other);
  assert_int_equal(d->n_sample, 2); /* only cache_put's two samples remain */
  assert_int_equal(fx_find(d, "cache_put;main")->value[1], -4096);
  pprof_profile_free(d);
  pprof_profile_free(other);
  pprof_profile_free(base);
  pprof_profile_free(cur);
}

static pprof_profile *raw(uint64_t load, int64_t v) {
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  fx_mapping(p, 2, load, "/srv/app", "feedbeef");
  pprof_location l = {.id = 5, .mapping_id = 2, .address = load + 0x1233};
  assert_int_equal(pprof_add_location(p, &l), 0);
  FX_SAMPLE(p, ((int64_t[]){v}), 5);
  return p;
}

static void diff_cancels_unsymbolized_frames_across_aslr(void **state) {
  (void)state;
  pprof_profile *base = raw(0x7f0000000000, 300),
                *cur = raw(0x7f5500000000, 300);
  pprof_profile *d = diff(base, cur);
  assert_int_equal(d->n_sample, 0);
  pprof_profile_free(d);
  pprof_profile_free(cur);
  cur = raw(0x7f5500000000, 500);
  d = diff(base, cur);
  assert_int_equal(d->n_sample, 1);
  assert_int_equal(d->sample[0].value[0], 200);
  /* The current profile comes first, so its load address is kept. */
  assert_int_equal(pprof_find_location(d, d->sample[0].location_id[0])->address,
                   0x7f5500001233);
  pprof_profile_free(d);
  pprof_profile_free(cur);
  pprof_profile_free(base);
}

/* base: foo 30, baz 20; cur: foo 100, bar 50 (all called from main).
 * `go tool pprof -top -base base cur` shows nodes accounting for 100 of 140
 * total (it sums magnitudes), flat foo 70, bar 50, baz -20, main 0 with cum
 * 100. */
static void diff_subtracts_base_like_pprof(void **state) {
  (void)state;
  pprof_profile *base = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *cur = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(base, 1, 0, 0x10, "foo");
  FX_LOC(base, 2, 0, 0x20, "main");
  FX_LOC(base, 3, 0, 0x30, "baz");
  FX_SAMPLE(base, ((int64_t[]){30}), 1, 2);
  FX_SAMPLE(base, ((int64_t[]){20}), 3, 2);
  FX_LOC(cur, 1, 0, 0x10, "foo");
  FX_LOC(cur, 2, 0, 0x20, "main");
  FX_LOC(cur, 3, 0, 0x30, "bar");
  FX_SAMPLE(cur, ((int64_t[]){100}), 1, 2);
  FX_SAMPLE(cur, ((int64_t[]){50}), 3, 2);
  base->time_nanos = 1000;
  cur->time_nanos = 2000;
  pprof_profile *d = diff(base, cur);
  assert_int_equal(d->n_sample, 3);
  assert_int_equal(fx_find(d, "foo;main")->value[0], 70);
  assert_int_equal(fx_find(d, "bar;main")->value[0], 50);
  assert_int_equal(fx_find(d, "baz;main")->value[0], -20);
  assert_int_equal(d->time_nanos, 1000);
  pprof_top_entry *e;
  size_t n;
  int64_t total;
  assert_int_equal(pprof_top(d, 0, PPROF_SORT_FLAT, &e, &n, &total), 0);
  assert_int_equal(total, 140);
  assert_int_equal(n, 4);
  assert_string_equal(e[0].name, "foo");
  assert_int_equal(e[0].flat, 70);
  assert_string_equal(e[1].name, "bar");
  assert_string_equal(e[2].name, "baz");
  assert_int_equal(e[2].flat, -20);
  assert_string_equal(e[3].name, "main");
  assert_int_equal(e[3].cum, 100);
  free(e);
  pprof_profile_free(d);
  pprof_profile_free(base);
  pprof_profile_free(cur);
}

static void diff_rejects_incompatible(void **state) {
  (void)state;
  pprof_profile *base = fx_new("alloc_space", "bytes", NULL);
  pprof_profile *cur = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *out = (pprof_profile *)1;
  fnp_error err = {0};
  assert_int_equal(pprof_diff(base, cur, &out, &err), FNP_EINCOMPAT);
  assert_null(out);
  assert_non_null(strstr(err.msg, "base"));
  assert_non_null(strstr(err.msg, "alloc_space"));
  assert_int_equal(pprof_diff(NULL, cur, &out, &err), FNP_EUSAGE);
  assert_int_equal(pprof_diff(base, NULL, &out, NULL), FNP_EUSAGE);
  assert_int_equal(pprof_diff(base, cur, NULL, NULL), FNP_EUSAGE);
  pprof_profile_free(base);
  pprof_profile_free(cur);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(diff_of_itself_is_empty),
      cmocka_unit_test(diff_cancels_across_address_layouts),
      cmocka_unit_test(diff_cancels_unsymbolized_frames_across_aslr),
      cmocka_unit_test(diff_subtracts_base_like_pprof),
      cmocka_unit_test(diff_rejects_incompatible),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
