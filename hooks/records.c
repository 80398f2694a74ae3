/*
 * records.c - the bounded buffer of JSON lines waiting for export. The loop
 * thread appends; the export thread copies batches out and releases what
 * every sink acknowledged. A full buffer drops the newest record and counts
 * it; the count goes out as a record of its own (never silent).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Room past the cap for the drop-count record, so reporting a drop can
 * never itself be dropped. */
#define DROP_RECORD_HEADROOM_BYTES 512

int sc__records_init(sc_records *r, size_t cap) {
  memset(r, 0, sizeof(*r));
  r->cap = cap;
  fnp_buf_init(&r->buf, cap + DROP_RECORD_HEADROOM_BYTES);
  if (pthread_mutex_init(&r->lock, NULL) != 0)
    return -ENOMEM;
  return 0;
}

void sc__records_destroy(sc_records *r) {
  fnp_buf_destroy(&r->buf);
  pthread_mutex_destroy(&r->lock);
}

/* The drop record, under the lock: it may use the headroom. */
static int add_drop_record(sc_records *r, const void *obj, size_t len) {
  int rc;
  if (r->buf.len + len + 1 > r->buf.cap)
    return FNP_ETOOBIG;
  rc = fnp_buf_append(&r->buf, obj, len);
  if (rc == 0)
    rc = fnp_buf_append(&r->buf, "\n", 1);
  return rc;
}

fnp_buf *sc__records_open(sc_records *r, size_t *mark) {
  pthread_mutex_lock(&r->lock);
  *mark = r->buf.len;
  return &r->buf;
}

int sc__records_close(sc_records *r, size_t mark, int rc) {
  if (rc == 0 && r->buf.len + 1 > r->cap)
    rc = FNP_ETOOBIG; /* the headroom is the drop record's */
  if (rc == 0)
    rc = fnp_buf_append(&r->buf, "\n", 1);
  if (rc < 0) {
    r->buf.len = mark; /* the record taken back whole */
    r->dropped++;
    r->dropped_total++;
  }
  pthread_mutex_unlock(&r->lock);
  return rc;
}

int sc__records_add(sc_records *r, const void *obj, size_t len) {
  size_t mark;
  fnp_buf *b = sc__records_open(r, &mark);
  return sc__records_close(r, mark, fnp_buf_append(b, obj, len));
}

void sc__records_drop(sc_records *r) {
  pthread_mutex_lock(&r->lock);
  r->dropped++;
  r->dropped_total++;
  pthread_mutex_unlock(&r->lock);
}

void sc__records_note_drops(sc_records *r, const char *instance_id) {
  char line[DROP_RECORD_HEADROOM_BYTES];
  int n;
  pthread_mutex_lock(&r->lock);
  if (r->dropped == 0)
    goto out;
  n = snprintf(line, sizeof(line),
               "{\"kind\":\"dropped\",\"time_ns\":%lld,\"instance\":\"%.64s\","
               "\"records\":%llu,\"records_total\":%llu}",
               (long long)sc__realtime_ns(), instance_id,
               (unsigned long long)r->dropped,
               (unsigned long long)r->dropped_total);
  if (n > 0 && (size_t)n < sizeof(line) &&
      add_drop_record(r, line, (size_t)n) == 0)
    r->dropped = 0;
out:
  pthread_mutex_unlock(&r->lock);
}

uint64_t sc__records_end(sc_records *r) {
  uint64_t end;
  pthread_mutex_lock(&r->lock);
  end = r->base + r->buf.len;
  pthread_mutex_unlock(&r->lock);
  return end;
}

/* Whole lines from `from`: cut after the last '\n' within max, or after the
 * first line if that alone is longer. */
int sc__records_copy(sc_records *r, uint64_t from, size_t max, uint8_t **out,
                     size_t *len) {
  const uint8_t *p, *nl;
  size_t avail, n;
  int rc = 0;
  *out = NULL;
  *len = 0;
  pthread_mutex_lock(&r->lock);
  if (from < r->base || from > r->base + r->buf.len) {
    rc = FNP_EUSAGE;
    goto out;
  }
  p = r->buf.data + (from - r->base);
  avail = r->buf.len - (size_t)(from - r->base);
  n = avail < max ? avail : max;
  nl = n ? memrchr(p, '\n', n) : NULL;
  if (nl == NULL && n > 0)
    nl = memchr(p, '\n', avail);
  if (nl == NULL)
    goto out; /* nothing whole to send */
  n = (size_t)(nl - p) + 1;
  *out = malloc(n);
  if (*out == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  memcpy(*out, p, n);
  *len = n;
out:
  pthread_mutex_unlock(&r->lock);
  return rc;
}

void sc__records_release(sc_records *r, uint64_t upto) {
  size_t n;
  pthread_mutex_lock(&r->lock);
  if (upto > r->base) {
    n = (size_t)(upto - r->base);
    if (n > r->buf.len)
      n = r->buf.len;
    memmove(r->buf.data, r->buf.data + n, r->buf.len - n);
    r->buf.len -= n;
    r->base += n;
  }
  pthread_mutex_unlock(&r->lock);
}
