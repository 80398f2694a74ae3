/* The perf map reader (agent/perfmap.c): names for JIT code, the later
 * line winning where code was freed and its address reused, and no name
 * for malformed lines or addresses outside every entry. */
#include "internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char path[64];

static void write_map(const char *text) {
  snprintf(path, sizeof(path), "/tmp/fnprof-test-perfmap-%d.map", getpid());
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static const char *find(const agent__perfmap *m, uintptr_t a) {
  static char buf[128];
  return agent__perfmap_find(m, a, buf, sizeof(buf)) ? buf : NULL;
}

static void test_names_and_reuse(void **state) {
  (void)state;
  write_map("7f0000001000 100 JS:~steady /srv/app.js:5:16\n"
            "garbage line\n"
            "7f0000002000 40 JS:^buildReportCache /srv/app.js:2:26\n"
            "7f0000001000 80 JS:*steady /srv/app.js:5:16\n" /* reused */
            "7f0000003000 0 zero-sized\n"
            "7f0000004000 10 last line without newline");
  agent__perfmap m;
  assert_int_equal(agent__perfmap_open_path(&m, path), 0);
  assert_string_equal(find(&m, 0x7f0000001000), "JS:*steady /srv/app.js:5:16");
  assert_string_equal(find(&m, 0x7f000000107f), "JS:*steady /srv/app.js:5:16");
  assert_null(find(&m, 0x7f0000000fff));
  assert_string_equal(find(&m, 0x7f000000203f),
                      "JS:^buildReportCache /srv/app.js:2:26");
  assert_null(find(&m, 0x7f0000002040));
  assert_null(find(&m, 0x7f0000003000));
  assert_string_equal(find(&m, 0x7f0000004001), "last line without newline");
  /* A short buffer truncates, still NUL-terminated. */
  char small[6];
  assert_true(agent__perfmap_find(&m, 0x7f0000002000, small, sizeof(small)));
  assert_string_equal(small, "JS:^b");
  agent__perfmap_close(&m);
  unlink(path);
}

static void test_missing_or_empty(void **state) {
  (void)state;
  agent__perfmap m;
  assert_int_equal(agent__perfmap_open_path(&m, "/nonexistent/perf.map"), -1);
  assert_null(find(&m, 0x1000));
  write_map("not a map\n\n");
  assert_int_equal(agent__perfmap_open_path(&m, path), -1);
  agent__perfmap_close(&m);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_and_reuse),
      cmocka_unit_test(test_missing_or_empty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
