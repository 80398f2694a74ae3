/*
 * OTLP/HTTP ingest (/v1/logs, /v1/metrics; binary protobuf, optionally
 * gzip'd): decompressed under the raw cap, decoded, stored as one batch.
 * Errors answer with a google.rpc.Status message, as OTLP/HTTP asks;
 * success is an empty Export*ServiceResponse (partial_success unset).
 * JSON-encoded OTLP is refused with 415.
 */
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* google.rpc.Status{message = 2}: tag 0x12, varint length, bytes. */
static void otlp_error(srv *s, struct evhttp_request *req, int status,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void otlp_error(srv *s, struct evhttp_request *req, int status,
                       const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  uint8_t out[320];
  size_t n = strlen(msg), j = 0;
  out[j++] = 0x12;
  if (n >= 128) {
    out[j++] = (uint8_t)(0x80 | (n & 0x7f));
    out[j++] = (uint8_t)(n >> 7);
  } else {
    out[j++] = (uint8_t)n;
  }
  memcpy(out + j, msg, n);
  s->stats.rejected++;
  srv_reply(s, req, status, "application/x-protobuf", out, j + n);
}

static int store_items(srv *s, const export_otlp_data *d, bool metrics,
                       fnp_error *err) {
  char key[300];
  if (d->batch_id)
    snprintf(key, sizeof key, "otlp:%s", d->batch_id);
  store_batch b = {.dedupe_key = d->batch_id ? key : NULL,
                   .kind = metrics ? "otlp-metrics" : "otlp-logs",
                   .project = "otlp",
                   .logstore = metrics ? "metrics" : "logs",
                   .received_ns = srv_now_ns()};
  bool dup;
  int rc = store_begin(s->db, &b, &dup, err);
  if (rc == 0 && dup) {
    s->stats.duplicates++;
    return 0;
  }
  for (size_t i = 0; i < d->n_items && rc == 0; i++) {
    const export_otlp_item *it = &d->items[i];
    rc = metrics
             ? store_add_metric(s->db, it->time_ns, it->name, it->unit,
                                it->value, it->fields, it->n_fields, err)
             : store_add_log(s->db, it->time_ns, it->fields, it->n_fields, err);
  }
  rc = rc ? rc : store_commit(s->db, err);
  if (rc < 0)
    store_rollback(s->db);
  else
    s->stats.batches++, s->stats.records += d->n_items;
  return rc;
}

void srv_otlp(srv *s, struct evhttp_request *req, bool metrics) {
  size_t len;
  const uint8_t *body = srv_body(req, &len);
  const char *ctype = srv_header(req, "Content-Type");
  const char *enc = srv_header(req, "Content-Encoding");
  if (ctype == NULL || strcmp(ctype, "application/x-protobuf") != 0) {
    otlp_error(s, req, 415, "only application/x-protobuf is accepted");
    return;
  }
  const char *path = metrics ? "/v1/metrics" : "/v1/logs";
  char resource[64];
  if (srv_resource(req, path, resource, sizeof resource) < 0) {
    otlp_error(s, req, 400, "request target too long");
    return;
  }
  if (srv_auth_otlp(s, req, resource, body, len) < 0)
    return;
  bool gz = enc && strcasecmp(enc, "gzip") == 0;
  if (enc && !gz && strcasecmp(enc, "identity") != 0) {
    otlp_error(s, req, 415, "Content-Encoding must be gzip");
    return;
  }
  fnp_buf *plain = srv_plain(s);
  fnp_error err = {0};
  export_otlp_data *d = NULL;
  int rc =
      export_decompress_buf(gz ? EXPORT_COMPRESS_GZIP : EXPORT_COMPRESS_NONE,
                            body, len, -1, s->lim.max_raw_bytes, plain, &err);
  if (rc < 0) {
    otlp_error(s, req, rc == FNP_ETOOBIG ? 413 : 400, "%s", err.msg);
    goto done;
  }
  rc = export_otlp_decode(plain->data ? plain->data : (uint8_t *)"", plain->len,
                          metrics, s->lim.max_logs, &d, &err);
  if (rc < 0) {
    otlp_error(s, req, rc == FNP_ETOOBIG ? 413 : 400, "%s", err.msg);
    goto done;
  }
  if (store_items(s, d, metrics, &err) < 0)
    otlp_error(s, req, 503, "%s", err.msg);
  else
    srv_reply(s, req, 200, "application/x-protobuf", NULL, 0);
done:
  export_otlp_data_free(d);
  srv_plain_done(s);
}
