/*
 * pprof_merge: equal symbolized stacks and labels add up, ids and addresses
 * of different profiles do not matter, incompatible inputs are refused, and
 * headers combine as pprof's merge does.
 */
#include "ops_fixture.h"

static pprof_profile *two_types(void) {
  return fx_new("alloc_space", "bytes", "inuse_space", "bytes", NULL);
}

static pprof_profile *merge2(const pprof_profile *a, const pprof_profile *b) {
  const pprof_profile *in[] = {a, b};
  pprof_profile *out = NULL;
  fnp_error err = {0};
  int rc = pprof_merge(in, 2, &out, &err);
  if (rc != 0)
    fail_msg("merge: %s", err.msg);
  assert_int_equal(pprof_validate(out, &err), 0);
  return out;
}

static void merge_adds_equal_stacks(void **state) {
  (void)state;
  pprof_profile *a = two_types(), *b = two_types();
  FX_LOC(a, 1, 0, 0x1000, "foo");
  FX_LOC(a, 2, 0, 0x2000, "main");
  FX_LOC(a, 3, 0, 0x3000, "bar");
  FX_SAMPLE(a, ((int64_t[]){10, 5}), 1, 2);
  FX_SAMPLE(a, ((int64_t[]){3, 3}), 3, 2);
  /* b: other ids, other addresses, other string order, same symbols. */
  assert_true(pprof_string(b, "unrelated") > 0);
  FX_LOC(b, 7, 0, 0x7000, "main");
  FX_LOC(b, 8, 0, 0x8000, "foo");
  FX_LOC(b, 9, 0, 0x9000, "baz");
  FX_SAMPLE(b, ((int64_t[]){1, 2}), 8, 7);
  FX_SAMPLE(b, ((int64_t[]){4, 4}), 9, 7);

  pprof_profile *m = merge2(a, b);
  assert_int_equal(m->n_sample, 3);
  const pprof_sample *s = fx_find(m, "foo;main");
  assert_int_equal(s->value[0], 11);
  assert_int_equal(s->value[1], 7);
  s = fx_find(m, "bar;main");
  assert_int_equal(s->value[0], 3);
  assert_int_equal(s->value[1], 3);
  s = fx_find(m, "baz;main");
  assert_int_equal(s->value[0], 4);
  assert_int_equal(s->value[1], 4);
  assert_int_equal(m->n_function, 4); /* foo main bar baz */
  assert_int_equal(m->n_location, 4);
  assert_int_equal(m->n_sample_type, 2);
  assert_string_equal(pprof_str(m, m->sample_type[1].type), "inuse_space");
  assert_int_equal(a->sample[0].value[0], 10); /* inputs untouched */
  pprof_profile_free(m);
  pprof_profile_free(a);
  pprof_profile_free(b);
}

static void add_labelled(pprof_profile *p, uint64_t loc, int64_t v,
                         const char *k, const char *str, int64_t bytes,
                         bool reversed) {
  pprof_label l[2] = {{pprof_string(p, k), pprof_string(p, str), 0, 0},
                      {pprof_string(p, "bytes"), 0, bytes, 0}};
  if (reversed) {
    pprof_label t = l[0];
    l[0] = l[1];
    l[1] = t;
  }
  assert_int_equal(pprof_add_sample(p, &loc, 1, &v, l, 2), 0);
}

/* The value of the one sample carrying string label key=str (or, with key
 * NULL, no labels at all). */
static int64_t value_with_label(const pprof_profile *p, const char *key,
                                const char *str) {
  int64_t found = -1;
  for (size_t i = 0; i < p->n_sample; i++) {
    const pprof_sample *s = &p->sample[i];
    bool match = key == NULL && s->n_label == 0;
    for (size_t j = 0; key != NULL && j < s->n_label; j++)
      match |= strcmp(pprof_str(p, s->label[j].key), key) == 0 &&
               strcmp(pprof_str(p, s->label[j].str), str) == 0;
    if (match) {
      assert_int_equal(found, -1);
      found = s->value[0];
    }
  }
  return found;
}

static void merge_matches_labels_in_any_order(void **state) {
  (void)state;
  pprof_profile *a = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *b = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(a, 1, 0, 0x10, "foo");
  FX_LOC(b, 5, 0, 0x10, "foo");
  add_labelled(a, 1, 5, "k", "v", 64, false);
  FX_SAMPLE(a, ((int64_t[]){2}), 1); /* same stack, no labels */
  add_labelled(b, 5, 7, "k", "v", 64, true);
  add_labelled(b, 5, 1, "k", "w", 64, false);
  pprof_profile *m = merge2(a, b);
  assert_int_equal(m->n_sample, 3);
  assert_int_equal(value_with_label(m, "k", "v"), 12);
  assert_int_equal(value_with_label(m, "k", "w"), 1);
  assert_int_equal(value_with_label(m, NULL, NULL), 2);
  pprof_profile_free(m);
  pprof_profile_free(a);
  pprof_profile_free(b);
}

