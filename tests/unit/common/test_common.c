/* common/: the capped buffer, units, error table, whole-file I/O. */
#include <fnprof/common.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void test_buf_cap_is_enforced(void **state) {
  (void)state;
  fnp_buf b;
  fnp_buf_init(&b, 10);
  assert_int_equal(fnp_buf_append(&b, "12345", 5), 0);
  assert_int_equal(fnp_buf_append(&b, "67890", 5), 0);
  assert_int_equal(fnp_buf_append(&b, "x", 1), FNP_ETOOBIG);
  assert_int_equal(b.len, 10); /* content untouched by the failed append */
  assert_memory_equal(b.data, "1234567890", 10);
  fnp_buf_reset(&b);
  assert_int_equal(fnp_buf_printf(&b, "%d-%s", 42, "ab"), 0);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, "42-ab", 5);
  /* printf needs room for the NUL too: 9 chars + NUL > 10 - 5 left. */
  assert_int_equal(fnp_buf_printf(&b, "%s", "abcdefghi"), FNP_ETOOBIG);
  assert_memory_equal(b.data, "42-ab", 5); /* the try left len's bytes be */
  assert_int_equal(fnp_buf_printf(&b, "%d", 7), 0); /* fits the room */
  assert_int_equal(b.len, 6);
  assert_memory_equal(b.data, "42-ab7", 6);
  b.len = 5;
  size_t len;
  uint8_t *d = fnp_buf_steal(&b, &len);
  assert_int_equal(len, 5);
  assert_null(b.data);
  free(d);
  fnp_buf_destroy(&b);
}

/* Integers without printf: every digit, the sign, the extremes. */
static void test_i64_text(void **state) {
  char d[24], want[32];
  const int64_t vals[] = {0, 7, -1, 10, 1234567890123, INT64_MAX, INT64_MIN};
  (void)state;
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    snprintf(want, sizeof(want), "%lld", (long long)vals[i]);
    assert_int_equal(fnp_i64_text(vals[i], d), strlen(want));
    assert_string_equal(d, want);
  }
  fnp_buf b;
  fnp_buf_init(&b, 64);
  assert_int_equal(fnp_buf_append_str(&b, "n="), 0);
  assert_int_equal(fnp_buf_append_i64(&b, -42), 0);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, "n=-42", 5);
  fnp_buf_destroy(&b);
}

static void test_format_bytes(void **state) {
  (void)state;
  char s[32];
  fnp_format_bytes(512, s, sizeof s);
  assert_string_equal(s, "512B");
  fnp_format_bytes(524298, s, sizeof s); /* go tool pprof prints 512.01kB */
  assert_string_equal(s, "512.01kB");
  fnp_format_bytes(-3 * 1024 * 1024, s, sizeof s);
  assert_string_equal(s, "-3.00MB");
}

static void test_parse_bytes(void **state) {
  (void)state;
  int64_t v;
  assert_int_equal(fnp_parse_bytes("10MiB", &v), 0);
  assert_int_equal(v, 10 << 20);
  assert_int_equal(fnp_parse_bytes("512k", &v), 0);
  assert_int_equal(v, 512 << 10);
  assert_int_equal(fnp_parse_bytes("1.5GB", &v), 0);
  assert_int_equal(v, 3LL << 29);
  assert_int_equal(fnp_parse_bytes("4096", &v), 0);
  assert_int_equal(v, 4096);
  assert_int_equal(fnp_parse_bytes("12 parsecs", &v), FNP_EUSAGE);
  assert_int_equal(fnp_parse_bytes("", &v), FNP_EUSAGE);
  assert_int_equal(fnp_parse_bytes("10Mx", &v), FNP_EUSAGE);
}

static void test_strerror(void **state) {
  (void)state;
  assert_string_equal(fnp_strerror(FNP_EPARSE), "malformed input");
  assert_string_equal(fnp_strerror(-ENOENT), strerror(ENOENT));
  fnp_error err;
  assert_int_equal(fnp_fail(&err, FNP_ETOOBIG, "n=%d", 3), FNP_ETOOBIG);
  assert_int_equal(err.code, FNP_ETOOBIG);
  assert_string_equal(err.msg, "n=3");
  assert_int_equal(fnp_fail(NULL, FNP_EPARSE, "x"), FNP_EPARSE);
}

static void test_file_io(void **state) {
  (void)state;
  char path[] = "/tmp/fnprof-common-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(fnp_write_file(path, "hello", 5, NULL), 0);
  uint8_t *d;
  size_t n;
  assert_int_equal(fnp_read_file(path, 5, &d, &n, NULL), 0);
  assert_int_equal(n, 5);
  assert_memory_equal(d, "hello", 5);
  free(d);
  fnp_error err;
  assert_int_equal(fnp_read_file(path, 4, &d, &n, &err), FNP_ETOOBIG);
  assert_non_null(strstr(err.msg, "larger than 4"));
  unlink(path);
  assert_int_equal(fnp_read_file(path, 4, &d, &n, &err), -ENOENT);
}

/* NODE_OPTIONS for JIT names: the user's options kept first, our flags
 * added once, never twice (a sidecar under `fnprof run` adds them again). */
static void test_node_options_jit_names(void **state) {
  (void)state;
  char *v = fnp_node_options_jit_names(NULL);
  assert_string_equal(v, "--perf-basic-prof-only-functions "
                         "--interpreted-frames-native-stack");
  char *again = fnp_node_options_jit_names(v);
  assert_string_equal(again, v);
  free(again);
  free(v);
  v = fnp_node_options_jit_names("--max-old-space-size=512 "
                                 "--interpreted-frames-native-stack");
  assert_string_equal(v, "--max-old-space-size=512 "
                         "--interpreted-frames-native-stack "
                         "--perf-basic-prof-only-functions");
  free(v);
  /* A longer flag that merely starts with ours does not count. */
  v = fnp_node_options_jit_names("--perf-basic-prof-only-functions-x");
  assert_string_equal(v, "--perf-basic-prof-only-functions-x "
                         "--perf-basic-prof-only-functions "
                         "--interpreted-frames-native-stack");
  free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buf_cap_is_enforced),
      cmocka_unit_test(test_i64_text),
      cmocka_unit_test(test_format_bytes),
      cmocka_unit_test(test_parse_bytes),
      cmocka_unit_test(test_strerror),
      cmocka_unit_test(test_file_io),
      cmocka_unit_test(test_node_options_jit_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
