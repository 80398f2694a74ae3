/*
 * The on-disk spool: batches a sink could not deliver, one segment file per
 * batch, replayed oldest first. A segment is a fixed header plus the
 * uncompressed payload as a zstd frame with a content checksum, written to a
 * temp file, fsync'd, renamed, and the directory fsync'd, so a segment that
 * exists is whole. Size and age limits drop the oldest segments; the records
 * they held are counted so the next flush can report them. Delivery and
 * compression for the wire are left to sink.c.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define SEG_MAGIC "FNPSPOOL"
#define SEG_VERSION 1
#define SEG_HEADER_BYTES 40
#define SEG_META_MAX_BYTES 4096
#define SEG_RAW_MAX_BYTES (256u << 20) /* larger than any batch we make */
#define SEG_ZSTD_LEVEL 3 /* spooling is off the hot path: favour ratio */
#define MAX_SEGMENTS 100000
#define NS_PER_MS 1000000LL

typedef struct seg {
  uint64_t seq;
  uint64_t bytes;
  uint32_t n_records;
  int64_t created_ns;
} seg;

struct export__spool {
  char *dir;
  uint64_t max_bytes;
  int64_t max_age_ms;
  seg *segs; /* oldest first */
  size_t n, alloc;
  uint64_t bytes;
  uint64_t next_seq;
  uint64_t dropped;
};

static int64_t real_clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
int64_t (*export__spool_clock_ns)(void) = real_clock_ns;

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static void seg_path(const export__spool *sp, uint64_t seq, char *out,
                     size_t len) {
  snprintf(out, len, "%s/%016llx.seg", sp->dir, (unsigned long long)seq);
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = fsync(fd) == 0 ? 0 : -errno;
  close(fd);
  return rc;
}

/* Parses a segment header; fills s (except seq/bytes) and the lengths. */
static int parse_header(const uint8_t *h, size_t len, seg *s,
                        export__payload *p, size_t *meta_len) {
  if (len < SEG_HEADER_BYTES || memcmp(h, SEG_MAGIC, 8) != 0 ||
      get_le(h + 8, 4) != SEG_VERSION)
    return FNP_EPARSE;
  p->kind = (export__payload_kind)get_le(h + 12, 4);
  s->n_records = (uint32_t)get_le(h + 16, 4);
  *meta_len = (size_t)get_le(h + 20, 4);
  s->created_ns = (int64_t)get_le(h + 24, 8);
  p->raw_len = (size_t)get_le(h + 32, 8);
  if (*meta_len > SEG_META_MAX_BYTES || p->raw_len > SEG_RAW_MAX_BYTES ||
      p->kind < EXPORT__PAYLOAD_SLS || p->kind > EXPORT__PAYLOAD_PROFILE)
    return FNP_EPARSE;
  return 0;
}

static int push_seg(export__spool *sp, const seg *s) {
  if (sp->n == sp->alloc) {
    size_t alloc = sp->alloc ? sp->alloc * 2 : 16;
    if (alloc > MAX_SEGMENTS)
      return FNP_ETOOBIG;
    seg *p = realloc(sp->segs, alloc * sizeof *p);
    if (p == NULL)
      return -ENOMEM;
    sp->segs = p;
    sp->alloc = alloc;
  }
  sp->segs[sp->n++] = *s;
  sp->bytes += s->bytes;
  if (s->seq >= sp->next_seq)
    sp->next_seq = s->seq + 1;
  return 0;
}

static int cmp_seg(const void *a, const void *b) {
  const seg *x = a, *y = b;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Reads one existing segment's header into the index; unreadable segments
 * (a crash cannot leave one, but a disk can) are removed. */
static int index_segment(export__spool *sp, const char *name, uint64_t seq) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", sp->dir, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  uint8_t h[SEG_HEADER_BYTES];
  struct stat st;
  ssize_t n = read(fd, h, sizeof h);
  int ok = fstat(fd, &st) == 0;
  close(fd);
  seg s = {.seq = seq};
  export__payload p = {0};
  size_t meta_len;
  if (!ok || n != (ssize_t)sizeof h ||
      parse_header(h, sizeof h, &s, &p, &meta_len) < 0) {
    unlink(path);
    return 0;
  }
  s.bytes = (uint64_t)st.st_size;
  return push_seg(sp, &s);
}

