/* LogGroup encoding, checked by an independent decoder (protoc --decode_raw
 * reads the wire bytes with no schema), by our own decoder, and the batcher's
 * limits. Hostile LogGroups must fail with a message. */
#include <fnprof/export.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define T0_NS 1714564800123456789LL /* 2024-05-01T12:00:00.123456789Z */

static export_batch *make_batch(size_t n) {
  export_batch *b;
  assert_int_equal(export_batch_new(NULL, 0, &b), 0);
  for (size_t i = 0; i < n; i++) {
    char msg[64];
    snprintf(msg, sizeof msg, "hello %zu", i);
    export_field f[] = {{"message", msg}, {"level", "INFO"}};
    export_record r = {.time_ns = T0_NS + (int64_t)i,
                       .instance = "inst-1",
                       .request_id = "req-42",
                       .fields = f,
                       .n_fields = 2};
    assert_int_equal(export_batch_add(b, &r), 0);
  }
  return b;
}

/* Runs protoc --decode_raw on data and returns its text output. */
static char *decode_raw(const void *data, size_t len) {
  char path[] = "/tmp/fnp_lg_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "%s --decode_raw < %s", PROTOC_PATH, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  fnp_buf out;
  fnp_buf_init(&out, 1u << 20);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
    assert_int_equal(fnp_buf_append(&out, chunk, n), 0);
  assert_int_equal(pclose(p), 0);
  unlink(path);
  assert_int_equal(fnp_buf_append(&out, "", 1), 0);
  return (char *)fnp_buf_steal(&out, NULL);
}

static void independent_decoder(void **state) {
  (void)state;
  export_batch *b = make_batch(2);
  export_field tags[] = {{"function", "fn-a"}};
  export_sls_meta m = {.topic = "fnprof",
                       .source = "10.0.0.1",
                       .pack_id = "ABCD-1",
                       .tags = tags,
                       .n_tags = 1};
  fnp_buf out;
  fnp_buf_init(&out, 1u << 20);
  assert_int_equal(export_sls_encode(b, &m, &out, NULL), 0);
  char *text = decode_raw(out.data, out.len);
  /* Log.Time (field 1, seconds) and TimeNs (field 4, fixed32 hex). */
  assert_non_null(strstr(text, "1: 1714564800\n"));
  assert_non_null(strstr(text, "4: 0x075bcd15\n")); /* 123456789 */
  assert_non_null(strstr(text, "4: 0x075bcd16\n"));
  assert_non_null(strstr(text, "1: \"message\"\n"));
  assert_non_null(strstr(text, "2: \"hello 1\"\n"));
  assert_non_null(strstr(text, "2: \"req-42\"\n"));
  assert_non_null(strstr(text, "3: \"fnprof\"\n"));   /* Topic */
  assert_non_null(strstr(text, "4: \"10.0.0.1\"\n")); /* Source */
  assert_non_null(strstr(text, "1: \"__pack_id__\"\n"));
  assert_non_null(strstr(text, "2: \"ABCD-1\"\n"));
  assert_null(strstr(text, "\n2: \"")); /* Category (reserved) never set */
  free(text);
  fnp_buf_destroy(&out);
  export_batch_free(b);
}

static void own_decoder(void **state) {
  (void)state;
  export_batch *b = make_batch(3);
  export_sls_meta m = {.topic = "t", .pack_id = "P-0"};
  fnp_buf out;
  fnp_buf_init(&out, 1u << 20);
  assert_int_equal(export_sls_encode(b, &m, &out, NULL), 0);
  export_sls_group *g;
  assert_int_equal(export_sls_decode(out.data, out.len, 100, &g, NULL), 0);
  assert_int_equal(g->n_logs, 3);
  assert_int_equal(g->logs[2].time_ns, T0_NS + 2);
  assert_int_equal(g->logs[1].n_contents, 4); /* 2 fields + instance + req */
  assert_string_equal(g->logs[1].contents[0].value, "hello 1");
  assert_string_equal(g->logs[1].contents[2].key, "instance");
  assert_string_equal(g->topic, "t");
  assert_string_equal(g->source, "");
  assert_int_equal(g->n_tags, 1);
  assert_string_equal(g->tags[0].value, "P-0");
  export_sls_group_free(g);
  /* The log cap is enforced. */
  fnp_error err = {0};
  assert_int_equal(export_sls_decode(out.data, out.len, 2, &g, &err),
                   FNP_ETOOBIG);
  assert_null(g);
  /* Every truncation fails cleanly (the last byte cut is always fatal
   * because the final tag's value is then incomplete). */
  for (size_t cut = 1; cut < out.len; cut++) {
    if (export_sls_decode(out.data, cut, 100, &g, &err) == 0)
      export_sls_group_free(g);
  }
  assert_true(export_sls_decode(out.data, out.len - 1, 100, &g, &err) < 0);
  assert_true(err.msg[0] != '\0');
  fnp_buf_destroy(&out);
  export_batch_free(b);
}

static void garbage(void **state) {
  (void)state;
  export_sls_group *g;
  fnp_error err = {0};
  const unsigned char junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2};
  assert_int_equal(export_sls_decode(junk, sizeof junk, 100, &g, &err),
                   FNP_EPARSE);
  /* A Log without the required Time field. */
  const unsigned char no_time[] = {0x0a, 0x02, 0x12, 0x00};
  assert_int_equal(export_sls_decode(no_time, sizeof no_time, 100, &g, &err),
                   FNP_EPARSE);
  /* A Log with Time but no contents. */
  const unsigned char empty[] = {0x0a, 0x02, 0x08, 0x01};
  assert_int_equal(export_sls_decode(empty, sizeof empty, 100, &g, &err),
                   FNP_EPARSE);
  assert_non_null(strstr(err.msg, "no contents"));
}

static void batch_limits(void **state) {
  (void)state;
  export_batch_limits lim = {
      .max_records = 2, .max_bytes = 1000, .max_age_ms = 50};
  export_batch *b;
  assert_int_equal(export_batch_new(&lim, 0, &b), 0);
  export_record r = {.time_ns = 1, .request_id = "x"};
  assert_false(export_batch_due(b, 1000000000LL)); /* empty: never due */
  assert_int_equal(export_batch_add(b, &r), 0);
  assert_false(export_batch_due(b, 10 * 1000000LL));
  assert_true(export_batch_due(b, 50 * 1000000LL)); /* age */
  assert_int_equal(export_batch_add(b, &r), 0);
  assert_int_equal(export_batch_add(b, &r), FNP_ETOOBIG); /* count */
  assert_true(export_batch_due(b, 0));
  export_batch_free(b);
  assert_int_equal(export_batch_new(&lim, 0, &b), 0);
  char big[2000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  export_record huge = {.request_id = big};
  assert_int_equal(export_batch_add(b, &huge), FNP_ETOOBIG); /* bytes */
  assert_int_equal(export_batch_count(b), 0);
  export_batch_free(b);
  export_batch_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(independent_decoder),
      cmocka_unit_test(own_decoder),
      cmocka_unit_test(garbage),
      cmocka_unit_test(batch_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
