/*
 * pprof codec: round trips through encode/decode, and the decoder's answers
 * to hostile input (hand-written bytes, independent of our encoder).
 */
#include <fnprof/pprof.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wire.h"

/* A small heap profile shaped like Go's: 4 sample types, 2 mappings, inline
 * frames, labels, comments. */
static pprof_profile *make_profile(void) {
  pprof_profile *p = pprof_profile_new();
  assert_non_null(p);
  assert_int_equal(pprof_add_sample_type(p, "alloc_objects", "count"), 0);
  assert_int_equal(pprof_add_sample_type(p, "alloc_space", "bytes"), 0);
  assert_int_equal(pprof_add_sample_type(p, "inuse_objects", "count"), 0);
  assert_int_equal(pprof_add_sample_type(p, "inuse_space", "bytes"), 0);
  p->period_type =
      (pprof_value_type){pprof_string(p, "space"), pprof_string(p, "bytes")};
  p->period = 524288;
  p->time_nanos = 1700000000123456789LL;
  pprof_mapping m = {.id = 1,
                     .memory_start = 0x400000,
                     .memory_limit = 0x500000,
                     .file_offset = 0x1000,
                     .filename = pprof_string(p, "/usr/bin/app"),
                     .build_id = pprof_string(p, "abcdef0123"),
                     .has_functions = true};
  assert_int_equal(pprof_add_mapping(p, &m), 0);
  m = (pprof_mapping){.id = 2,
                      .memory_start = 0x7f0000000000,
                      .memory_limit = 0x7f0000100000,
                      .filename = pprof_string(p, "/lib/libc.so.6")};
  assert_int_equal(pprof_add_mapping(p, &m), 0);
  for (uint64_t i = 1; i <= 3; i++) {
    char name[32];
    snprintf(name, sizeof name, "func%llu", (unsigned long long)i);
    pprof_function f = {i, pprof_string(p, name), pprof_string(p, name),
                        pprof_string(p, "app.c"), (int64_t)i * 10};
    assert_int_equal(pprof_add_function(p, &f), 0);
  }
  pprof_line inl[2] = {{1, 11, 3}, {2, 22, 0}}; /* func1 inlined in func2 */
  pprof_location l = {
      .id = 7, .mapping_id = 1, .address = 0x401233, .line = inl, .n_line = 2};
  assert_int_equal(pprof_add_location(p, &l), 0);
  pprof_line one = {3, 33, 0};
  l = (pprof_location){
      .id = 9, .mapping_id = 1, .address = 0x402001, .line = &one, .n_line = 1};
  assert_int_equal(pprof_add_location(p, &l), 0);
  l = (pprof_location){.id = 11, .mapping_id = 2, .address = 0x7f0000000123};
  assert_int_equal(pprof_add_location(p, &l), 0);
  uint64_t s1[] = {7, 9}, s2[] = {11, 9};
  int64_t v1[] = {8, 4096, 2, 1024}, v2[] = {-1, -512, 0, 0};
  pprof_label lab[] = {
      {pprof_string(p, "bytes"), 0, 512, 0},
      {pprof_string(p, "request_id"), pprof_string(p, "r1"), 0, 0}};
  assert_int_equal(pprof_add_sample(p, s1, 2, v1, lab, 2), 0);
  assert_int_equal(pprof_add_sample(p, s2, 2, v2, NULL, 0), 0);
  assert_int_equal(pprof_add_comment(p, "cycle 42"), 0);
  return p;
}

