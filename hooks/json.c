/*
 * json.c - escaping text for the JSON lines the sidecar exports, and the two
 * clocks it reads. Invalid UTF-8 from the function's output becomes U+FFFD so
 * every exported line is valid JSON; everything else is kept byte for byte.
 */
#include <time.h>

#include "internal.h"

int64_t sc__realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sc__mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  size_t len, i;
  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    len = 2;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    len = 3;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    len = 4;
  else
    return 0;
  if (n < len)
    return 0;
  for (i = 1; i < len; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  /* Overlong 3/4-byte forms, surrogates and > U+10FFFF. */
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
      (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
    return 0;
  return len;
}

static int escape_byte(fnp_buf *b, unsigned char c) {
  switch (c) {
  case '"':
    return fnp_buf_append(b, "\\\"", 2);
  case '\\':
    return fnp_buf_append(b, "\\\\", 2);
  case '\n':
    return fnp_buf_append(b, "\\n", 2);
  case '\r':
    return fnp_buf_append(b, "\\r", 2);
  case '\t':
    return fnp_buf_append(b, "\\t", 2);
  default:
    if (c < 0x20 || c == 0x7f)
      return fnp_buf_printf(b, "\\u%04x", c);
    return fnp_buf_append(b, &c, 1);
  }
}

int sc__json_str(fnp_buf *b, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, len;
  int rc = fnp_buf_append(b, "\"", 1);
  while (rc == 0 && i < n) {
    len = utf8_len(s + i, n - i);
    if (len == 1)
      rc = escape_byte(b, s[i]);
    else if (len > 1)
      rc = fnp_buf_append(b, s + i, len);
    else
      rc = fnp_buf_append(b, "\xef\xbf\xbd", 3); /* U+FFFD */
    i += len ? len : 1;
  }
  if (rc == 0)
    rc = fnp_buf_append(b, "\"", 1);
  return rc;
}
