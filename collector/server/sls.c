/*
 * SLS PutLogs ingest: header checks and authentication (auth.c), the raw
 * size capped before anything is allocated, decompression and LogGroup
 * decoding on the loop thread; then the writer thread (writer.c) stores
 * each accepted LogGroup as one savepoint of a group transaction, and the
 * 200 goes out only after that group's COMMIT. A LogGroup whose
 * __pack_id__ was already stored is acknowledged and not stored again.
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

int srv_sls_store(srv *s, srv_job *j) {
  const export_sls_group *g = j->group;
  const char *pack = tag(g, "__pack_id__");
  char key[512];
  if (pack)
    snprintf(key, sizeof key, "sls:%s/%s/%s", j->project, j->logstore, pack);
  store_batch b = {.dedupe_key = pack ? key : NULL,
                   .kind = "sls",
                   .project = j->project,
                   .logstore = j->logstore,
                   .topic = g->topic,
                   .source = g->source,
                   .tags = g->tags,
                   .n_tags = g->n_tags,
                   .received_ns = j->received_ns};
  int rc = store_begin(s->db, &b, &j->duplicate, &j->err);
  if (rc == 0 && j->duplicate)
    return 0;
  for (size_t i = 0; i < g->n_logs && rc == 0; i++)
    rc = store_add_log(s->db, g->logs[i].time_ns, g->logs[i].contents,
                       g->logs[i].n_contents, &j->err);
  rc = rc ? rc : store_commit(s->db, &j->err);
  if (rc < 0)
    store_rollback(s->db);
  return rc;
}

void srv_sls_answer(srv *s, srv_job *j) {
  if (j->rc < 0) {
    srv_reply_error(s, j->req, j->rc == -ENOSPC ? 503 : 500,
                    j->rc == -ENOSPC ? "ServerBusy" : "InternalServerError",
                    "store: %s", j->err.msg);
    return;
  }
  if (j->duplicate) {
    s->stats.duplicates++;
  } else {
    s->stats.batches++;
    s->stats.records += j->group->n_logs;
  }
  srv_reply(s, j->req, 200, NULL, NULL, 0);
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
  srv_job *j = srv_job_new(s);
  if (j == NULL) {
    srv_reply_error(s, req, 503, "ServerBusy", "out of memory");
    return;
  }
  fnp_error err = {0};
  if (decode_body(s, req, body, len, raw, &j->plain) < 0)
    goto fail;
  if (export_sls_decode(j->plain.data ? j->plain.data : (uint8_t *)"",
                        j->plain.len, s->lim.max_logs, &j->group, &err) < 0) {
    srv_reply_error(s, req, err.code == FNP_ETOOBIG ? 413 : 400,
                    err.code == FNP_ETOOBIG ? "PostBodyTooLarge"
                                            : "PostBodyInvalid",
                    "%s", err.msg);
    goto fail;
  }
  /* project and logstore fit: http.c's buffers are the same size. */
  snprintf(j->project, sizeof j->project, "%s", project);
  snprintf(j->logstore, sizeof j->logstore, "%s", logstore);
  j->req = req;
  j->received_ns = srv_now_ns();
  srv_writer_submit(s, j); /* answered by srv_sls_answer after the commit */
  return;
fail:
  srv_job_free(s, j);
}
