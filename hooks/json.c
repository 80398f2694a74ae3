/*
 * json.c - escaping text for the JSON lines the sidecar exports, reading
 * those flat lines back (the export library wants fields, not JSON), and the
 * two clocks it reads. Invalid UTF-8 from the function's output becomes
 * U+FFFD so every exported line is valid JSON; everything else is kept byte
 * for byte. The reader is for our own records, not a general JSON parser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Printable ASCII other than '"' and '\\': copied as it is. */
static int plain_byte(unsigned char c) {
  return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

int sc__json_str(fnp_buf *b, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, len;
  int rc = fnp_buf_append(b, "\"", 1);
  while (rc == 0 && i < n) {
    /* Hot path (every log line at export): whole runs of plain bytes in
     * one append, not one call per byte. */
    for (len = 0; i + len < n && plain_byte(s[i + len]); len++)
      ;
    if (len > 0) {
      rc = fnp_buf_append(b, s + i, len);
      i += len;
      continue;
    }
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

/* A scalar value read back: strings unescaped, numbers/literals as text. */
#define JSON_VALUE_MAX_BYTES (SC_LINE_MAX_BYTES * 4)

static int hex4(const char *s, size_t n, size_t i, unsigned *out) {
  unsigned v = 0;
  if (i + 4 > n)
    return -1;
  for (size_t k = 0; k < 4; k++) {
    char c = s[i + k];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

static int put_utf8(fnp_buf *b, unsigned cp) {
  unsigned char u[4];
  size_t n;
  if (cp < 0x80)
    u[0] = (unsigned char)cp, n = 1;
  else if (cp < 0x800)
    u[0] = (unsigned char)(0xc0 | cp >> 6),
    u[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
  else if (cp < 0x10000)
    u[0] = (unsigned char)(0xe0 | cp >> 12),
    u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
    u[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
  else
    u[0] = (unsigned char)(0xf0 | cp >> 18),
    u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f)),
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
    u[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
  return fnp_buf_append(b, u, n);
}

/* Reads the string starting after its opening quote at *i into b (NUL
 * terminated); *i ends after the closing quote. */
static int read_str(const char *s, size_t n, size_t *i, fnp_buf *b) {
  static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
  fnp_buf_reset(b);
  while (*i < n && s[*i] != '"') {
    size_t run = 0;
    char c;
    int rc;
    while (*i + run < n && s[*i + run] != '"' && s[*i + run] != '\\')
      run++;
    if (run > 0) { /* a run without escapes, in one append */
      rc = fnp_buf_append(b, s + *i, run);
      *i += run;
      if (rc < 0)
        return -1;
      continue;
    }
    c = s[(*i)++];
    if (c != '\\') {
      rc = fnp_buf_append(b, &c, 1);
    } else if (*i < n && s[*i] == 'u') {
      unsigned cp, lo;
      if (hex4(s, n, *i + 1, &cp) < 0)
        return -1;
      *i += 5;
      if (cp >= 0xd800 && cp <= 0xdbff && *i + 6 <= n && s[*i] == '\\' &&
          s[*i + 1] == 'u' && hex4(s, n, *i + 2, &lo) == 0 && lo >= 0xdc00 &&
          lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        *i += 6;
      } else if (cp >= 0xd800 && cp <= 0xdfff) {
        cp = 0xfffd;
      }
      rc = put_utf8(b, cp);
    } else {
      const char *e = *i < n ? strchr(esc_in, s[*i]) : NULL;
      if (e == NULL || s[*i] == '\0')
        return -1;
      (*i)++;
      rc = fnp_buf_append(b, &esc_out[e - esc_in], 1);
    }
    if (rc < 0)
      return -1;
  }
  if (*i >= n)
    return -1;
  (*i)++;
  return fnp_buf_append(b, "", 1);
}

static void skip_ws(const char *s, size_t n, size_t *i) {
  while (*i < n &&
         (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\r' || s[*i] == '\n'))
    (*i)++;
}

/* A number or literal: its characters up to the next ',' or '}'. */
static int read_scalar(const char *s, size_t n, size_t *i, fnp_buf *b) {
  size_t start = *i;
  fnp_buf_reset(b);
  while (*i < n && s[*i] != ',' && s[*i] != '}' && s[*i] != ' ')
    (*i)++;
  if (*i == start || memchr("-0123456789tfn", s[start], 14) == NULL)
    return -1;
  if (fnp_buf_append(b, s + start, *i - start) < 0)
    return -1;
  return fnp_buf_append(b, "", 1);
}

int sc__json_flat(const char *s, size_t n, sc_json_field_cb cb, void *arg,
                  fnp_error *err) {
  fnp_buf k, v;
  size_t i = 0;
  int rc = 0;
  fnp_buf_init(&k, 256);
  fnp_buf_init(&v, JSON_VALUE_MAX_BYTES);
  skip_ws(s, n, &i);
  if (i >= n || s[i++] != '{')
    goto bad;
  skip_ws(s, n, &i);
  if (i < n && s[i] == '}')
    goto done;
  for (;;) {
    skip_ws(s, n, &i);
    if (i >= n || s[i++] != '"' || read_str(s, n, &i, &k) < 0)
      goto bad;
    skip_ws(s, n, &i);
    if (i >= n || s[i++] != ':')
      goto bad;
    skip_ws(s, n, &i);
    if (i < n && s[i] == '"') {
      i++;
      if (read_str(s, n, &i, &v) < 0)
        goto bad;
    } else if (read_scalar(s, n, &i, &v) < 0) {
      goto bad;
    }
    rc = cb(arg, (const char *)k.data, (const char *)v.data);
    if (rc < 0)
      goto out;
    skip_ws(s, n, &i);
    if (i < n && s[i] == ',') {
      i++;
      continue;
    }
    if (i < n && s[i] == '}')
      break;
    goto bad;
  }
done:
  rc = 0;
  goto out;
bad:
  rc = fnp_fail(err, FNP_EPARSE, "record: not a flat JSON object at byte %zu",
                i);
out:
  fnp_buf_destroy(&k);
  fnp_buf_destroy(&v);
  return rc;
}

int sc__json_find_str(const char *json, const char *key, char *out,
                      size_t cap) {
  char pat[128];
  const char *p;
  size_t i = 0, n;
  fnp_buf b;
  int rc;
  snprintf(pat, sizeof(pat), "\"%s\":\"", key);
  p = strstr(json, pat);
  if (p == NULL || cap == 0)
    return -1;
  p += strlen(pat);
  n = strlen(p);
  fnp_buf_init(&b, JSON_VALUE_MAX_BYTES);
  rc = read_str(p, n, &i, &b);
  if (rc == 0) {
    n = b.len - 1 < cap - 1 ? b.len - 1 : cap - 1;
    memcpy(out, b.data, n);
    out[n] = '\0';
  }
  fnp_buf_destroy(&b);
  return rc;
}
