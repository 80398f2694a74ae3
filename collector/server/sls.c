/*
 * SLS PutLogs ingest: header checks and authentication (auth.c), the raw
 * size capped before anything is allocated, decompression, LogGroup
 * decoding, and one store transaction per accepted LogGroup, committed
 * before the 200. A LogGroup whose __pack_id__ was already stored is
 * acknowledged and not stored again.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESOURCE_MAX 2048

/* x-log-bodyrawsize: required, decimal, within the raw cap. */
static int raw_size(srv *s, struct evhttp_request *req, int64_t *out) {
  const char *v = srv_header(req, "x-log-bodyrawsize");
  if (v == NULL)
    return srv_reply_error(s, req, 400, "MissingBodyRawSize",
                           "x-log-bodyrawsize is required");
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || end == v || *end != '\0' || n < 0)
    return srv_reply_error(s, req, 400, "InvalidBodyRawSize",
                           "x-log-bodyrawsize must be a non-negative integer");
  if ((unsigned long long)n > s->lim.max_raw_bytes)
    return srv_reply_error(s, req, 413, "PostBodyTooLarge",
                           "x-log-bodyrawsize %lld exceeds the %zu byte limit",
                           n, s->lim.max_raw_bytes);
  *out = n;
  return 0;
}

static const char *tag(const export_sls_group *g, const char *key) {
  for (size_t i = 0; i < g->n_tags; i++)
    if (strcmp(g->tags[i].key, key) == 0)
      return g->tags[i].value;
  return NULL;
}

/* Stores g; returns 0 or answers the error itself (-1). */
static int store_group(srv *s, struct evhttp_request *req,
                       const export_sls_group *g, const char *project,
                       const char *logstore) {
  const char *pack = tag(g, "__pack_id__");
  char key[512];
  if (pack)
    snprintf(key, sizeof key, "sls:%s/%s/%s", project, logstore, pack);
  store_batch b = {.dedupe_key = pack ? key : NULL,
                   .kind = "sls",
                   .project = project,
                   .logstore = logstore,
                   .topic = g->topic,
                   .source = g->source,
                   .tags = g->tags,
                   .n_tags = g->n_tags,
                   .received_ns = srv_now_ns()};
  bool dup;
  fnp_error err = {0};
  int rc = store_begin(s->db, &b, &dup, &err);
  if (rc == 0 && dup) {
    s->stats.duplicates++;
    return 0;
  }
  for (size_t i = 0; i < g->n_logs && rc == 0; i++)
    rc = store_add_log(s->db, g->logs[i].time_ns, g->logs[i].contents,
                       g->logs[i].n_contents, &err);
  rc = rc ? rc : store_commit(s->db, &err);
  if (rc < 0) {
    store_rollback(s->db);
    srv_reply_error(s, req, rc == -ENOSPC ? 503 : 500,
                    rc == -ENOSPC ? "ServerBusy" : "InternalServerError",
                    "store: %s", err.msg);
    return -1;
  }
  s->stats.batches++;
  s->stats.records += g->n_logs;
  return 0;
}

static int decode_body(srv *s, struct evhttp_request *req, const uint8_t *body,
                       size_t len, int64_t raw, fnp_buf *plain) {
  export_compress c;
  if (export_compress_parse(srv_header(req, "x-log-compresstype"), &c) < 0 ||
      c == EXPORT_COMPRESS_GZIP)
    return srv_reply_error(s, req, 400, "InvalidCompressType",
                           "x-log-compresstype must be lz4, deflate or zstd");
  fnp_error err = {0};
  if (export_decompress_buf(c, body, len, raw, s->lim.max_raw_bytes, plain,
                            &err) < 0)
    return srv_reply_error(s, req, 400, "PostBodyUncompressError", "%s",
                           err.msg);
  return 0;
}

void srv_sls_putlogs(srv *s, struct evhttp_request *req, const char *project,
                     const char *logstore, const char *signed_path) {
  char resource[RESOURCE_MAX];
  size_t len;
  const uint8_t *body = srv_body(req, &len);
  int64_t raw = 0;
  const char *ctype = srv_header(req, "Content-Type");
  if (ctype == NULL) {
    srv_reply_error(s, req, 400, "MissingContentType",
                    "Content-Type is required");
    return;
  }
  if (strcmp(ctype, "application/x-protobuf") != 0) {
    srv_reply_error(s, req, 415, "InvalidContentType",
                    "Content-Type must be application/x-protobuf");
    return;
  }
  if (srv_resource(req, signed_path, resource, sizeof resource) < 0) {
    srv_reply_error(s, req, 400, "ParameterInvalid", "request target too long");
    return;
  }
  if (srv_auth_sls(s, req, resource, body, len) < 0 ||
      raw_size(s, req, &raw) < 0)
    return;
  fnp_buf *plain = srv_plain(s);
  export_sls_group *g = NULL;
  fnp_error err = {0};
  if (decode_body(s, req, body, len, raw, plain) < 0)
    goto done;
  if (export_sls_decode(plain->data ? plain->data : (uint8_t *)"", plain->len,
                        s->lim.max_logs, &g, &err) < 0) {
    srv_reply_error(s, req, err.code == FNP_ETOOBIG ? 413 : 400,
                    err.code == FNP_ETOOBIG ? "PostBodyTooLarge"
                                            : "PostBodyInvalid",
                    "%s", err.msg);
    goto done;
  }
  if (store_group(s, req, g, project, logstore) == 0)
    srv_reply(s, req, 200, NULL, NULL, 0);
done:
  export_sls_group_free(g);
  srv_plain_done(s);
}
