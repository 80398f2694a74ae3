/* FNPROF_* parsing: defaults, suffixes, clamps, and hostile values. */
#include "internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

static agent__config parse(char **envp) {
  agent__config c;
  memset(&c, 0xa5, sizeof(c)); /* every field must be set by the parser */
  agent__config_parse(&c, envp);
  return c;
}

static void test_defaults(void **state) {
  (void)state;
  char *env[] = {"PATH=/bin", "FNPROF=1", "FNPROF_RATEX=5", NULL};
  agent__config c = parse(env);
  assert_int_equal(c.rate, 524288);
  assert_int_equal(c.depth, 64);
  assert_int_equal(c.cycle_percent, 100);
  assert_int_equal(c.cycle_ms, 0);
  assert_true(c.follow_exec);
  assert_true(c.control);
  assert_string_equal(c.dir, "");
  assert_string_equal(c.control_path, "");
  assert_int_equal(c.spike_min_bytes, 8 << 20);
  assert_int_equal(c.spike_diff_pct, 50);
  assert_int_equal(c.spike_abs_bytes, 0);
  assert_int_equal(c.spike_history, 10);
  assert_int_equal(c.spike_cooldown_ms, 60000);
  c = parse(NULL); /* no environment at all */
  assert_int_equal(c.rate, 524288);
}

static void test_values_and_suffixes(void **state) {
  (void)state;
  char *env[] = {"FNPROF_RATE=1",          "FNPROF_DEPTH=16",
                 "FNPROF_SPIKE_MIN=10MiB", "FNPROF_SPIKE_ABS=1g",
                 "FNPROF_CYCLE_MS=250",    "FNPROF_DIR=/tmp/p",
                 "FNPROF_CONTROL=off",     "FNPROF_FOLLOW_EXEC=0",
                 "FNPROF_SPIKE_DIFF=20",   NULL};
  agent__config c = parse(env);
  assert_int_equal(c.rate, 1);
  assert_int_equal(c.depth, 16);
  assert_int_equal(c.spike_min_bytes, 10 << 20);
  assert_int_equal(c.spike_abs_bytes, (int64_t)1 << 30);
  assert_int_equal(c.cycle_ms, 250);
  assert_string_equal(c.dir, "/tmp/p");
  assert_false(c.control);
  assert_false(c.follow_exec);
  assert_int_equal(c.spike_diff_pct, 20);
  char *k[] = {"FNPROF_RATE=512k", "FNPROF_SPIKE_MIN=4KB", NULL};
  c = parse(k);
  assert_int_equal(c.rate, 512 << 10);
  assert_int_equal(c.spike_min_bytes, 4 << 10);
}

static void test_hostile(void **state) {
  (void)state;
  static char long_dir[2000];
  memset(long_dir, 'd', sizeof(long_dir) - 1);
  memcpy(long_dir, "FNPROF_DIR=", 11);
  char *env[] = {"FNPROF_RATE=-5",
                 "FNPROF_DEPTH=100000",
                 "FNPROF_CYCLE_PERCENT=12abc",
                 "FNPROF_SPIKE_MIN=99999999999999999999999",
                 "FNPROF_SPIKE_ABS=9999999999999g",
                 "FNPROF_SPIKE_HISTORY=0",
                 "FNPROF_CYCLE_MS=",
                 long_dir,
                 NULL};
  agent__config c = parse(env);
  assert_int_equal(c.rate, 524288);           /* malformed: default */
  assert_int_equal(c.depth, AGENT_MAX_DEPTH); /* clamped */
  assert_int_equal(c.cycle_percent, 100);
  assert_int_equal(c.spike_min_bytes, 8 << 20); /* overflow: default */
  assert_int_equal(c.spike_abs_bytes, 0);
  assert_int_equal(c.spike_history, 1); /* clamped */
  assert_int_equal(c.cycle_ms, 0);
  assert_string_equal(c.dir, ""); /* too long for the buffer: not used */
  char *d0[] = {"FNPROF_DEPTH=0", NULL};
  assert_int_equal(parse(d0).depth, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_values_and_suffixes),
      cmocka_unit_test(test_hostile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
