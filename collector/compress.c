/*
 * Body compression per x-log-compresstype (zstd, deflate = zlib format, lz4 =
 * raw block) and OTLP's gzip. Decompression never allocates more than the
 * caller's cap, which is checked against the announced size first, so a
 * small body announcing a huge raw size is refused before any allocation.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <lz4.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* zstd level 1: SLS bodies are compressed on the request path of a freezing
 * instance, where speed matters more than the last few percent of ratio. */
#define ZSTD_LEVEL 1
#define ZLIB_LEVEL 6 /* zlib's own default trade-off */
#define INFLATE_CHUNK_BYTES (64 * 1024)

static const char *const names[] = {[EXPORT_COMPRESS_ZSTD] = "zstd",
                                    [EXPORT_COMPRESS_NONE] = "",
                                    [EXPORT_COMPRESS_DEFLATE] = "deflate",
                                    [EXPORT_COMPRESS_LZ4] = "lz4",
                                    [EXPORT_COMPRESS_GZIP] = "gzip"};

const char *export_compress_name(export_compress c) {
  return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

int export_compress_parse(const char *name, export_compress *out) {
  if (name == NULL || name[0] == '\0') {
    *out = EXPORT_COMPRESS_NONE;
    return 0;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i][0] != '\0' && strcasecmp(name, names[i]) == 0) {
      *out = (export_compress)i;
      return 0;
    }
  return FNP_EPARSE;
}

static int zstd_compress(const void *in, size_t len, fnp_buf *out,
                         fnp_error *err) {
  size_t bound = ZSTD_compressBound(len);
  int rc = fnp_buf_reserve(out, bound);
  if (rc < 0)
    return fnp_fail(err, rc, "zstd: output buffer: %s", fnp_strerror(rc));
  size_t n = ZSTD_compress(out->data + out->len, bound, in, len, ZSTD_LEVEL);
  if (ZSTD_isError(n))
    return fnp_fail(err, FNP_ECOMPRESS, "zstd: %s", ZSTD_getErrorName(n));
  out->len += n;
  return 0;
}

