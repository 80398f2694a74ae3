/* export__json_str: JSON string output (RFC 8259 section 7) of arbitrary
 * bytes. Expected strings are written from the RFC and RFC 3629 (UTF-8),
 * not taken from the code: what must be escaped, what stays, and which
 * bytes are not UTF-8 and become U+FFFD. */
#include "internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void check(const char *in, size_t len, const char *want) {
  fnp_buf b;
  fnp_buf_init(&b, 1u << 20);
  assert_int_equal(export__json_str(&b, in, len), 0);
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.data, want, b.len);
  fnp_buf_destroy(&b);
}

static void escapes(void **state) {
  (void)state;
  check("plain text ~ 0x7f:\x7f", SIZE_MAX, "\"plain text ~ 0x7f:\x7f\"");
  check("", SIZE_MAX, "\"\"");
  check("a\"b\\c", SIZE_MAX, "\"a\\\"b\\\\c\"");
  check("l1\nl2\r\tx", SIZE_MAX, "\"l1\\nl2\\r\\tx\"");
  check("\x01\x1f", SIZE_MAX, "\"\\u0001\\u001f\"");
  check("nul\0in", 6, "\"nul\\u0000in\""); /* an explicit length */
}

static void utf8(void **state) {
  (void)state;
  /* Valid 2-, 3- and 4-byte sequences stay as they are. */
  check("\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80", SIZE_MAX,
        "\"\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80\"");
  /* A stray continuation byte, an overlong '/', a surrogate (U+D800), a
   * value past U+10FFFF, and a sequence cut by the end: each byte that
   * starts no valid sequence is one U+FFFD, and decoding resumes after
   * it. */
  check("a\x80z", SIZE_MAX, "\"a\\ufffdz\"");
  check("\xc0\xaf", SIZE_MAX, "\"\\ufffd\\ufffd\"");
  check("\xed\xa0\x80", SIZE_MAX, "\"\\ufffd\\ufffd\\ufffd\"");
  check("\xf4\x90\x80\x80", SIZE_MAX, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  check("ok\xe6\x97", SIZE_MAX, "\"ok\\ufffd\\ufffd\"");
}

static void null_and_cap(void **state) {
  (void)state;
  check(NULL, 0, "null");
  /* The cap is checked against the exact output: 4 bytes fit a cap of 4
   * ("ab" quoted), 5 do not. */
  fnp_buf b;
  fnp_buf_init(&b, 4);
  assert_int_equal(export__json_str(&b, "ab", SIZE_MAX), 0);
  fnp_buf_reset(&b);
  assert_int_equal(export__json_str(&b, "abc", SIZE_MAX), FNP_ETOOBIG);
  fnp_buf_destroy(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(escapes),
      cmocka_unit_test(utf8),
      cmocka_unit_test(null_and_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
