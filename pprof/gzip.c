/* gzip in and out with zlib; decompression is capped before it allocates. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define GUNZIP_CHUNK_BYTES (256 * 1024)

bool pprof_is_gzip(const void *data, size_t len) {
  const unsigned char *d = data;
  return len >= 2 && d[0] == 0x1f && d[1] == 0x8b;
}

int pprof_gunzip(const void *data, size_t len, size_t max_out, uint8_t **out,
                 size_t *out_len, fnp_error *err) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  /* 16 + MAX_WBITS: gzip wrapper only. */
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    return fnp_fail(err, FNP_ECOMPRESS, "gzip: inflateInit failed");
  fnp_buf b;
  fnp_buf_init(&b, max_out);
  int rc = 0;
  zs.next_in = (Bytef *)data;
  zs.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
  for (;;) {
    size_t want = GUNZIP_CHUNK_BYTES;
    if (b.cap - b.len < want)
      want = b.cap - b.len;
    if (want == 0) {
      rc = fnp_fail(err, FNP_ETOOBIG,
                    "gzip: decompressed data exceeds the %zu byte limit",
                    max_out);
      break;
    }
    rc = fnp_buf_reserve(&b, want);
    if (rc < 0) {
      fnp_fail(err, rc, "gzip: %s", fnp_strerror(rc));
      break;
    }
    zs.next_out = b.data + b.len;
    zs.avail_out = (uInt)want;
    int z = inflate(&zs, Z_NO_FLUSH);
    b.len += want - zs.avail_out;
    if (z == Z_STREAM_END) {
      /* Concatenated gzip members are legal; pprof files have one. */
      if (zs.avail_in > 0 && pprof_is_gzip(zs.next_in, zs.avail_in)) {
        inflateReset(&zs);
        continue;
      }
      break;
    }
    if (z == Z_OK)
      continue;
    if (z == Z_BUF_ERROR && zs.avail_in == 0) {
      rc = fnp_fail(err, FNP_EPARSE,
                    "gzip: truncated stream (ended after %zu compressed "
                    "bytes)",
                    (size_t)zs.total_in);
      break;
    }
    rc = fnp_fail(err, FNP_EPARSE, "gzip: corrupt data at byte %zu: %s",
                  (size_t)zs.total_in, zs.msg ? zs.msg : "inflate error");
    break;
  }
  inflateEnd(&zs);
  if (rc < 0) {
    fnp_buf_destroy(&b);
    return rc;
  }
  *out = fnp_buf_steal(&b, out_len);
  if (*out == NULL && (*out = malloc(1)) == NULL)
    return fnp_fail(err, -ENOMEM, "gzip: out of memory");
  return 0;
}

int pprof_gzip(const void *data, size_t len, uint8_t **out, size_t *out_len,
               fnp_error *err) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  /* Level 1, as Go writes profiles (BestSpeed): they are written often and
   * read rarely. */
  if (deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return fnp_fail(err, FNP_ECOMPRESS, "gzip: deflateInit failed");
  size_t cap = deflateBound(&zs, (uLong)len);
  uint8_t *buf = malloc(cap);
  if (buf == NULL) {
    deflateEnd(&zs);
    return fnp_fail(err, -ENOMEM, "gzip: out of memory");
  }
  zs.next_in = (Bytef *)data;
  zs.avail_in = (uInt)len;
  zs.next_out = buf;
  zs.avail_out = (uInt)cap;
  int z = deflate(&zs, Z_FINISH);
  size_t n = cap - zs.avail_out;
  deflateEnd(&zs);
  if (z != Z_STREAM_END) {
    free(buf);
    return fnp_fail(err, FNP_ECOMPRESS, "gzip: deflate failed (%d)", z);
  }
  *out = buf;
  *out_len = n;
  return 0;
}