/* window_bits: MAX_WBITS for the zlib wrapper, 16 + MAX_WBITS for gzip. */
static int zlib_compress(const void *in, size_t len, int window_bits,
                         fnp_buf *out, fnp_error *err) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (len > UINT_MAX)
    return fnp_fail(err, FNP_ETOOBIG, "deflate: input over 4 GiB");
  if (deflateInit2(&zs, ZLIB_LEVEL, Z_DEFLATED, window_bits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return fnp_fail(err, FNP_ECOMPRESS, "deflate: init failed");
  /* +32: the gzip header and trailer deflateBound may not count. */
  size_t bound = deflateBound(&zs, (uLong)len) + 32;
  int rc = fnp_buf_reserve(out, bound);
  if (rc < 0) {
    deflateEnd(&zs);
    return fnp_fail(err, rc, "deflate: output buffer: %s", fnp_strerror(rc));
  }
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  zs.next_out = out->data + out->len;
  zs.avail_out = (uInt)(bound > UINT_MAX ? UINT_MAX : bound);
  int z = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (z != Z_STREAM_END)
    return fnp_fail(err, FNP_ECOMPRESS, "deflate: failed (%d)", z);
  out->len += produced;
  return 0;
}

static int lz4_compress(const void *in, size_t len, fnp_buf *out,
                        fnp_error *err) {
  if (len > LZ4_MAX_INPUT_SIZE)
    return fnp_fail(err, FNP_ETOOBIG, "lz4: input over LZ4_MAX_INPUT_SIZE");
  int bound = LZ4_compressBound((int)len);
  int rc = fnp_buf_reserve(out, (size_t)bound);
  if (rc < 0)
    return fnp_fail(err, rc, "lz4: output buffer: %s", fnp_strerror(rc));
  int n =
      LZ4_compress_default(in, (char *)out->data + out->len, (int)len, bound);
  /* With a compressBound-sized output LZ4 cannot fail on valid input; an
   * empty input yields one token byte, still a valid block. */
  if (n <= 0)
    return fnp_fail(err, FNP_ECOMPRESS, "lz4: compression failed");
  out->len += (size_t)n;
  return 0;
}

int export_compress_buf(export_compress c, const void *in, size_t len,
                        fnp_buf *out, fnp_error *err) {
  switch (c) {
  case EXPORT_COMPRESS_NONE: {
    int rc = fnp_buf_append(out, in, len);
    return rc < 0 ? fnp_fail(err, rc, "body: %s", fnp_strerror(rc)) : 0;
  }
  case EXPORT_COMPRESS_ZSTD:
    return zstd_compress(in, len, out, err);
  case EXPORT_COMPRESS_DEFLATE:
    return zlib_compress(in, len, MAX_WBITS, out, err);
  case EXPORT_COMPRESS_GZIP:
    return zlib_compress(in, len, 16 + MAX_WBITS, out, err);
  case EXPORT_COMPRESS_LZ4:
    return lz4_compress(in, len, out, err);
  }
  return fnp_fail(err, FNP_EUSAGE, "unknown compression %d", (int)c);
}

/* Streaming inflate into out, never past cap bytes of output. */
static int zlib_decompress(const void *in, size_t len, int window_bits,
                           size_t cap, fnp_buf *out, fnp_error *err) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (len > UINT_MAX)
    return fnp_fail(err, FNP_ETOOBIG, "inflate: input over 4 GiB");
  if (inflateInit2(&zs, window_bits) != Z_OK)
    return fnp_fail(err, FNP_ECOMPRESS, "inflate: init failed");
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  size_t start = out->len;
  int rc = 0, z = Z_OK;
  while (z != Z_STREAM_END) {
    /* One byte of room past the cap lets a stream that ends exactly at the
     * cap report Z_STREAM_END; producing that byte means it is too big. */
    size_t produced = out->len - start;
    size_t room = produced > cap ? 0 : cap + 1 - produced;
    if (room == 0) {
      rc = fnp_fail(err, FNP_ETOOBIG,
                    "inflate: output exceeds the %zu byte limit", cap);
      break;
    }
    size_t want = room < INFLATE_CHUNK_BYTES ? room : INFLATE_CHUNK_BYTES;
    if ((rc = fnp_buf_reserve(out, want)) < 0) {
      fnp_fail(err, rc, "inflate: output exceeds the %zu byte limit%s", cap,
               rc == FNP_ETOOBIG ? "" : " (out of memory)");
      break;
    }
    zs.next_out = out->data + out->len;
    zs.avail_out = (uInt)want;
    z = inflate(&zs, Z_NO_FLUSH);
    out->len += want - zs.avail_out;
    if (z != Z_OK && z != Z_STREAM_END) {
      rc = fnp_fail(err, FNP_ECOMPRESS, "inflate: %s after %lu input bytes",
                    z == Z_BUF_ERROR ? "truncated stream"
                                     : (zs.msg ? zs.msg : "corrupt data"),
                    zs.total_in);
      break;
    }
  }
  inflateEnd(&zs);
  if (rc == 0 && zs.avail_in != 0)
    rc = fnp_fail(err, FNP_EPARSE, "inflate: %u trailing bytes after stream",
                  zs.avail_in);
  if (rc < 0)
    out->len = start;
  return rc;
}

