/*
 * Pushing batches into a sink's queue and flushing it: the spool first
 * (oldest data, one request at a time), then the queue with several
 * requests in flight (drive_queue says what that keeps of the order). SLS
 * requests are signed per attempt because Date moves.
 */
#include "sink.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_MAX_BYTES (64u << 20)
#define BODY_KEEP_BYTES (8u << 20)
#define QUEUE_MAX_BYTES (64u << 20)
#define PROFILE_MAX_BYTES (32u << 20)
#define NS_PER_S 1000000000LL

static void enqueue(export_sink *s, export__payload *p) {
  /* Without a spool the queue is the only buffer: cap it, dropping the
   * oldest batches and counting their records (reported by the flush). */
  while (s->head && s->queued_bytes + p->raw_len > QUEUE_MAX_BYTES) {
    export__payload *old = s->head;
    s->head = old->next;
    if (s->head == NULL)
      s->tail = NULL;
    s->queued_bytes -= old->raw_len;
    s->dropped += old->n_records;
    export__payload_free(old);
  }
  p->next = NULL;
  if (s->tail)
    s->tail->next = p;
  else
    s->head = p;
  s->tail = p;
  s->queued_bytes += p->raw_len;
}

static int new_payload(export__payload_kind kind, const export_batch *b,
                       fnp_buf *raw, export__payload **out) {
  export__payload *p = calloc(1, sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  p->kind = kind;
  p->n_records = (uint32_t)export_batch_count(b);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  p->created_ns = (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
  p->raw = fnp_buf_steal(raw, &p->raw_len);
  *out = p;
  return 0;
}

static int encode(export_sink *s, const export_batch *b, bool metrics,
                  fnp_buf *raw, fnp_error *err) {
  char id[64];
  snprintf(id, sizeof id, "%s-%llX", s->id_prefix,
           (unsigned long long)s->next_id++);
  if (s->url.scheme == EXPORT_SCHEME_SLS) {
    export_sls_meta m = {.topic = s->topic,
                         .source = s->source,
                         .pack_id = id,
                         .tags = s->tags,
                         .n_tags = s->n_tags};
    return export_sls_encode(b, &m, raw, err);
  }
  export_otlp_meta m = {
      .resource = s->tags, .n_resource = s->n_tags, .batch_id = id};
  return metrics ? export_otlp_encode_metrics(b, &m, raw, err)
                 : export_otlp_encode_logs(b, &m, raw, err);
}

static int push_kind(export_sink *s, export_batch *b, export__payload_kind kind,
                     fnp_error *err) {
  fnp_buf raw;
  fnp_buf_init(&raw, BODY_MAX_BYTES);
  int rc = encode(s, b, kind == EXPORT__PAYLOAD_OTLP_METRICS, &raw, err);
  export__payload *p = NULL;
  if (rc == 0 && (rc = new_payload(kind, b, &raw, &p)) < 0)
    fnp_fail(err, rc, "sink: out of memory");
  fnp_buf_destroy(&raw);
  if (rc == 0)
    enqueue(s, p);
  return rc;
}

int export_sink_push(export_sink *s, export_batch *b, fnp_error *err) {
  int rc = 0;
  size_t n = export_batch_count(b), n_metrics = 0;
  for (size_t i = 0; i < n; i++)
    n_metrics += export_batch_get(b, i)->kind == EXPORT_KIND_METRIC;
  if (n == 0)
    goto done;
  if (s->url.scheme == EXPORT_SCHEME_FILE)
    rc = export__file_push(s, b, err);
  else if (s->url.scheme == EXPORT_SCHEME_SLS)
    rc = push_kind(s, b, EXPORT__PAYLOAD_SLS, err);
  else {
    if (n_metrics < n)
      rc = push_kind(s, b, EXPORT__PAYLOAD_OTLP_LOGS, err);
    if (rc == 0 && n_metrics > 0)
      rc = push_kind(s, b, EXPORT__PAYLOAD_OTLP_METRICS, err);
  }
done:
  export_batch_free(b);
  return rc;
}

/* Appends k=<escaped v> to a query string. */
static int query_add(fnp_buf *q, const char *k, const char *v) {
  char *e = curl_easy_escape(NULL, v ? v : "", 0);
  if (e == NULL)
    return -ENOMEM;
  int rc = fnp_buf_printf(q, "%s%s=%s", q->len ? "&" : "", k, e);
  curl_free(e);
  return rc;
}

int export_sink_push_profile(export_sink *s, const char *instance,
                             const char *kind, int64_t time_ns,
                             const void *data, size_t len, fnp_error *err) {
  if (s->url.scheme == EXPORT_SCHEME_FILE)
    return export__file_profile(s, instance, kind, time_ns, data, len, err);
  if (s->url.scheme != EXPORT_SCHEME_SLS)
    return fnp_fail(err, FNP_EUSAGE,
                    "sink: profiles go to fnprof-collector (sls://) or "
                    "file://, not OTLP");
  if (len > PROFILE_MAX_BYTES)
    return fnp_fail(err, FNP_ETOOBIG, "sink: profile over %u bytes",
                    PROFILE_MAX_BYTES);
  fnp_buf q, raw;
  fnp_buf_init(&q, 4096);
  fnp_buf_init(&raw, PROFILE_MAX_BYTES);
  char t[32];
  snprintf(t, sizeof t, "%lld", (long long)time_ns);
  int rc = query_add(&q, "instance", instance);
  rc = rc ? rc : query_add(&q, "kind", kind);
  rc = rc ? rc : query_add(&q, "time", t);
  rc = rc ? rc : fnp_buf_append(&raw, data, len);
  export__payload *p = calloc(1, sizeof *p);
  if (rc < 0 || p == NULL) {
    free(p);
    fnp_buf_destroy(&q);
    fnp_buf_destroy(&raw);
    return fnp_fail(err, rc ? rc : -ENOMEM, "sink: profile: %s",
                    fnp_strerror(rc ? rc : -ENOMEM));
  }
  p->kind = EXPORT__PAYLOAD_PROFILE;
  p->n_records = 1;
  p->created_ns = time_ns;
  p->meta = (char *)fnp_buf_steal(&q, NULL);
  p->raw = fnp_buf_steal(&raw, &p->raw_len);
  enqueue(s, p);
  return 0;
}

/* ---- sending ---- */

typedef struct req {
  export_sink *s;
  const export__payload *p;
  const char *resource; /* signed resource: path + query */
  const char *content_type;
  const char *encoding; /* x-log-compresstype or Content-Encoding value */
  size_t raw_len;
  char md5[33];
} req;

static int add_header(struct curl_slist **l, const char *fmt, const char *a,
                      const char *b) {
  char line[1024];
  int n = snprintf(line, sizeof line, fmt, a, b ? b : "");
  if (n < 0 || (size_t)n >= sizeof line)
    return FNP_ETOOBIG;
  struct curl_slist *nl = curl_slist_append(*l, line);
  if (nl == NULL)
    return -ENOMEM;
  *l = nl;
  return 0;
}

/* Signed SLS headers (PutLogs and profile uploads). Fresh Date each time. */
static int sls_headers(req *r, struct curl_slist **l, fnp_error *err) {
  char date[32], raw[24], sig[EXPORT_SLS_SIG_LEN + 1];
  export_http_date((int64_t)time(NULL), date);
  snprintf(raw, sizeof raw, "%zu", r->raw_len);
  export_header h[5] = {{"x-log-apiversion", "0.6.0"},
                        {"x-log-signaturemethod", "hmac-sha1"},
                        {"x-log-bodyrawsize", raw}};
  size_t n = 3;
  if (r->encoding[0])
    h[n++] = (export_header){"x-log-compresstype", r->encoding};
  if (r->s->token)
    h[n++] = (export_header){"x-acs-security-token", r->s->token};
  export_sls_sign_input in = {"POST", r->md5, r->content_type, date,
                              h,      n,      r->resource};
  int rc = 0;
  if (r->s->key_secret == NULL || r->s->key_id == NULL)
    return fnp_fail(err, FNP_EUSAGE, "sink: no AccessKey configured");
  if ((rc = export_sls_sign(&in, r->s->key_secret, sig, err)) < 0)
    return rc;
  rc = add_header(l, "Content-Type: %s%s", r->content_type, NULL);
  rc = rc ? rc : add_header(l, "Content-MD5: %s%s", r->md5, NULL);
  rc = rc ? rc : add_header(l, "Date: %s%s", date, NULL);
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = add_header(l, "%s: %s", h[i].name, h[i].value);
  rc = rc ? rc : add_header(l, "Authorization: LOG %s:%s", r->s->key_id, sig);
  rc = rc ? rc : add_header(l, "Expect:%s%s", "", NULL);
  return rc < 0 ? fnp_fail(err, rc, "sink: headers: %s", fnp_strerror(rc)) : 0;
}

static int otlp_headers(req *r, struct curl_slist **l, fnp_error *err) {
  /* A configured AccessKey signs OTLP too (fnprof-collector checks it);
   * other OTLP receivers ignore the extra headers. */
  if (r->s->key_secret && r->s->key_id)
    return sls_headers(r, l, err);
  int rc = add_header(l, "Content-Type: %s%s", r->content_type, NULL);
  rc = rc ? rc : add_header(l, "Content-Encoding: %s%s", "gzip", NULL);
  rc = rc ? rc : add_header(l, "Expect:%s%s", "", NULL);
  return rc < 0 ? fnp_fail(err, rc, "sink: headers: %s", fnp_strerror(rc)) : 0;
}

static int headers_cb(void *ctx, struct curl_slist **l, fnp_error *err) {
  req *r = ctx;
  bool otlp = r->p->kind == EXPORT__PAYLOAD_OTLP_LOGS ||
              r->p->kind == EXPORT__PAYLOAD_OTLP_METRICS;
  int rc = otlp ? otlp_headers(r, l, err) : sls_headers(r, l, err);
  if (rc == 0 && otlp && r->s->key_secret)
    rc = add_header(l, "Content-Encoding: %s%s", "gzip", NULL);
  return rc;
}

/* Where the payload goes and how its body is compressed. */
static int plan(export_sink *s, const export__payload *p, req *r, char *path,
                size_t plen, export_compress *c) {
  r->s = s;
  r->p = p;
  r->raw_len = p->raw_len;
  r->content_type = "application/x-protobuf";
  *c = EXPORT_COMPRESS_NONE;
  switch (p->kind) {
  case EXPORT__PAYLOAD_SLS:
    snprintf(path, plen, "/logstores/%s/shards/lb", s->url.logstore);
    *c = s->compress;
    break;
  case EXPORT__PAYLOAD_PROFILE:
    snprintf(path, plen, "/api/profiles?%s", p->meta ? p->meta : "");
    r->content_type = "application/octet-stream";
    break;
  case EXPORT__PAYLOAD_OTLP_LOGS:
  case EXPORT__PAYLOAD_OTLP_METRICS:
    snprintf(path, plen, "%s/v1/%s", s->url.path,
             p->kind == EXPORT__PAYLOAD_OTLP_LOGS ? "logs" : "metrics");
    *c = EXPORT_COMPRESS_GZIP;
    break;
  }
  r->resource = path;
  r->encoding = *c == EXPORT_COMPRESS_GZIP ? "" : export_compress_name(*c);
  return 0;
}

static void build_url(const export_sink *s, const char *path, char *url,
                      size_t len, char *connect_to, size_t ctlen) {
  const char *scheme = s->url.tls ? "https" : "http";
  connect_to[0] = '\0';
  if (s->url.scheme != EXPORT_SCHEME_SLS) {
    snprintf(url, len, "%s://%s:%d%s", scheme, s->url.host, s->url.port, path);
    return;
  }
  /* SLS names the project in the Host only. Connect to the endpoint itself
   * (as the C SDK's remote_address does) so project.IP needs no DNS. */
  snprintf(url, len, "%s://%s.%s:%d%s", scheme, s->url.project, s->url.host,
           s->url.port, path);
  snprintf(connect_to, ctlen, "%s.%s:%d:%s:%d", s->url.project, s->url.host,
           s->url.port, s->url.host, s->url.port);
}

/* A payload on its way: its request, headers context and body live here
 * until the ship hands the job back. */
struct export__send {
  export__ship_job job;
  req r;
  export__payload *p; /* NULL: the slot is free */
  uint64_t seq;       /* queue order, to put failures back in order */
  bool failed;        /* retryable failure: back to the queue at the end */
  char path[1200], url[1600];
  fnp_buf body; /* compressed request, reused between sends */
};

void export__send_free(export_sink *s) {
  if (s->send == NULL)
    return;
  for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++) {
    export__payload_free(s->send[i].p);
    fnp_buf_destroy(&s->send[i].body);
  }
  free(s->send);
  s->send = NULL;
}

/* Points every connection at the endpoint (see build_url). */
static int set_connect_to(export_sink *s) {
  char url[1600], connect_to[700];
  build_url(s, "/", url, sizeof url, connect_to, sizeof connect_to);
  return export__ship_connect_to(s->ship, connect_to[0] ? connect_to : NULL);
}

/* Compresses and addresses p in slot d. On failure res says why (not
 * retryable: the same bytes would fail again). */
static int prepare(export_sink *s, export__send *d, const export__payload *p,
                   int64_t deadline_ms, export__ship_result *res) {
  export_compress c;
  plan(s, p, &d->r, d->path, sizeof d->path, &c);
  /* The body buffer is kept between sends: a fresh one per batch cost a
   * page fault per 4 KiB in the ingest profile. */
  fnp_buf *body = &d->body;
  if (body->cap == 0)
    fnp_buf_init(body, BODY_MAX_BYTES);
  fnp_buf_reset(body);
  fnp_error err = {0};
  int rc = export_compress_buf(c, p->raw ? p->raw : (const uint8_t *)"",
                               p->raw_len, body, &err);
  if (rc < 0) {
    memset(res, 0, sizeof *res);
    snprintf(res->why, sizeof res->why, "%s", err.msg);
    return rc;
  }
  export_md5_hex(body->data ? body->data : (uint8_t *)"", body->len, d->r.md5);
  char connect_to[700];
  build_url(s, d->path, d->url, sizeof d->url, connect_to, sizeof connect_to);
  d->job =
      (export__ship_job){.url = d->url,
                         .data = body->data ? body->data : (const uint8_t *)"",
                         .len = body->len,
                         .hcb = headers_cb,
                         .hctx = &d->r,
                         .deadline_ms = deadline_ms,
                         .user = d};
  return 0;
}

static void release_body(export__send *d) {
  if (d->body.alloc > BODY_KEEP_BYTES)
    fnp_buf_destroy(&d->body); /* one huge batch: don't keep its buffer */
}

/* Made once per sink: the endpoint never changes, and the easy handles
 * must not be reconfigured while a pump's transfers use them. */
static int ensure_slots(export_sink *s) {
  if (s->send)
    return 0;
  int rc = set_connect_to(s);
  if (rc == 0 &&
      (s->send = calloc(EXPORT__SHIP_WINDOW, sizeof *s->send)) == NULL)
    rc = -ENOMEM;
  return rc;
}

/* One payload alone, with retries until the deadline (the spool's path:
 * its segments are read one at a time). */
static int send_payload(export_sink *s, const export__payload *p,
                        int64_t deadline_ms, export__ship_result *res) {
  int rc = ensure_slots(s);
  if (rc < 0) {
    memset(res, 0, sizeof *res);
    res->retryable = true;
    snprintf(res->why, sizeof res->why, "%s", fnp_strerror(rc));
    return rc;
  }
  export__send *d = &s->send[0];
  rc = prepare(s, d, p, deadline_ms, res);
  if (rc == 0)
    rc = export__ship_post(s->ship, d->job.url, d->job.data, d->job.len,
                           headers_cb, &d->r, deadline_ms, res);
  release_body(d);
  return rc;
}

static void note(export_flush_result *res, const export__ship_result *sr,
                 int rc) {
  res->last_status = sr->status;
  res->error = rc;
  snprintf(res->why, sizeof res->why, "%s", sr->why);
}

/* Delivers the spool oldest first. Returns false if delivery stopped on a
 * retryable failure (the rest must wait, to keep the order). */
static bool drain_spool(export_sink *s, int64_t deadline_ms,
                        export_flush_result *res) {
  for (;;) {
    export__payload *p = NULL;
    fnp_error err = {0};
    int rc = export__spool_peek(s->spool, &p, &err);
    if (rc == FNP_EPARSE)
      continue; /* a damaged segment was dropped and counted */
    if (rc < 0 || p == NULL) {
      if (rc < 0) {
        res->error = rc;
        snprintf(res->why, sizeof res->why, "%s", err.msg);
      }
      return rc == 0;
    }
    export__ship_result sr;
    rc = send_payload(s, p, deadline_ms, &sr);
    if (rc < 0 && sr.retryable) {
      note(res, &sr, rc);
      export__payload_free(p);
      return false;
    }
    if (rc < 0) {
      note(res, &sr, rc);
      res->rejected_batches++;
      res->rejected_records += p->n_records;
      if (export__spool_put(s->rejected, p, &err) < 0)
        res->dropped_records += p->n_records;
    } else {
      res->acked_batches++;
      res->acked_records += p->n_records;
      res->last_status = sr.status;
    }
    export__payload_free(p);
    if (export__spool_pop(s->spool) < 0)
      return false;
  }
}

static export__payload *dequeue(export_sink *s) {
  export__payload *p = s->head;
  if (p) {
    s->head = p->next;
    if (s->head == NULL)
      s->tail = NULL;
    s->queued_bytes -= p->raw_len;
  }
  return p;
}

/* Spools what is left in the queue (in order). Without a spool it stays. */
static void spool_rest(export_sink *s, export_flush_result *res) {
  while (s->spool && s->head) {
    export__payload *p = dequeue(s);
    fnp_error err = {0};
    if (export__spool_put(s->spool, p, &err) < 0) {
      res->error = err.code ? err.code : FNP_ETOOBIG;
      snprintf(res->why, sizeof res->why, "%s", err.msg);
    } else {
      res->spooled_batches++;
      res->spooled_records += p->n_records;
    }
    export__payload_free(p);
  }
}

/* Counts a payload the receiver refused for good and keeps it aside. */
static void reject(export_sink *s, export__payload *p, int rc,
                   const export__ship_result *sr, export_flush_result *res) {
  note(res, sr, rc);
  res->rejected_batches++;
  res->rejected_records += p->n_records;
  fnp_error err = {0};
  if (s->rejected == NULL || export__spool_put(s->rejected, p, &err) < 0)
    res->dropped_records += p->n_records;
  export__payload_free(p);
}

static export__send *free_slot(export_sink *s) {
  for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++)
    if (s->send[i].p == NULL)
      return &s->send[i];
  return NULL;
}

