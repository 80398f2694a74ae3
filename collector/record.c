/*
 * The record model and batcher: a batch copies the records it is given into
 * an arena of fixed chunks, so pointers it hands out never move. Encoding and
 * shipping are left to sls_encode.c, otlp_encode.c and sink.c.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Chunk size: big enough that a typical batch needs a handful of mallocs. */
#define ARENA_CHUNK_BYTES (64 * 1024)
#define NS_PER_MS 1000000LL

typedef struct chunk {
  struct chunk *next;
  size_t used, size;
  _Alignas(max_align_t) unsigned char data[];
} chunk;

struct export_batch {
  export_batch_limits lim;
  int64_t created_ns;
  export_record *rec;
  size_t n, alloc;
  size_t bytes; /* arena bytes charged against lim.max_bytes */
  chunk *chunks;
};

int export_batch_new(const export_batch_limits *lim, int64_t now_ns,
                     export_batch **out) {
  export_batch *b = calloc(1, sizeof *b);
  if (b == NULL)
    return -ENOMEM;
  if (lim != NULL)
    b->lim = *lim;
  if (b->lim.max_records == 0)
    b->lim.max_records = EXPORT_BATCH_MAX_RECORDS;
  if (b->lim.max_bytes == 0)
    b->lim.max_bytes = EXPORT_BATCH_MAX_BYTES;
  if (b->lim.max_age_ms == 0)
    b->lim.max_age_ms = EXPORT_BATCH_MAX_AGE_MS;
  b->created_ns = now_ns;
  *out = b;
  return 0;
}

void export_batch_free(export_batch *b) {
  if (b == NULL)
    return;
  for (chunk *c = b->chunks, *next; c != NULL; c = next) {
    next = c->next;
    free(c);
  }
  free(b->rec);
  free(b);
}

/* Arena allocation, max_align_t aligned. A request larger than a chunk gets
 * a chunk of its own, linked behind the current one. */
static void *arena_alloc(export_batch *b, size_t n) {
  const size_t align = _Alignof(max_align_t);
  n = (n + align - 1) & ~(align - 1);
  chunk *c = b->chunks;
  if (c == NULL || c->size - c->used < n) {
    size_t size = n > ARENA_CHUNK_BYTES ? n : ARENA_CHUNK_BYTES;
    chunk *nc = malloc(sizeof *nc + size);
    if (nc == NULL)
      return NULL;
    nc->used = 0;
    nc->size = size;
    if (c != NULL && n > ARENA_CHUNK_BYTES) {
      nc->next = c->next; /* keep filling the current chunk afterwards */
      c->next = nc;
    } else {
      nc->next = c;
      b->chunks = nc;
    }
    c = nc;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

static size_t str_bytes(const char *s) { return s ? strlen(s) + 1 : 0; }

/* Everything export_batch_add will copy, so it can refuse before copying. */
static size_t record_bytes(const export_record *r) {
  size_t n = str_bytes(r->instance) + str_bytes(r->request_id) +
             str_bytes(r->metric_name) + str_bytes(r->metric_unit);
  n += r->n_fields * sizeof(export_field);
  for (size_t i = 0; i < r->n_fields; i++)
    n += str_bytes(r->fields[i].key) + str_bytes(r->fields[i].value);
  return n;
}

static const char *dup_str(export_batch *b, const char *s, int *rc) {
  if (s == NULL || *rc < 0)
    return NULL;
  size_t n = strlen(s) + 1;
  char *p = arena_alloc(b, n);
  if (p == NULL) {
    *rc = -ENOMEM;
    return NULL;
  }
  return memcpy(p, s, n);
}

static int grow_records(export_batch *b) {
  if (b->n < b->alloc)
    return 0;
  size_t alloc = b->alloc ? b->alloc * 2 : 64;
  if (alloc > b->lim.max_records)
    alloc = b->lim.max_records;
  export_record *p = realloc(b->rec, alloc * sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  b->rec = p;
  b->alloc = alloc;
  return 0;
}

int export_batch_add(export_batch *b, const export_record *r) {
  size_t need = record_bytes(r);
  if (b->n >= b->lim.max_records || need > b->lim.max_bytes - b->bytes)
    return FNP_ETOOBIG;
  int rc = grow_records(b);
  if (rc < 0)
    return rc;
  export_record *d = &b->rec[b->n];
  *d = *r;
  d->fields = NULL;
  d->instance = dup_str(b, r->instance, &rc);
  d->request_id = dup_str(b, r->request_id, &rc);
  d->metric_name = dup_str(b, r->metric_name, &rc);
  d->metric_unit = dup_str(b, r->metric_unit, &rc);
  if (r->n_fields > 0 && rc == 0) {
    export_field *f = arena_alloc(b, r->n_fields * sizeof *f);
    if (f == NULL)
      return -ENOMEM;
    for (size_t i = 0; i < r->n_fields; i++) {
      f[i].key = dup_str(b, r->fields[i].key ? r->fields[i].key : "", &rc);
      f[i].value =
          dup_str(b, r->fields[i].value ? r->fields[i].value : "", &rc);
    }
    d->fields = f;
  }
  if (rc < 0)
    return rc; /* arena memory stays charged to the batch; freed with it */
  b->bytes += need;
  b->n++;
  return 0;
}

size_t export_batch_count(const export_batch *b) { return b->n; }

const export_record *export_batch_get(const export_batch *b, size_t i) {
  return i < b->n ? &b->rec[i] : NULL;
}

bool export_batch_due(const export_batch *b, int64_t now_ns) {
  if (b->n == 0)
    return false;
  if (b->n >= b->lim.max_records || b->bytes >= b->lim.max_bytes)
    return true;
  return now_ns - b->created_ns >= b->lim.max_age_ms * NS_PER_MS;
}
