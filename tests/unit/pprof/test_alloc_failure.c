/*
 * Fault injection (curl memdebug style): fail the Nth allocation made by the
 * pprof library, for every N, while it decodes and encodes a profile written
 * by Go. Each run must either succeed or fail with a clean error: no crash,
 * no partial result handed out, and (under the ASan pass) no leak.
 * malloc/calloc/realloc are wrapped at link time (-Wl,--wrap), so only calls
 * made from our objects are counted, not those inside libc or zlib.
 */
#include <fnprof/pprof.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long countdown = -1; /* < 0: never fail */
static bool failed;

static bool should_fail(void) {
  if (countdown < 0)
    return false;
  if (countdown-- == 0) {
    failed = true;
    return true;
  }
  return false;
}

void *__wrap_malloc(size_t n) {
  return should_fail() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m) {
  return should_fail() ? NULL : __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n) {
  return should_fail() ? NULL : __real_realloc(p, n);
}

static uint8_t *fixture;
static size_t fixture_len;

static void load_fixture(void) {
  fnp_error err = {0};
  if (fnp_read_file(FIXTURE_PATH, 1 << 20, &fixture, &fixture_len, &err) < 0)
    fail_msg("%s", err.msg);
}

static void test_decode_every_failure(void **state) {
  (void)state;
  load_fixture();
  long n;
  for (n = 0;; n++) {
    failed = false;
    countdown = n;
    pprof_profile *p = NULL;
    fnp_error err = {0};
    int rc = pprof_decode(fixture, fixture_len, NULL, &p, &err);
    countdown = -1;
    if (!failed) {
      assert_int_equal(rc, 0);
      pprof_profile_free(p);
      break;
    }
    if (rc == 0) {
      pprof_profile_free(p); /* a failure that was handled by retrying */
      continue;
    }
    assert_null(p);
    assert_true(err.msg[0] != '\0');
  }
  assert_true(n > 10); /* the decode really allocates; we covered each */
}

static void test_encode_every_failure(void **state) {
  (void)state;
  pprof_profile *p = NULL;
  assert_int_equal(pprof_decode(fixture, fixture_len, NULL, &p, NULL), 0);
  long n;
  for (n = 0;; n++) {
    failed = false;
    countdown = n;
    uint8_t *out = NULL;
    size_t len = 0;
    fnp_error err = {0};
    int rc = pprof_encode(p, true, &out, &len, &err);
    countdown = -1;
    if (!failed) {
      assert_int_equal(rc, 0);
      free(out);
      break;
    }
    if (rc == 0)
      free(out);
    else
      assert_true(err.msg[0] != '\0');
  }
  assert_true(n > 5);
  pprof_profile_free(p);
  free(fixture);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_every_failure),
      cmocka_unit_test(test_encode_every_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