/* Slots holding a payload; with troubled, only those the receiver has
 * failed at least once (for good, or so far: retrying). */
static size_t count_slots(const export_sink *s, bool troubled) {
  size_t n = 0;
  for (size_t i = 0; s->send && i < EXPORT__SHIP_WINDOW; i++) {
    const export__send *d = &s->send[i];
    n += d->p != NULL && (!troubled || d->failed || d->job.attempts > 0);
  }
  return n;
}

/* Puts payloads that failed retryably back at the queue's head, oldest
 * first: they were started before anything still queued. */
static void requeue_failed(export_sink *s) {
  for (;;) {
    export__send *newest = NULL;
    for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++)
      if (s->send[i].p && s->send[i].failed &&
          (newest == NULL || s->send[i].seq > newest->seq))
        newest = &s->send[i];
    if (newest == NULL)
      return;
    export__payload *p = newest->p;
    newest->p = NULL;
    newest->failed = false;
    p->next = s->head;
    s->head = p;
    if (s->tail == NULL)
      s->tail = p;
    s->queued_bytes += p->raw_len;
  }
}

/* Starts payloads from the queue while a slot is free and the receiver is
 * not failing: a struggling receiver gets no new work until it recovers. */
static void start_queued(export_sink *s, int64_t deadline_ms,
                         export_flush_result *res) {
  export__send *d;
  while (count_slots(s, true) == 0 && s->head && (d = free_slot(s)) != NULL) {
    export__ship_result sr = {0};
    export__payload *p = dequeue(s);
    int rc = prepare(s, d, p, deadline_ms, &sr);
    if (rc == 0 && (rc = export__ship_start(s->ship, &d->job)) == 0) {
      d->p = p;
      d->seq = s->send_seq++;
    } else {
      reject(s, p, rc, &sr, res);
    }
  }
}

