/*
 * pprof__load_bias on program headers shaped like real linkers' output:
 * where a file's bytes at a mapping's offset were linked, and so how far the
 * loader moved it. Layouts are from `readelf -lW` of GNU ld and lld output.
 */
#include "symbolize.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define PAGE 0x1000

/* GNU ld -z separate-code (Debian's default): every segment page-aligned in
 * the file, text in the second segment. */
static const pprof__load_seg ld_pie[] = {
    {.vaddr = 0x0, .offset = 0x0, .filesz = 0x6a8, .align = PAGE},
    {.vaddr = 0x1000,
     .offset = 0x1000,
     .filesz = 0x3c1,
     .align = PAGE,
     .exec = true},
    {.vaddr = 0x2000, .offset = 0x2000, .filesz = 0x1a4, .align = PAGE},
    {.vaddr = 0x3de8, .offset = 0x2de8, .filesz = 0x278, .align = PAGE},
};

/* lld packs segments in the file but starts each on a new page in memory,
 * so text's p_vaddr - p_offset differs from the first segment's and three
 * segments share the first file page. */
static const pprof__load_seg lld_so[] = {
    {.vaddr = 0x0, .offset = 0x0, .filesz = 0x5c0, .align = PAGE},
    {.vaddr = 0x15c0,
     .offset = 0x5c0,
     .filesz = 0x200,
     .align = PAGE,
     .exec = true},
    {.vaddr = 0x27c0, .offset = 0x7c0, .filesz = 0x100, .align = PAGE},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_pie_text_mapping(void **state) {
  (void)state;
  const uint64_t bias = 0x555555554000;
  uint64_t got = 0;
  /* /proc/PID/maps: 555555555000-555555556000 r-xp 00001000 ... */
  assert_int_equal(
      pprof__load_bias(ld_pie, N(ld_pie), bias + 0x1000, 0x1000, &got), 0);
  assert_int_equal(got, bias);
}

/* A mapping that starts inside a segment (the kernel split it, or only a
 * part was listed) gives the same bias. */
static void test_mapping_inside_segment(void **state) {
  (void)state;
  static const pprof__load_seg big[] = {
      {.vaddr = 0x400000,
       .offset = 0x1000,
       .filesz = 0x80000,
       .align = PAGE,
       .exec = true},
  };
  const uint64_t bias = 0x7f0000000000;
  uint64_t got = 0;
  assert_int_equal(
      pprof__load_bias(big, 1, bias + 0x400000 + 0x3000, 0x4000, &got), 0);
  assert_int_equal(got, bias);
}

/* Offset 0 lies in all three lld segments; only the executable one gives
 * the bias the loader used (text mapped at bias + 0x1000, offset 0). */
static void test_shared_page_prefers_text(void **state) {
  (void)state;
  const uint64_t bias = 0x7ffff7fc0000;
  uint64_t got = 0;
  assert_int_equal(
      pprof__load_bias(lld_so, N(lld_so), bias + 0x1000, 0x0, &got), 0);
  assert_int_equal(got, bias);
}

/* A mapping whose offset no segment holds is not this file's. */
static void test_offset_outside_every_segment(void **state) {
  (void)state;
  uint64_t got = 42;
  assert_int_equal(pprof__load_bias(ld_pie, N(ld_pie), 0x10000, 0x9000, &got),
                   FNP_ENOTFOUND);
  assert_int_equal(got, 42);
  assert_int_equal(pprof__load_bias(NULL, 0, 0x10000, 0, &got), FNP_ENOTFOUND);
}

/* Segments with no file bytes (.bss-only) map nothing from the file. */
static void test_empty_segment_ignored(void **state) {
  (void)state;
  static const pprof__load_seg bss[] = {
      {.vaddr = 0x5000, .offset = 0x3000, .filesz = 0, .align = PAGE},
  };
  uint64_t got;
  assert_int_equal(pprof__load_bias(bss, 1, 0x5000, 0x3000, &got),
                   FNP_ENOTFOUND);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pie_text_mapping),
      cmocka_unit_test(test_mapping_inside_segment),
      cmocka_unit_test(test_shared_page_prefers_text),
      cmocka_unit_test(test_offset_outside_every_segment),
      cmocka_unit_test(test_empty_segment_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
