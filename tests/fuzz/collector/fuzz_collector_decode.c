/*
 * libFuzzer target for fnprof-collector's request decoding path: what a
 * PutLogs or OTLP body goes through after the headers are checked.
 * Input layout: byte 0 selects the path (low 3 bits: x-log-compresstype
 * none/zstd/deflate/lz4, or OTLP logs/metrics plain/gzip), bytes 1..4 are
 * the announced raw size (little endian), the rest is the body. Any input
 * must decode or fail with a message; never crash, leak or allocate past
 * the raw cap.
 */
#include <fnprof/export.h>

#include <stdlib.h>
#include <string.h>

#define MAX_RAW_BYTES (1u << 20) /* small, so each run stays fast */
#define MAX_ITEMS 100000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sls(export_compress c, int64_t raw, const uint8_t *body,
                size_t len) {
  fnp_buf plain;
  fnp_buf_init(&plain, MAX_RAW_BYTES);
  fnp_error err = {0};
  if (export_decompress_buf(c, body, len, raw, MAX_RAW_BYTES, &plain, &err) <
      0) {
    if (err.msg[0] == '\0' || plain.alloc > MAX_RAW_BYTES)
      abort();
    fnp_buf_destroy(&plain);
    return;
  }
  export_sls_group *g = NULL;
  if (export_sls_decode(plain.data ? plain.data : (uint8_t *)"", plain.len,
                        MAX_ITEMS, &g, &err) < 0) {
    if (g != NULL || err.msg[0] == '\0')
      abort();
  } else {
    for (size_t i = 0; i < g->n_logs; i++)
      if (g->logs[i].n_contents == 0)
        abort(); /* validated: every log has contents */
    export_sls_group_free(g);
  }
  fnp_buf_destroy(&plain);
}

static void otlp(bool metrics, bool gz, const uint8_t *body, size_t len) {
  fnp_buf plain;
  fnp_buf_init(&plain, MAX_RAW_BYTES);
  fnp_error err = {0};
  if (export_decompress_buf(gz ? EXPORT_COMPRESS_GZIP : EXPORT_COMPRESS_NONE,
                            body, len, -1, MAX_RAW_BYTES, &plain, &err) == 0) {
    export_otlp_data *d = NULL;
    if (export_otlp_decode(plain.data ? plain.data : (uint8_t *)"", plain.len,
                           metrics, MAX_ITEMS, &d, &err) < 0) {
      if (d != NULL || err.msg[0] == '\0')
        abort();
    }
    export_otlp_data_free(d);
  }
  fnp_buf_destroy(&plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 5)
    return 0;
  static const export_compress sls_c[] = {
      EXPORT_COMPRESS_NONE, EXPORT_COMPRESS_ZSTD, EXPORT_COMPRESS_DEFLATE,
      EXPORT_COMPRESS_LZ4};
  unsigned sel = data[0] & 7;
  int64_t raw = (int64_t)data[1] | (int64_t)data[2] << 8 |
                (int64_t)data[3] << 16 | (int64_t)data[4] << 24;
  const uint8_t *body = data + 5;
  size_t len = size - 5;
  if (sel < 4)
    sls(sls_c[sel], raw, body, len);
  else
    otlp(sel & 1, sel & 2, body, len);
  return 0;
}