/* One job came back: count it, free its slot (or mark it failed). */
static void job_done(export_sink *s, export__ship_job *j,
                     export_flush_result *res) {
  export__send *d = j->user;
  release_body(d);
  if (j->rc < 0 && j->res.retryable) {
    note(res, &j->res, j->rc);
    d->failed = true;
    return;
  }
  export__payload *p = d->p;
  d->p = NULL;
  if (j->rc < 0) {
    reject(s, p, j->rc, &j->res, res);
    return;
  }
  res->acked_batches++;
  res->acked_records += p->n_records;
  res->last_status = j->res.status;
  export__payload_free(p);
}

/* Sends the queue with up to EXPORT__SHIP_WINDOW requests in flight, so
 * the receiver works on one while the next is compressed and sent. Each
 * batch carries its own id (__pack_id__), so a receiver orders and
 * de-duplicates by it, not by arrival. After a retryable failure nothing
 * new starts until a retry succeeds; what is in flight finishes; the
 * failures go back to the queue in their order (then the spool), what was
 * acknowledged does not: nothing lost, nothing sent twice. Without block,
 * returns as soon as no finished job is waiting (export_sink_pump). */
static void drive_queue(export_sink *s, int64_t deadline_ms,
                        export_flush_result *res, bool block) {
  int rc = ensure_slots(s);
  if (rc < 0) {
    res->error = rc;
    snprintf(res->why, sizeof res->why, "%s", fnp_strerror(rc));
    return;
  }
  for (;;) {
    start_queued(s, deadline_ms, res);
    export__ship_job *j = export__ship_wait(s->ship, block);
    if (j == NULL)
      break;
    job_done(s, j, res);
  }
  if (block)
    requeue_failed(s);
}