static void assert_same(const pprof_profile *a, const pprof_profile *b) {
  assert_int_equal(a->n_sample_type, b->n_sample_type);
  for (size_t i = 0; i < a->n_sample_type; i++) {
    assert_string_equal(pprof_str(a, a->sample_type[i].type),
                        pprof_str(b, b->sample_type[i].type));
    assert_string_equal(pprof_str(a, a->sample_type[i].unit),
                        pprof_str(b, b->sample_type[i].unit));
  }
  assert_int_equal(a->period, b->period);
  assert_int_equal(a->time_nanos, b->time_nanos);
  assert_string_equal(pprof_str(a, a->period_type.type),
                      pprof_str(b, b->period_type.type));
  assert_int_equal(a->n_mapping, b->n_mapping);
  for (size_t i = 0; i < a->n_mapping; i++) {
    assert_int_equal(a->mapping[i].id, b->mapping[i].id);
    assert_int_equal(a->mapping[i].memory_start, b->mapping[i].memory_start);
    assert_int_equal(a->mapping[i].memory_limit, b->mapping[i].memory_limit);
    assert_int_equal(a->mapping[i].file_offset, b->mapping[i].file_offset);
    assert_string_equal(pprof_str(a, a->mapping[i].build_id),
                        pprof_str(b, b->mapping[i].build_id));
    assert_int_equal(a->mapping[i].has_functions, b->mapping[i].has_functions);
  }
  assert_int_equal(a->n_location, b->n_location);
  for (size_t i = 0; i < a->n_location; i++) {
    const pprof_location *x = &a->location[i], *y = &b->location[i];
    assert_int_equal(x->id, y->id);
    assert_int_equal(x->address, y->address);
    assert_int_equal(x->n_line, y->n_line);
    for (size_t j = 0; j < x->n_line; j++) {
      assert_int_equal(x->line[j].line, y->line[j].line);
      assert_int_equal(x->line[j].column, y->line[j].column);
      assert_string_equal(
          pprof_str(a, pprof_find_function(a, x->line[j].function_id)->name),
          pprof_str(b, pprof_find_function(b, y->line[j].function_id)->name));
    }
  }
  assert_int_equal(a->n_sample, b->n_sample);
  for (size_t i = 0; i < a->n_sample; i++) {
    const pprof_sample *x = &a->sample[i], *y = &b->sample[i];
    assert_int_equal(x->n_location, y->n_location);
    assert_memory_equal(x->location_id, y->location_id,
                        x->n_location * sizeof(uint64_t));
    assert_memory_equal(x->value, y->value, a->n_sample_type * sizeof(int64_t));
    assert_int_equal(x->n_label, y->n_label);
    for (size_t j = 0; j < x->n_label; j++) {
      assert_string_equal(pprof_str(a, x->label[j].key),
                          pprof_str(b, y->label[j].key));
      assert_string_equal(pprof_str(a, x->label[j].str),
                          pprof_str(b, y->label[j].str));
      assert_int_equal(x->label[j].num, y->label[j].num);
    }
  }
  assert_int_equal(a->n_comment, b->n_comment);
  assert_string_equal(pprof_str(a, a->comment[0]), pprof_str(b, b->comment[0]));
}

static void roundtrip(bool gzip) {
  pprof_profile *p = make_profile();
  uint8_t *data;
  size_t len;
  fnp_error err = {0};
  assert_int_equal(pprof_encode(p, gzip, &data, &len, &err), 0);
  assert_int_equal(pprof_is_gzip(data, len), gzip);
  pprof_profile *q;
  int rc = pprof_decode(data, len, NULL, &q, &err);
  if (rc != 0)
    fail_msg("decode: %s", err.msg);
  assert_same(p, q);
  free(data);
  pprof_profile_free(p);
  pprof_profile_free(q);
}

static void test_roundtrip_raw(void **state) {
  (void)state;
  roundtrip(false);
}

static void test_roundtrip_gzip(void **state) {
  (void)state;
  roundtrip(true);
}

static void test_negative_values_are_ten_byte_varints(void **state) {
  (void)state;
  pprof_profile *p = make_profile();
  uint8_t *data;
  size_t len;
  assert_int_equal(pprof_encode(p, false, &data, &len, NULL), 0);
  /* -1 as int64 (not zigzag) is ff ff ff ff ff ff ff ff ff 01. */
  static const uint8_t minus_one[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0x01};
  assert_non_null(memmem(data, len, minus_one, sizeof minus_one));
  free(data);
  pprof_profile_free(p);
}

static void test_every_truncation_fails_cleanly(void **state) {
  (void)state;
  pprof_profile *p = make_profile();
  uint8_t *data;
  size_t len;
  assert_int_equal(pprof_encode(p, false, &data, &len, NULL), 0);
  size_t failures = 0;
  for (size_t cut = 0; cut < len; cut++) {
    /* Copy so ASan sees any read past the cut. */
    uint8_t *part = malloc(cut ? cut : 1);
    memcpy(part, data, cut);
    pprof_profile *q = NULL;
    fnp_error err = {0};
    int rc = pprof_decode(part, cut, NULL, &q, &err);
    if (rc < 0) {
      failures++;
      assert_null(q);
      assert_true(strlen(err.msg) > 0);
    } else {
      pprof_profile_free(q);
    }
    free(part);
  }
  /* A cut inside any length-delimited field must be an error; only cuts at
   * field boundaries can parse (then fail validation or succeed). */
  assert_true(failures > len / 2);
  free(data);
  pprof_profile_free(p);
}

static void test_truncated_gzip(void **state) {
  (void)state;
  pprof_profile *p = make_profile();
  uint8_t *data;
  size_t len;
  assert_int_equal(pprof_encode(p, true, &data, &len, NULL), 0);
  pprof_profile *q = NULL;
  fnp_error err = {0};
  assert_int_equal(pprof_decode(data, len - 10, NULL, &q, &err), FNP_EPARSE);
  assert_non_null(strstr(err.msg, "gzip"));
  free(data);
  pprof_profile_free(p);
}

