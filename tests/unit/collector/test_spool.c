/* The on-disk spool: replay order across reopen, size and age limits with
 * counted drops, damaged segments, leftover temp files. */
#include "internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }

static char *tmpdir(void) {
  char *d = strdup("/tmp/fnp_spool_XXXXXX");
  assert_non_null(mkdtemp(d));
  return d;
}

static void rmrf(const char *d) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  assert_int_equal(system(cmd), 0);
}

static export__payload make(int i, int64_t created) {
  static char raw[8][4096];
  for (size_t j = 0; j < sizeof raw[0]; j++)
    raw[i % 8][j] = (char)('a' + (i + j) % 26);
  return (export__payload){.kind = EXPORT__PAYLOAD_SLS,
                           .n_records = 10u + i,
                           .created_ns = created,
                           .raw = (uint8_t *)raw[i % 8],
                           .raw_len = sizeof raw[0]};
}

static void order_across_reopen(void **state) {
  (void)state;
  char *d = tmpdir();
  export__spool *sp;
  assert_int_equal(export__spool_open(d, 0, 0, &sp, NULL), 0);
  for (int i = 0; i < 5; i++) {
    export__payload p = make(i, fake_now);
    p.meta = i == 2 ? "instance=x&kind=heap" : NULL;
    assert_int_equal(export__spool_put(sp, &p, NULL), 0);
  }
  export__spool_close(sp);
  /* A crash between write and rename leaves a temp file: ignored, removed. */
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s/0000000000000009.seg.tmp123", d);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(export__spool_open(d, 0, 0, &sp, NULL), 0);
  assert_int_equal(export__spool_count(sp), 5);
  assert_int_equal(access(tmp, F_OK), -1);
  for (int i = 0; i < 5; i++) {
    export__payload *p;
    assert_int_equal(export__spool_peek(sp, &p, NULL), 0);
    assert_non_null(p);
    export__payload want = make(i, 0);
    assert_int_equal(p->n_records, want.n_records);
    assert_int_equal(p->raw_len, want.raw_len);
    assert_memory_equal(p->raw, want.raw, want.raw_len);
    if (i == 2)
      assert_string_equal(p->meta, "instance=x&kind=heap");
    export__payload_free(p);
    assert_int_equal(export__spool_pop(sp), 0);
  }
  export__payload *p;
  assert_int_equal(export__spool_peek(sp, &p, NULL), 0);
  assert_null(p);
  assert_int_equal(export__spool_take_dropped(sp), 0);
  export__spool_close(sp);
  rmrf(d);
  free(d);
}

static void size_limit_drops_oldest(void **state) {
  (void)state;
  char *d = tmpdir();
  export__spool *sp;
  /* Segments of this payload are ~100 bytes (it compresses well). */
  assert_int_equal(export__spool_open(d, 350, 0, &sp, NULL), 0);
  for (int i = 0; i < 6; i++) {
    export__payload p = make(i, fake_now);
    assert_int_equal(export__spool_put(sp, &p, NULL), 0);
  }
  assert_true(export__spool_bytes(sp) <= 350);
  size_t kept = export__spool_count(sp);
  assert_true(kept >= 1 && kept < 6);
  uint64_t dropped = export__spool_take_dropped(sp);
  uint64_t want = 0;
  for (size_t i = 0; i < 6 - kept; i++)
    want += make((int)i, 0).n_records; /* the oldest went first */
  assert_int_equal(dropped, want);
  export__payload *p;
  assert_int_equal(export__spool_peek(sp, &p, NULL), 0);
  assert_int_equal(p->n_records, make((int)(6 - kept), 0).n_records);
  export__payload_free(p);
  /* A single segment over the whole limit is refused and counted. */
  export__spool_close(sp);
  assert_int_equal(export__spool_open(d, 10, 0, &sp, NULL), 0);
  export__payload big = make(0, fake_now);
  fnp_error err = {0};
  assert_int_equal(export__spool_put(sp, &big, &err), FNP_ETOOBIG);
  assert_int_equal(export__spool_take_dropped(sp), big.n_records);
  export__spool_close(sp);
  rmrf(d);
  free(d);
}

static void age_limit(void **state) {
  (void)state;
  char *d = tmpdir();
  export__spool *sp;
  assert_int_equal(export__spool_open(d, 0, 1000, &sp, NULL), 0);
  export__payload old = make(1, fake_now),
                  young = make(2, fake_now + 1500000000LL);
  assert_int_equal(export__spool_put(sp, &old, NULL), 0);
  assert_int_equal(export__spool_put(sp, &young, NULL), 0);
  fake_now += 2000000000LL; /* 2 s later: the first is past 1 s of age */
  export__payload *p;
  assert_int_equal(export__spool_peek(sp, &p, NULL), 0);
  assert_int_equal(p->n_records, young.n_records);
  export__payload_free(p);
  assert_int_equal(export__spool_take_dropped(sp), old.n_records);
  export__spool_close(sp);
  rmrf(d);
  free(d);
}

static void damaged_segment(void **state) {
  (void)state;
  char *d = tmpdir();
  export__spool *sp;
  assert_int_equal(export__spool_open(d, 0, 0, &sp, NULL), 0);
  export__payload a = make(3, fake_now), b = make(4, fake_now);
  assert_int_equal(export__spool_put(sp, &a, NULL), 0);
  assert_int_equal(export__spool_put(sp, &b, NULL), 0);
  char path[256];
  snprintf(path, sizeof path, "%s/0000000000000000.seg", d);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, -6, SEEK_END); /* inside the zstd frame: its checksum catches it */
  fputc(0x55, f);
  fputc(0xaa, f);
  fclose(f);
  export__payload *p;
  fnp_error err = {0};
  assert_int_equal(export__spool_peek(sp, &p, &err), FNP_EPARSE);
  assert_non_null(strstr(err.msg, "corrupt"));
  assert_int_equal(export__spool_peek(sp, &p, NULL), 0); /* moved past it */
  assert_int_equal(p->n_records, b.n_records);
  export__payload_free(p);
  assert_int_equal(export__spool_take_dropped(sp), a.n_records);
  export__spool_close(sp);
  rmrf(d);
  free(d);
}

int main(void) {
  fake_now = 1700000000LL * 1000000000LL;
  export__spool_clock_ns = fake_clock;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(order_across_reopen),
      cmocka_unit_test(size_limit_drops_oldest),
      cmocka_unit_test(age_limit),
      cmocka_unit_test(damaged_segment),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
