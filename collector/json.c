/* JSON string output shared by the file sink, the store and the server. */
#include "internal.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at s (0 if invalid), per RFC 3629. */
static size_t utf8_len(const unsigned char *s, size_t left) {
  unsigned c = s[0];
  size_t n;
  unsigned min;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0)
    n = 2, min = 0x80;
  else if ((c & 0xf0) == 0xe0)
    n = 3, min = 0x800;
  else if ((c & 0xf8) == 0xf0)
    n = 4, min = 0x10000;
  else
    return 0;
  if (n > left)
    return 0;
  unsigned cp = c & (0x7f >> n);
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
  if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return 0;
  return n;
}

int export__json_str(fnp_buf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (s == NULL)
    return fnp_buf_append(b, "null", 4);
  if (len == SIZE_MAX)
    len = strlen(s);
  const unsigned char *p = (const unsigned char *)s;
  int rc = fnp_buf_append(b, "\"", 1);
  size_t run = 0; /* bytes copied verbatim in one append */
  for (size_t i = 0; i < len && rc == 0;) {
    unsigned c = p[i];
    /* Hot path (ingest): printable ASCII is copied as is. */
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      run++;
      i++;
      continue;
    }
    size_t n = utf8_len(p + i, len - i);
    if (n > 0 && c >= 0x20 && c != '"' && c != '\\') {
      run += n;
      i += n;
      continue;
    }
    rc = fnp_buf_append(b, p + i - run, run);
    run = 0;
    char esc[8];
    if (n == 0) {
      rc = rc ? rc : fnp_buf_append(b, "\\ufffd", 6);
      i++;
      continue;
    }
    size_t el = 2;
    esc[0] = '\\';
    if (c == '"' || c == '\\')
      esc[1] = (char)c;
    else if (c == '\n')
      esc[1] = 'n';
    else if (c == '\r')
      esc[1] = 'r';
    else if (c == '\t')
      esc[1] = 't';
    else {
      memcpy(esc, "\\u00", 4);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      el = 6;
    }
    rc = rc ? rc : fnp_buf_append(b, esc, el);
    i++;
  }
  if (rc == 0)
    rc = fnp_buf_append(b, p + len - run, run);
  return rc ? rc : fnp_buf_append(b, "\"", 1);
}

int export__json_kv(fnp_buf *b, const char *key, const char *value) {
  int rc = export__json_str(b, key, SIZE_MAX);
  rc = rc ? rc : fnp_buf_append(b, ":", 1);
  return rc ? rc : export__json_str(b, value, SIZE_MAX);
}