static void expect_error(const wire *w, int code, const char *needle) {
  pprof_profile *q = NULL;
  fnp_error err = {0};
  int rc = pprof_decode(w->b, w->n, NULL, &q, &err);
  if (rc != code || strstr(err.msg, needle) == NULL)
    fail_msg("want %d containing \"%s\", got %d: \"%s\"", code, needle, rc,
             err.msg);
  assert_null(q);
}

static void test_bad_varint(void **state) {
  (void)state;
  wire w = {.n = 0};
  wire_key(&w, 9, 0); /* time_nanos */
  for (int i = 0; i < 11; i++)
    w.b[w.n++] = 0xff;
  expect_error(&w, FNP_EPARSE, "varint");
}

static void test_length_past_end(void **state) {
  (void)state;
  wire w = {.n = 0};
  wire_key(&w, 2, 2); /* sample, claims 100 bytes */
  wire_varint(&w, 100);
  w.b[w.n++] = 0x08;
  expect_error(&w, FNP_EPARSE, "sample");
}

static void test_string_index_out_of_range(void **state) {
  (void)state;
  wire w = {.n = 0}, vt = {.n = 0};
  wire_uint(&vt, 1, 5); /* type = string 5, table has 2 */
  wire_uint(&vt, 2, 1);
  wire_msg(&w, 1, &vt);
  wire_str(&w, 6, "");
  wire_str(&w, 6, "bytes");
  expect_error(&w, FNP_EPARSE, "out of range");
}

static void test_first_string_not_empty(void **state) {
  (void)state;
  wire w = {.n = 0};
  wire_str(&w, 6, "oops");
  expect_error(&w, FNP_EPARSE, "string_table[0]");
}

static void test_dangling_location(void **state) {
  (void)state;
  wire w = {.n = 0}, s = {.n = 0};
  wire_uint(&s, 1, 42); /* location 42 was never defined */
  wire_msg(&w, 2, &s);
  wire_str(&w, 6, "");
  expect_error(&w, FNP_EPARSE, "location_id");
}

static void test_dangling_function(void **state) {
  (void)state;
  wire w = {.n = 0}, loc = {.n = 0}, line = {.n = 0};
  wire_uint(&line, 1, 3);
  wire_uint(&loc, 1, 1);
  wire_msg(&loc, 4, &line);
  wire_msg(&w, 4, &loc);
  wire_str(&w, 6, "");
  expect_error(&w, FNP_EPARSE, "function_id 3");
}

static void test_duplicate_and_zero_ids(void **state) {
  (void)state;
  wire w = {.n = 0}, f = {.n = 0};
  wire_uint(&f, 1, 5);
  wire_msg(&w, 5, &f);
  wire_msg(&w, 5, &f);
  wire_str(&w, 6, "");
  expect_error(&w, FNP_EPARSE, "function[1]");
  wire z = {.n = 0}, m = {.n = 0};
  wire_uint(&m, 2, 0x1000); /* a mapping without id */
  wire_msg(&z, 3, &m);
  wire_str(&z, 6, "");
  expect_error(&z, FNP_EPARSE, "mapping[0]");
}

static void test_value_count_mismatch(void **state) {
  (void)state;
  wire w = {.n = 0}, vt = {.n = 0}, s = {.n = 0};
  wire_msg(&w, 1, &vt); /* one sample type */
  wire_uint(&s, 2, 1);
  wire_uint(&s, 2, 2); /* two values */
  wire_msg(&w, 2, &s);
  wire_str(&w, 6, "");
  expect_error(&w, FNP_EPARSE, "2 values for 1 sample types");
}

static void test_empty_input(void **state) {
  (void)state;
  wire w = {.n = 0};
  expect_error(&w, FNP_EPARSE, "empty");
}

static void test_unpacked_repeated_accepted(void **state) {
  (void)state;
  /* Writers may emit repeated scalars unpacked; readers must accept both. */
  wire w = {.n = 0}, vt = {.n = 0}, s = {.n = 0}, loc = {.n = 0};
  wire_uint(&vt, 1, 1);
  wire_uint(&vt, 2, 2);
  wire_msg(&w, 1, &vt);
  wire_uint(&loc, 1, 1);
  wire_uint(&loc, 3, 0x1234);
  wire_msg(&w, 4, &loc);
  wire_uint(&s, 1, 1);  /* unpacked location_id */
  wire_uint(&s, 2, 77); /* unpacked value */
  wire_msg(&w, 2, &s);
  wire_str(&w, 6, "");
  wire_str(&w, 6, "inuse_space");
  wire_str(&w, 6, "bytes");
  pprof_profile *q = NULL;
  fnp_error err = {0};
  assert_int_equal(pprof_decode(w.b, w.n, NULL, &q, &err), 0);
  assert_int_equal(q->n_sample, 1);
  assert_int_equal(q->sample[0].value[0], 77);
  assert_int_equal(q->sample[0].location_id[0], 1);
  assert_string_equal(pprof_str(q, q->sample_type[0].type), "inuse_space");
  pprof_profile_free(q);
}