static int scan(export__spool *sp, fnp_error *err) {
  DIR *d = opendir(sp->dir);
  if (d == NULL)
    return fnp_fail(err, -errno, "spool %s: %s", sp->dir, strerror(errno));
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    unsigned long long seq;
    char tail[8];
    if (sscanf(e->d_name, "%16llx.%7s", &seq, tail) == 2 &&
        strcmp(tail, "seg") == 0 && strlen(e->d_name) == 20)
      rc = index_segment(sp, e->d_name, seq);
    else if (strstr(e->d_name, ".seg.tmp") != NULL) {
      char path[4096]; /* a temp file a crash left behind */
      snprintf(path, sizeof path, "%s/%s", sp->dir, e->d_name);
      unlink(path);
    }
  }
  closedir(d);
  if (rc < 0)
    return fnp_fail(err, rc, "spool %s: %s", sp->dir, fnp_strerror(rc));
  if (sp->n > 1) /* qsort(NULL, 0, ...) is undefined */
    qsort(sp->segs, sp->n, sizeof *sp->segs, cmp_seg);
  return 0;
}

int export__spool_open(const char *dir, uint64_t max_bytes, int64_t max_age_ms,
                       export__spool **out, fnp_error *err) {
  *out = NULL;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return fnp_fail(err, -errno, "spool %s: %s", dir, strerror(errno));
  export__spool *sp = calloc(1, sizeof *sp);
  if (sp == NULL || (sp->dir = strdup(dir)) == NULL) {
    free(sp);
    return fnp_fail(err, -ENOMEM, "spool: out of memory");
  }
  sp->max_bytes = max_bytes ? max_bytes : EXPORT_SPOOL_MAX_BYTES;
  sp->max_age_ms = max_age_ms ? max_age_ms : EXPORT_SPOOL_MAX_AGE_MS;
  int rc = scan(sp, err);
  if (rc < 0) {
    export__spool_close(sp);
    return rc;
  }
  *out = sp;
  return 0;
}

void export__spool_close(export__spool *sp) {
  if (sp == NULL)
    return;
  free(sp->segs);
  free(sp->dir);
  free(sp);
}

static void drop_oldest(export__spool *sp) {
  char path[4096];
  seg_path(sp, sp->segs[0].seq, path, sizeof path);
  unlink(path);
  sp->dropped += sp->segs[0].n_records;
  sp->bytes -= sp->segs[0].bytes;
  memmove(sp->segs, sp->segs + 1, --sp->n * sizeof *sp->segs);
}

/* Header + meta + zstd(raw with checksum) in one buffer. */
static int build_segment(const export__payload *p, fnp_buf *b, fnp_error *err) {
  size_t meta_len = p->meta ? strlen(p->meta) : 0;
  if (meta_len > SEG_META_MAX_BYTES || p->raw_len > SEG_RAW_MAX_BYTES)
    return fnp_fail(err, FNP_ETOOBIG, "spool: payload too large to spool");
  size_t bound = ZSTD_compressBound(p->raw_len);
  int rc = fnp_buf_reserve(b, SEG_HEADER_BYTES + meta_len + bound);
  if (rc < 0)
    return fnp_fail(err, rc, "spool: %s", fnp_strerror(rc));
  uint8_t *h = b->data;
  memcpy(h, SEG_MAGIC, 8);
  put_le(h + 8, SEG_VERSION, 4);
  put_le(h + 12, (uint64_t)p->kind, 4);
  put_le(h + 16, p->n_records, 4);
  put_le(h + 20, meta_len, 4);
  put_le(h + 24, (uint64_t)p->created_ns, 8);
  put_le(h + 32, p->raw_len, 8);
  if (meta_len)
    memcpy(h + SEG_HEADER_BYTES, p->meta, meta_len);
  b->len = SEG_HEADER_BYTES + meta_len;
  ZSTD_CCtx *cc = ZSTD_createCCtx();
  if (cc == NULL)
    return fnp_fail(err, -ENOMEM, "spool: out of memory");
  ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, SEG_ZSTD_LEVEL);
  ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
  size_t n = ZSTD_compress2(cc, b->data + b->len, bound, p->raw, p->raw_len);
  ZSTD_freeCCtx(cc);
  if (ZSTD_isError(n))
    return fnp_fail(err, FNP_ECOMPRESS, "spool: zstd: %s",
                    ZSTD_getErrorName(n));
  b->len += n;
  return 0;
}