static int zstd_decompress(const void *in, size_t len, size_t raw, fnp_buf *out,
                           fnp_error *err) {
  unsigned long long fcs = ZSTD_getFrameContentSize(in, len);
  if (fcs == ZSTD_CONTENTSIZE_ERROR)
    return fnp_fail(err, FNP_EPARSE, "zstd: not a zstd frame");
  if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != raw)
    return fnp_fail(err, FNP_EPARSE,
                    "zstd: frame says %llu bytes, bodyrawsize says %zu", fcs,
                    raw);
  int rc = fnp_buf_reserve(out, raw);
  if (rc < 0)
    return fnp_fail(err, rc, "zstd: %s", fnp_strerror(rc));
  /* Capacity raw + 0: output past the announced size is an error, not an
   * allocation (ZSTD_decompress stops at dstCapacity). */
  size_t n = ZSTD_decompress(out->data + out->len, raw, in, len);
  if (ZSTD_isError(n))
    return fnp_fail(err, FNP_ECOMPRESS, "zstd: %s", ZSTD_getErrorName(n));
  if (n != raw)
    return fnp_fail(err, FNP_EPARSE, "zstd: %zu bytes, bodyrawsize says %zu", n,
                    raw);
  out->len += n;
  return 0;
}

static int lz4_decompress(const void *in, size_t len, size_t raw, fnp_buf *out,
                          fnp_error *err) {
  if (len > INT_MAX || raw > INT_MAX)
    return fnp_fail(err, FNP_ETOOBIG, "lz4: sizes over 2 GiB");
  int rc = fnp_buf_reserve(out, raw ? raw : 1);
  if (rc < 0)
    return fnp_fail(err, rc, "lz4: %s", fnp_strerror(rc));
  int n =
      LZ4_decompress_safe(in, (char *)out->data + out->len, (int)len, (int)raw);
  if (n < 0)
    return fnp_fail(err, FNP_ECOMPRESS,
                    "lz4: corrupt block (error at input offset %d)", -n - 1);
  if ((size_t)n != raw)
    return fnp_fail(err, FNP_EPARSE, "lz4: %d bytes, bodyrawsize says %zu", n,
                    raw);
  out->len += (size_t)n;
  return 0;
}

int export_decompress_buf(export_compress c, const void *in, size_t len,
                          int64_t raw_size, size_t max_raw, fnp_buf *out,
                          fnp_error *err) {
  if (raw_size >= 0 && (uint64_t)raw_size > max_raw)
    return fnp_fail(err, FNP_ETOOBIG,
                    "raw size %lld exceeds the %zu byte limit",
                    (long long)raw_size, max_raw);
  size_t cap = raw_size >= 0 ? (size_t)raw_size : max_raw;
  bool need_raw = c == EXPORT_COMPRESS_ZSTD || c == EXPORT_COMPRESS_LZ4;
  if (need_raw && raw_size < 0)
    return fnp_fail(err, FNP_EUSAGE, "%s needs the raw size",
                    export_compress_name(c));
  switch (c) {
  case EXPORT_COMPRESS_NONE:
    if (raw_size >= 0 && (size_t)raw_size != len)
      return fnp_fail(err, FNP_EPARSE, "body is %zu bytes, raw size says %lld",
                      len, (long long)raw_size);
    if (len > max_raw)
      return fnp_fail(err, FNP_ETOOBIG, "body exceeds %zu bytes", max_raw);
    return fnp_buf_append(out, in, len);
  case EXPORT_COMPRESS_ZSTD:
    return zstd_decompress(in, len, cap, out, err);
  case EXPORT_COMPRESS_LZ4:
    return lz4_decompress(in, len, cap, out, err);
  case EXPORT_COMPRESS_DEFLATE:
  case EXPORT_COMPRESS_GZIP: {
    int bits = c == EXPORT_COMPRESS_GZIP ? 16 + MAX_WBITS : MAX_WBITS;
    size_t start = out->len;
    int rc = zlib_decompress(in, len, bits, cap, out, err);
    size_t got = out->len - start;
    if (rc == 0 && raw_size >= 0 && got != (size_t)raw_size) {
      out->len = start;
      return fnp_fail(err, FNP_EPARSE, "inflate: %zu bytes, raw size says %lld",
                      got, (long long)raw_size);
    }
    return rc;
  }
  }
  return fnp_fail(err, FNP_EUSAGE, "unknown compression %d", (int)c);
}