static void test_duplicate_strings_keep_file_indexes(void **state) {
  (void)state;
  wire w = {.n = 0}, vt = {.n = 0};
  wire_uint(&vt, 1, 2); /* the second "x" */
  wire_uint(&vt, 2, 3);
  wire_msg(&w, 1, &vt);
  wire_str(&w, 6, "");
  wire_str(&w, 6, "x");
  wire_str(&w, 6, "x");
  wire_str(&w, 6, "count");
  pprof_profile *q = NULL;
  assert_int_equal(pprof_decode(w.b, w.n, NULL, &q, NULL), 0);
  assert_int_equal(q->n_string, 4);
  assert_int_equal(q->sample_type[0].type, 2);
  assert_string_equal(pprof_str(q, 3), "count");
  pprof_profile_free(q);
}

static void test_gzip_bomb_capped(void **state) {
  (void)state;
  /* 64 MiB of zeros compresses to ~64 KiB; the cap must stop it early. */
  size_t big = 64u << 20;
  uint8_t *zeros = calloc(1, big);
  uint8_t *gz;
  size_t gzlen;
  assert_int_equal(pprof_gzip(zeros, big, &gz, &gzlen, NULL), 0);
  free(zeros);
  assert_true(gzlen < big / 100);
  pprof_decode_opts opts = {.max_raw_bytes = 1u << 20};
  pprof_profile *q = NULL;
  fnp_error err = {0};
  assert_int_equal(pprof_decode(gz, gzlen, &opts, &q, &err), FNP_ETOOBIG);
  assert_non_null(strstr(err.msg, "limit"));
  free(gz);
}

static void test_tiny_input_bounded_allocation(void **state) {
  (void)state;
  /* A packed field claiming millions of elements in 100 bytes must fail on
   * the length check, not allocate for the claim. */
  wire w = {.n = 0};
  wire_key(&w, 13, 2);
  wire_varint(&w, (uint64_t)1 << 40);
  memset(w.b + w.n, 0x01, 90);
  w.n += 90;
  expect_error(&w, FNP_EPARSE, "comment");
}

static void test_file_roundtrip_and_missing(void **state) {
  (void)state;
  char path[] = "/tmp/fnprof-codec-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  pprof_profile *p = make_profile();
  assert_int_equal(pprof_write_file(p, path, NULL), 0);
  pprof_profile *q = NULL;
  assert_int_equal(pprof_read_file(path, NULL, &q, NULL), 0);
  assert_same(p, q);
  unlink(path);
  pprof_profile_free(q);
  fnp_error err = {0};
  assert_int_equal(pprof_read_file(path, NULL, &q, &err), -ENOENT);
  assert_non_null(strstr(err.msg, path));
  pprof_profile_free(p);
}

static void test_sample_type_index(void **state) {
  (void)state;
  pprof_profile *p = make_profile();
  assert_int_equal(pprof_sample_type_index(p, NULL), 3); /* last: inuse */
  assert_int_equal(pprof_sample_type_index(p, "alloc_space"), 1);
  assert_int_equal(pprof_sample_type_index(p, "nope"), -1);
  p->default_sample_type = pprof_string(p, "alloc_space");
  assert_int_equal(pprof_sample_type_index(p, NULL), 1);
  pprof_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_raw),
      cmocka_unit_test(test_roundtrip_gzip),
      cmocka_unit_test(test_negative_values_are_ten_byte_varints),
      cmocka_unit_test(test_every_truncation_fails_cleanly),
      cmocka_unit_test(test_truncated_gzip),
      cmocka_unit_test(test_bad_varint),
      cmocka_unit_test(test_length_past_end),
      cmocka_unit_test(test_string_index_out_of_range),
      cmocka_unit_test(test_first_string_not_empty),
      cmocka_unit_test(test_dangling_location),
      cmocka_unit_test(test_dangling_function),
      cmocka_unit_test(test_duplicate_and_zero_ids),
      cmocka_unit_test(test_value_count_mismatch),
      cmocka_unit_test(test_empty_input),
      cmocka_unit_test(test_unpacked_repeated_accepted),
      cmocka_unit_test(test_duplicate_strings_keep_file_indexes),
      cmocka_unit_test(test_gzip_bomb_capped),
      cmocka_unit_test(test_tiny_input_bounded_allocation),
      cmocka_unit_test(test_file_roundtrip_and_missing),
      cmocka_unit_test(test_sample_type_index),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