int export__spool_put(export__spool *sp, const export__payload *p,
                      fnp_error *err) {
  fnp_buf b;
  fnp_buf_init(&b, SIZE_MAX);
  int rc = build_segment(p, &b, err);
  if (rc < 0)
    goto done;
  if (b.len > sp->max_bytes) {
    sp->dropped += p->n_records;
    rc = fnp_fail(err, FNP_ETOOBIG,
                  "spool: a %zu byte segment exceeds the %llu byte limit; "
                  "%u records dropped",
                  b.len, (unsigned long long)sp->max_bytes, p->n_records);
    goto done;
  }
  while (sp->n > 0 && sp->bytes + b.len > sp->max_bytes)
    drop_oldest(sp);
  seg s = {.seq = sp->next_seq,
           .bytes = b.len,
           .n_records = p->n_records,
           .created_ns = p->created_ns};
  char path[4096];
  seg_path(sp, s.seq, path, sizeof path);
  if ((rc = fnp_write_file(path, b.data, b.len, err)) < 0)
    goto done;
  if ((rc = fsync_dir(sp->dir)) < 0) {
    fnp_fail(err, rc, "spool %s: fsync: %s", sp->dir, fnp_strerror(rc));
    goto done;
  }
  rc = push_seg(sp, &s);
  if (rc < 0)
    fnp_fail(err, rc, "spool: index: %s", fnp_strerror(rc));
done:
  fnp_buf_destroy(&b);
  return rc;
}

/* Reads and decompresses segment s into a new payload. */
static int load(export__spool *sp, const seg *s, export__payload **out,
                fnp_error *err) {
  char path[4096];
  seg_path(sp, s->seq, path, sizeof path);
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = fnp_read_file(path,
                         SEG_HEADER_BYTES + SEG_META_MAX_BYTES +
                             ZSTD_compressBound(SEG_RAW_MAX_BYTES),
                         &data, &len, err);
  if (rc < 0)
    return rc;
  export__payload *p = calloc(1, sizeof *p);
  seg hs;
  size_t meta_len = 0;
  if (p == NULL) {
    rc = fnp_fail(err, -ENOMEM, "spool: out of memory");
    goto fail;
  }
  if (parse_header(data, len, &hs, p, &meta_len) < 0 ||
      len < SEG_HEADER_BYTES + meta_len) {
    rc = fnp_fail(err, FNP_EPARSE, "spool %s: bad segment header", path);
    goto fail;
  }
  p->n_records = hs.n_records;
  p->created_ns = hs.created_ns;
  p->meta =
      meta_len ? strndup((char *)data + SEG_HEADER_BYTES, meta_len) : NULL;
  p->raw = malloc(p->raw_len ? p->raw_len : 1);
  if (p->raw == NULL || (meta_len && p->meta == NULL)) {
    rc = fnp_fail(err, -ENOMEM, "spool: out of memory");
    goto fail;
  }
  size_t off = SEG_HEADER_BYTES + meta_len;
  size_t n = ZSTD_decompress(p->raw, p->raw_len, data + off, len - off);
  if (ZSTD_isError(n) || n != p->raw_len) {
    rc = fnp_fail(err, FNP_EPARSE, "spool %s: corrupt segment: %s", path,
                  ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch");
    goto fail;
  }
  free(data);
  *out = p;
  return 0;
fail:
  free(data);
  export__payload_free(p);
  return rc;
}

int export__spool_peek(export__spool *sp, export__payload **out,
                       fnp_error *err) {
  *out = NULL;
  int64_t now = export__spool_clock_ns();
  while (sp->n > 0) {
    if (now - sp->segs[0].created_ns > sp->max_age_ms * NS_PER_MS) {
      drop_oldest(sp); /* too old to be worth sending: counted */
      continue;
    }
    int rc = load(sp, &sp->segs[0], out, err);
    if (rc == FNP_EPARSE) {
      drop_oldest(sp); /* a damaged segment cannot be replayed */
      return rc;
    }
    return rc;
  }
  return 0;
}

int export__spool_pop(export__spool *sp) {
  if (sp->n == 0)
    return FNP_ENOTFOUND;
  char path[4096];
  seg_path(sp, sp->segs[0].seq, path, sizeof path);
  if (unlink(path) != 0 && errno != ENOENT)
    return -errno;
  sp->bytes -= sp->segs[0].bytes;
  memmove(sp->segs, sp->segs + 1, --sp->n * sizeof *sp->segs);
  return fsync_dir(sp->dir);
}

size_t export__spool_count(const export__spool *sp) { return sp->n; }
uint64_t export__spool_bytes(const export__spool *sp) { return sp->bytes; }

uint64_t export__spool_take_dropped(export__spool *sp) {
  uint64_t d = sp->dropped;
  sp->dropped = 0;
  return d;
}

void export__payload_free(export__payload *p) {
  if (p == NULL)
    return;
  free(p->meta);
  free(p->raw);
  free(p);
}
