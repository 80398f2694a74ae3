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

static int plain(unsigned c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* What the sequence at p (left bytes remain) becomes in JSON: its length
 * there (the return) and in the input (*n). Printable ASCII and valid
 * UTF-8 stay as they are; '"', '\\', \n, \r, \t take a backslash; other
 * controls are \u00XX; a byte that starts no valid sequence is \ufffd. */
static size_t out_len(const unsigned char *p, size_t left, size_t *n) {
  unsigned c = p[0];
  *n = 1;
  if (plain(c))
    return 1;
  if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t')
    return 2;
  if (c < 0x20)
    return 6;
  size_t u = utf8_len(p, left);
  *n = u ? u : 1;
  return u ? u : 6;
}

static void escape_to(unsigned char *o, const unsigned char *p, size_t len) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0, n; i < len; i += n) {
    unsigned c = p[i];
    if (plain(c)) { /* hot path (ingest) */
      *o++ = (unsigned char)c;
      n = 1;
      continue;
    }
    size_t m = out_len(p + i, len - i, &n);
    if (m == n) {
      memcpy(o, p + i, n);
    } else if (m == 2) {
      o[0] = '\\';
      o[1] = c == '\n'   ? 'n'
             : c == '\r' ? 'r'
             : c == '\t' ? 't'
                         : (unsigned char)c;
    } else if (c < 0x20) {
      memcpy(o, "\\u00", 4);
      o[4] = (unsigned char)hex[c >> 4];
      o[5] = (unsigned char)hex[c & 15];
    } else {
      memcpy(o, "\\ufffd", 6);
    }
    o += m;
  }
}

/* Two passes, the exact size and then the bytes, so the buffer grows once
 * and its cap is checked against what is really written. */
int export__json_str(fnp_buf *b, const char *s, size_t len) {
  if (s == NULL)
    return fnp_buf_append(b, "null", 4);
  if (len == SIZE_MAX)
    len = strlen(s);
  const unsigned char *p = (const unsigned char *)s;
  size_t need = 2, n;
  for (size_t i = 0; i < len; i += n)
    need += plain(p[i]) ? (n = 1) : out_len(p + i, len - i, &n);
  int rc = fnp_buf_reserve(b, need);
  if (rc < 0)
    return rc;
  unsigned char *o = b->data + b->len;
  o[0] = '"';
  escape_to(o + 1, p, len);
  o[need - 1] = '"';
  b->len += need;
  return 0;
}

int export__json_kv(fnp_buf *b, const char *key, const char *value) {
  int rc = export__json_str(b, key, SIZE_MAX);
  rc = rc ? rc : fnp_buf_append(b, ":", 1);
  return rc ? rc : export__json_str(b, value, SIZE_MAX);
}