static void expect_incompatible(pprof_profile *a, pprof_profile *b,
                                const char *words) {
  const pprof_profile *in[] = {a, b};
  pprof_profile *out = (pprof_profile *)1;
  fnp_error err = {0};
  assert_int_equal(pprof_merge(in, 2, &out, &err), FNP_EINCOMPAT);
  assert_null(out);
  assert_int_equal(err.code, FNP_EINCOMPAT);
  if (strstr(err.msg, words) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", err.msg, words);
  assert_int_equal(pprof_merge(in, 2, &out, NULL), FNP_EINCOMPAT);
  pprof_profile_free(a);
  pprof_profile_free(b);
}

static void merge_rejects_incompatible(void **state) {
  (void)state;
  expect_incompatible(fx_new("alloc_space", "bytes", NULL),
                      fx_new("inuse_space", "bytes", NULL),
                      "[alloc_space/bytes], input 1 has [inuse_space/bytes]");
  expect_incompatible(fx_new("inuse_space", "bytes", NULL),
                      fx_new("inuse_space", "count", NULL), "sample types");
  expect_incompatible(two_types(), fx_new("alloc_space", "bytes", NULL),
                      "sample types");
  /* Same order matters: pprof adds values by position. */
  expect_incompatible(
      two_types(), fx_new("inuse_space", "bytes", "alloc_space", "bytes", NULL),
      "sample types");
  pprof_profile *cpu = fx_new("inuse_space", "bytes", NULL);
  cpu->period_type = (pprof_value_type){pprof_string(cpu, "cpu"),
                                        pprof_string(cpu, "nanoseconds")};
  expect_incompatible(fx_new("inuse_space", "bytes", NULL), cpu,
                      "period types");
}

static void merge_combines_headers(void **state) {
  (void)state;
  pprof_profile *a = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *b = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *c = fx_new("inuse_space", "bytes", NULL);
  a->time_nanos = 200, a->duration_nanos = 10, a->period = 100;
  b->time_nanos = 100, b->duration_nanos = 5, b->period = 300;
  c->time_nanos = 0, c->duration_nanos = 1, c->period = 200;
  b->default_sample_type = pprof_string(b, "inuse_space");
  assert_int_equal(pprof_add_comment(a, "x"), 0);
  assert_int_equal(pprof_add_comment(a, "y"), 0);
  assert_int_equal(pprof_add_comment(b, "y"), 0);
  assert_int_equal(pprof_add_comment(b, "z"), 0);
  const pprof_profile *in[] = {a, b, c};
  pprof_profile *m;
  assert_int_equal(pprof_merge(in, 3, &m, NULL), 0);
  assert_int_equal(m->time_nanos, 100); /* earliest; 0 means unknown */
  assert_int_equal(m->duration_nanos, 16);
  assert_int_equal(m->period, 300);
  assert_string_equal(pprof_str(m, m->period_type.type), "space");
  assert_string_equal(pprof_str(m, m->default_sample_type), "inuse_space");
  assert_int_equal(m->n_comment, 3);
  assert_string_equal(pprof_str(m, m->comment[0]), "x");
  assert_string_equal(pprof_str(m, m->comment[1]), "y");
  assert_string_equal(pprof_str(m, m->comment[2]), "z");
  assert_int_equal(m->n_sample, 0);
  pprof_profile_free(m);
  pprof_profile_free(a);
  pprof_profile_free(b);
  pprof_profile_free(c);
}

static void merge_drops_cancelled_samples(void **state) {
  (void)state;
  pprof_profile *a = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *b = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(a, 1, 0, 0x10, "foo");
  FX_LOC(a, 2, 0, 0x20, "main");
  FX_LOC(a, 3, 0, 0x30, "bar");
  FX_LOC(a, 4, 0, 0x40, "idle");
  FX_SAMPLE(a, ((int64_t[]){5}), 1, 2);
  FX_SAMPLE(a, ((int64_t[]){1}), 3, 2);
  FX_SAMPLE(a, ((int64_t[]){0}), 4, 2); /* zero on input: dropped too */
  FX_LOC(b, 1, 0, 0x10, "foo");
  FX_LOC(b, 2, 0, 0x20, "main");
  FX_SAMPLE(b, ((int64_t[]){-5}), 1, 2);
  pprof_profile *m = merge2(a, b);
  assert_int_equal(m->n_sample, 1);
  assert_int_equal(fx_find(m, "bar;main")->value[0], 1);
  /* What only the dropped samples used is gone as well. */
  assert_int_equal(m->n_location, 2);
  assert_int_equal(m->n_function, 2);
  for (size_t i = 0; i < m->n_function; i++) {
    assert_string_not_equal(pprof_str(m, m->function[i].name), "foo");
    assert_string_not_equal(pprof_str(m, m->function[i].name), "idle");
  }
  pprof_profile_free(m);
  pprof_profile_free(a);
  pprof_profile_free(b);
}

/* Unsymbolized frames match by mapping identity and offset into it, so two
 * runs of one binary loaded at different addresses merge. */
static pprof_profile *raw_profile(uint64_t start, const char *build_id,
                                  int64_t v) {
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  fx_mapping(p, 3, start, "/usr/bin/app", build_id);
  pprof_location l = {.id = 11, .mapping_id = 3, .address = start + 0x1233};
  assert_int_equal(pprof_add_location(p, &l), 0);
  l = (pprof_location){.id = 12, .mapping_id = 3, .address = start + 0x2001};
  assert_int_equal(pprof_add_location(p, &l), 0);
  FX_SAMPLE(p, ((int64_t[]){v}), 11, 12);
  return p;
}

static void merge_unsymbolized_ignores_load_address(void **state) {
  (void)state;
  pprof_profile *a = raw_profile(0x400000, "b1", 3);
  pprof_profile *b = raw_profile(0x7f1234500000, "b1", 4);
  pprof_profile *m = merge2(a, b);
  assert_int_equal(m->n_sample, 1);
  assert_int_equal(m->sample[0].value[0], 7);
  assert_int_equal(m->n_mapping, 1);
  assert_int_equal(m->n_location, 2);
  /* Addresses keep the first profile's load address. */
  assert_int_equal(pprof_find_location(m, m->sample[0].location_id[0])->address,
                   0x401233);
  assert_string_equal(pprof_str(m, m->mapping[0].build_id), "b1");
  assert_string_equal(pprof_str(m, m->mapping[0].filename), "/usr/bin/app");
  pprof_profile_free(m);
  pprof_profile_free(b);
  /* Another build of the binary is other code: nothing merges. */
  b = raw_profile(0x400000, "b2", 4);
  m = merge2(a, b);
  assert_int_equal(m->n_sample, 2);
  assert_int_equal(m->n_mapping, 2);
  assert_int_equal(m->n_location, 4);
  pprof_profile_free(m);
  pprof_profile_free(a);
  pprof_profile_free(b);
}

static void merge_keeps_inline_frames(void **state) {
  (void)state;
  pprof_profile *a = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *b = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(a, 1, 0, 0x10, "inl", "outer");
  FX_LOC(a, 2, 0, 0x20, "main");
  FX_SAMPLE(a, ((int64_t[]){1}), 1, 2);
  FX_LOC(b, 6, 0, 0x60, "main");
  FX_LOC(b, 5, 0, 0x50, "inl", "outer");
  FX_SAMPLE(b, ((int64_t[]){2}), 5, 6);
  FX_LOC(b, 7, 0, 0x70, "outer"); /* outer's own code, not the inline */
  FX_SAMPLE(b, ((int64_t[]){4}), 7, 6);
  pprof_profile *m = merge2(a, b);
  assert_int_equal(m->n_sample, 2);
  const pprof_sample *s = fx_find(m, "inl;outer;main");
  assert_int_equal(s->value[0], 3);
  const pprof_location *l = pprof_find_location(m, s->location_id[0]);
  assert_int_equal(l->n_line, 2);
  assert_int_equal(l->line[0].line, 10);
  assert_int_equal(l->line[1].line, 20);
  assert_int_equal(fx_find(m, "outer;main")->value[0], 4);
  pprof_profile_free(m);
  pprof_profile_free(a);
  pprof_profile_free(b);
}

static void merge_rejects_bad_arguments(void **state) {
  (void)state;
  pprof_profile *a = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *b = fx_new("inuse_space", "bytes", NULL);
  FX_SAMPLE(b, ((int64_t[]){1}), 99); /* no location 99 */
  const pprof_profile *in[] = {a, b}, *with_null[] = {a, NULL};
  pprof_profile *out = (pprof_profile *)1;
  fnp_error err = {0};
  assert_int_equal(pprof_merge(in, 2, &out, &err), FNP_EPARSE);
  assert_null(out);
  assert_non_null(strstr(err.msg, "input 1"));
  assert_non_null(strstr(err.msg, "99"));
  assert_int_equal(pprof_merge(in, 0, &out, &err), FNP_EUSAGE);
  assert_int_equal(pprof_merge(NULL, 1, &out, &err), FNP_EUSAGE);
  assert_int_equal(pprof_merge(with_null, 2, &out, &err), FNP_EUSAGE);
  assert_int_equal(pprof_merge(in, 1, NULL, &err), FNP_EUSAGE);
  /* One input: a normalized copy. */
  assert_int_equal(pprof_merge(in, 1, &out, &err), 0);
  assert_int_equal(out->n_sample, 0);
  pprof_profile_free(out);
  pprof_profile_free(a);
  pprof_profile_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(merge_adds_equal_stacks),
      cmocka_unit_test(merge_matches_labels_in_any_order),
      cmocka_unit_test(merge_rejects_incompatible),
      cmocka_unit_test(merge_combines_headers),
      cmocka_unit_test(merge_drops_cancelled_samples),
      cmocka_unit_test(merge_unsymbolized_ignores_load_address),
      cmocka_unit_test(merge_keeps_inline_frames),
      cmocka_unit_test(merge_rejects_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