/* An sls:// sink whose URL named no project/logstore, before the
 * platform's headers did (export_sink_set_destination). */
static bool no_destination(const export_sink *s) {
  return s->url.scheme == EXPORT_SCHEME_SLS && s->url.project[0] == '\0';
}

int export_sink_pump(export_sink *s, int64_t deadline_ms) {
  /* The spool holds older batches: they go first, from export_sink_flush. */
  if (s->url.scheme == EXPORT_SCHEME_FILE || no_destination(s) ||
      (s->spool && export__spool_count(s->spool) > 0))
    return 0;
  drive_queue(s, deadline_ms, &s->carry, false);
  return 0;
}

int export_sink_flush(export_sink *s, int64_t deadline_ms,
                      export_flush_result *res) {
  memset(res, 0, sizeof *res);
  if (s->url.scheme == EXPORT_SCHEME_FILE)
    return export__file_flush(s, res);
  /* What export_sink_pump delivered counts in this flush. */
  *res = s->carry;
  memset(&s->carry, 0, sizeof s->carry);
  /* Jobs in flight from a pump mean the spool was empty when they began;
   * they finish first, and the spool's order is kept by drain_spool. */
  bool in_order = count_slots(s, false) > 0 || s->spool == NULL ||
                  (!no_destination(s) && drain_spool(s, deadline_ms, res));
  if (no_destination(s))
    snprintf(res->why, sizeof res->why,
             "sls:// sink without PROJECT/LOGSTORE: waiting for the "
             "platform's x-fc-service-logproject/logstore headers");
  else if (in_order)
    drive_queue(s, deadline_ms, res, true);
  spool_rest(s, res);
  for (export__payload *p = s->head; p; p = p->next) {
    res->pending_batches++;
    res->pending_records += p->n_records;
  }
  res->dropped_records += s->dropped;
  s->dropped = 0;
  if (s->spool) {
    res->dropped_records += export__spool_take_dropped(s->spool);
    res->spool_batches = export__spool_count(s->spool);
  }
  if (res->pending_batches == 0 && res->spool_batches == 0 &&
      res->rejected_batches == 0 && res->dropped_records == 0)
    res->error = 0;
  else if (res->error == 0)
    res->error = res->dropped_records ? FNP_ETOOBIG : -EAGAIN;
  return res->error;
}
