/*
 * Fault injection (curl memdebug style): fail the Nth allocation made by the
 * pprof library, for every N, while it decodes and encodes a profile written
 * by Go. Each run must either succeed or fail with a clean error: no crash,
 * no partial result handed out, and (under the ASan pass) no leak.
 * The failures come from tests/unit/fail_alloc.h.
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

#include "fail_alloc.h"

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
    fail_alloc_arm(n);
    pprof_profile *p = NULL;
    fnp_error err = {0};
    int rc = pprof_decode(fixture, fixture_len, NULL, &p, &err);
    if (!fail_alloc_disarm()) {
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
    fail_alloc_arm(n);
    uint8_t *out = NULL;
    size_t len = 0;
    fnp_error err = {0};
    int rc = pprof_encode(p, true, &out, &len, &err);
    if (!fail_alloc_disarm()) {
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
