/* Compression round trips for every x-log-compresstype, and the decoder's
 * refusals: bombs (tiny body, huge announced size), wrong sizes, garbage. */
#include <fnprof/export.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_RAW (8u << 20)

static char *sample(size_t *len) {
  fnp_buf b;
  fnp_buf_init(&b, 1u << 20);
  for (int i = 0; i < 2000; i++)
    assert_int_equal(fnp_buf_printf(&b,
                                    "2024-05-01T12:00:%02d INFO request %d "
                                    "handled in %d ms\n",
                                    i % 60, i, i * 7 % 113),
                     0);
  return (char *)fnp_buf_steal(&b, len);
}

static void round_trip(void **state) {
  (void)state;
  size_t len;
  char *in = sample(&len);
  export_compress all[] = {EXPORT_COMPRESS_NONE, EXPORT_COMPRESS_ZSTD,
                           EXPORT_COMPRESS_DEFLATE, EXPORT_COMPRESS_LZ4,
                           EXPORT_COMPRESS_GZIP};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    fnp_buf c, d;
    fnp_buf_init(&c, 4u << 20);
    fnp_buf_init(&d, MAX_RAW);
    fnp_error err = {0};
    assert_int_equal(export_compress_buf(all[i], in, len, &c, &err), 0);
    if (all[i] != EXPORT_COMPRESS_NONE)
      assert_true(c.len < len / 3); /* log lines compress well */
    int64_t raw = all[i] == EXPORT_COMPRESS_GZIP ? -1 : (int64_t)len;
    assert_int_equal(
        export_decompress_buf(all[i], c.data, c.len, raw, MAX_RAW, &d, &err),
        0);
    assert_int_equal(d.len, len);
    assert_memory_equal(d.data, in, len);
    /* Empty input round-trips too. */
    fnp_buf_reset(&c);
    fnp_buf_reset(&d);
    assert_int_equal(export_compress_buf(all[i], "", 0, &c, &err), 0);
    assert_int_equal(export_decompress_buf(all[i], c.data, c.len,
                                           raw < 0 ? -1 : 0, MAX_RAW, &d, &err),
                     0);
    assert_int_equal(d.len, 0);
    fnp_buf_destroy(&c);
    fnp_buf_destroy(&d);
  }
  free(in);
}

static void names(void **state) {
  (void)state;
  export_compress c;
  assert_int_equal(export_compress_parse("zstd", &c), 0);
  assert_int_equal(c, EXPORT_COMPRESS_ZSTD);
  assert_int_equal(export_compress_parse("LZ4", &c), 0);
  assert_int_equal(c, EXPORT_COMPRESS_LZ4);
  assert_int_equal(export_compress_parse(NULL, &c), 0);
  assert_int_equal(c, EXPORT_COMPRESS_NONE);
  assert_int_equal(export_compress_parse("snappy", &c), FNP_EPARSE);
  assert_string_equal(export_compress_name(EXPORT_COMPRESS_DEFLATE), "deflate");
}

/* 64 MiB of zeros compresses to a few KiB: every codec must refuse it when
 * the cap is smaller, before allocating the announced size. */
static void bombs(void **state) {
  (void)state;
  size_t big = 64u << 20;
  char *zeros = calloc(1, big);
  assert_non_null(zeros);
  export_compress all[] = {EXPORT_COMPRESS_ZSTD, EXPORT_COMPRESS_DEFLATE,
                           EXPORT_COMPRESS_LZ4, EXPORT_COMPRESS_GZIP};
  for (size_t i = 0; i < 4; i++) {
    fnp_buf c, d;
    fnp_buf_init(&c, 80u << 20); /* the compressors reserve their bound */
    fnp_buf_init(&d, MAX_RAW);
    assert_int_equal(export_compress_buf(all[i], zeros, big, &c, NULL), 0);
    assert_true(c.len < 512 * 1024);
    fnp_error err = {0};
    /* Honest announced size over the cap: refused up front. */
    int64_t raw = all[i] == EXPORT_COMPRESS_GZIP ? -1 : (int64_t)big;
    assert_int_equal(
        export_decompress_buf(all[i], c.data, c.len, raw, MAX_RAW, &d, &err),
        FNP_ETOOBIG);
    assert_true(d.alloc <= MAX_RAW);
    /* Lying small size: the decoder stops at it and says so. */
    if (all[i] != EXPORT_COMPRESS_GZIP) {
      assert_true(export_decompress_buf(all[i], c.data, c.len, 1000, MAX_RAW,
                                        &d, &err) < 0);
      assert_true(d.alloc <= MAX_RAW);
      assert_true(err.msg[0] != '\0');
    }
    fnp_buf_destroy(&c);
    fnp_buf_destroy(&d);
  }
  free(zeros);
}

static void garbage(void **state) {
  (void)state;
  const char junk[] = "this is not compressed at all, not even a little";
  export_compress all[] = {EXPORT_COMPRESS_ZSTD, EXPORT_COMPRESS_DEFLATE,
                           EXPORT_COMPRESS_LZ4, EXPORT_COMPRESS_GZIP};
  for (size_t i = 0; i < 4; i++) {
    fnp_buf d;
    fnp_buf_init(&d, MAX_RAW);
    fnp_error err = {0};
    int64_t raw = all[i] == EXPORT_COMPRESS_GZIP ? -1 : 4096;
    assert_true(export_decompress_buf(all[i], junk, sizeof junk, raw, MAX_RAW,
                                      &d, &err) < 0);
    assert_true(err.msg[0] != '\0');
    fnp_buf_destroy(&d);
  }
  /* Uncompressed body whose length disagrees with bodyrawsize. */
  fnp_buf d;
  fnp_buf_init(&d, MAX_RAW);
  assert_int_equal(export_decompress_buf(EXPORT_COMPRESS_NONE, junk, 10, 11,
                                         MAX_RAW, &d, NULL),
                   FNP_EPARSE);
  fnp_buf_destroy(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(names),
      cmocka_unit_test(bombs),
      cmocka_unit_test(garbage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
