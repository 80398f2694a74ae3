/* fnp_buf: a growable byte buffer with a mandatory cap. */
#include <fnprof/common.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_ALLOC 256

void fnp_buf_init(fnp_buf *b, size_t cap) {
  memset(b, 0, sizeof *b);
  b->cap = cap;
}

void fnp_buf_destroy(fnp_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

void fnp_buf_reset(fnp_buf *b) { b->len = 0; }

int fnp_buf_reserve(fnp_buf *b, size_t n) {
  if (n > b->cap || b->len > b->cap - n)
    return FNP_ETOOBIG;
  size_t need = b->len + n;
  if (need <= b->alloc)
    return 0;
  size_t alloc = b->alloc ? b->alloc : BUF_MIN_ALLOC;
  while (alloc < need)
    alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
  if (alloc > b->cap)
    alloc = b->cap;
  uint8_t *p = realloc(b->data, alloc);
  if (p == NULL)
    return -ENOMEM;
  b->data = p;
  b->alloc = alloc;
  return 0;
}

int fnp_buf_append(fnp_buf *b, const void *data, size_t len) {
  int rc = fnp_buf_reserve(b, len);
  if (rc < 0)
    return rc;
  if (len > 0)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  return 0;
}

int fnp_buf_printf(fnp_buf *b, const char *fmt, ...) {
  va_list ap;
  /* Formatted straight into the room there is: a second pass only when it
   * did not fit (two passes each time were a visible part of the sidecar's
   * time per request). The room keeps a byte for vsnprintf's NUL. */
  size_t room = b->alloc - b->len;
  va_start(ap, fmt);
  int n = vsnprintf(room ? (char *)b->data + b->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n < 0)
    return FNP_EUSAGE;
  if ((size_t)n < room) { /* alloc never exceeds cap */
    b->len += (size_t)n;
    return 0;
  }
  /* +1 for the terminating NUL vsnprintf writes; it is not counted in len. */
  int rc = fnp_buf_reserve(b, (size_t)n + 1);
  if (rc < 0)
    return rc;
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

int fnp_buf_append_str(fnp_buf *b, const char *s) {
  return fnp_buf_append(b, s, strlen(s));
}

size_t fnp_i64_text(int64_t v, char *out) {
  char tmp[24];
  size_t n = 0, len = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u > 0);
  if (v < 0)
    out[len++] = '-';
  while (n > 0)
    out[len++] = tmp[--n];
  out[len] = '\0';
  return len;
}

int fnp_buf_append_i64(fnp_buf *b, int64_t v) {
  char d[24];
  return fnp_buf_append(b, d, fnp_i64_text(v, d));
}

uint8_t *fnp_buf_steal(fnp_buf *b, size_t *len) {
  uint8_t *p = b->data;
  if (len != NULL)
    *len = b->len;
  b->data = NULL;
  b->len = b->alloc = 0;
  return p;
}
