/*
 * export.c - ships the record buffer to every configured sink from a thread
 * of its own, so a slow or dead store never stalls the proxy. The loop asks
 * for a flush with a deadline; the thread sends batches from each sink's
 * acknowledged offset until it has caught up with the buffer's end as of the
 * request, or the deadline passes (sinks abort their I/O by it). Data leaves
 * the buffer only once every sink has acknowledged it: whatever missed a
 * /pre-freeze deadline stays and goes out on a later flush, from the same
 * offset, so each byte reaches each sink once (modulo an ack lost on the
 * wire, which the stable `start` offset lets a store de-duplicate).
 *
 * Profiles do not go through the record buffer (they are binary and large):
 * they wait in a capped queue of their own and, at the next flush, are
 * handed to every sink that carries profiles before the records are caught
 * up, so the same flush delivers both. The platform's credentials reach the
 * sinks from this thread too (the library's sinks are not thread-safe).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/thread.h>

#include "internal.h"

/* One send carries at most this much, so a deadline is checked often. */
#define EXPORT_BATCH_MAX_BYTES (1u << 20)

static const sc_sink_ops *const SINK_OPS[] = {
    &sc__sink_lib_sls,      &sc__sink_lib_sls_tls, &sc__sink_lib_otlp,
    &sc__sink_lib_otlp_tls, &sc__sink_lib_file,    &sc__sink_http};

static const sc_sink_ops *sink_ops_for(const char *url) {
  size_t i, n;
  for (i = 0; i < sizeof(SINK_OPS) / sizeof(SINK_OPS[0]); i++) {
    n = strlen(SINK_OPS[i]->scheme);
    if (strncmp(url, SINK_OPS[i]->scheme, n) == 0 &&
        strncmp(url + n, "://", 3) == 0)
      return SINK_OPS[i];
  }
  return NULL;
}

static void note_result(sc_exporter *x, sc_sink *s, int rc, uint64_t upto) {
  pthread_mutex_lock(&x->lock);
  if (rc == 0)
    s->acked = upto;
  else
    s->failures++;
  pthread_mutex_unlock(&x->lock);
}

/* A sink with push: hands over everything up to `end`, a chunk at a time,
 * then flushes once; acknowledged only when that flush delivered it all.
 * Export thread. */
static int sink_push_up(sc_exporter *x, sc_sink *s, uint64_t end,
                        int64_t deadline) {
  uint8_t *data;
  size_t len;
  fnp_error err = {0};
  int rc = 0;
  pthread_mutex_lock(&x->lock);
  if (s->pushed < s->acked)
    s->pushed = s->acked;
  pthread_mutex_unlock(&x->lock);
  while (s->pushed < end && rc == 0) {
    rc = sc__records_copy(x->records, s->pushed, EXPORT_BATCH_MAX_BYTES, &data,
                          &len);
    if (rc < 0 || len == 0)
      break;
    rc = s->ops->push(s->ctx, data, len, s->pushed, deadline, &err);
    free(data);
    if (rc == 0)
      s->pushed += len;
  }
  /* A partial line at the end waits for the next flush. */
  if (rc == 0)
    rc = s->ops->flush(s->ctx, deadline, &err);
  note_result(x, s, rc, s->pushed);
  return rc;
}

/* Sends what sink s has not acknowledged, up to `end`. Export thread. */
static int sink_catch_up(sc_exporter *x, sc_sink *s, uint64_t end,
                         int64_t deadline) {
  uint8_t *data;
  size_t len;
  uint64_t from;
  fnp_error err = {0};
  int rc = 0;
  if (s->ops->push && s->ops->flush)
    return sink_push_up(x, s, end, deadline);
  for (;;) {
    pthread_mutex_lock(&x->lock);
    from = s->acked;
    pthread_mutex_unlock(&x->lock);
    if (from >= end && s->ops->flush) /* what the sink itself still holds */
      return s->ops->flush(s->ctx, deadline, &err);
    if (from >= end || sc__mono_ns() >= deadline)
      return from >= end ? 0 : -ETIMEDOUT;
    rc =
        sc__records_copy(x->records, from, EXPORT_BATCH_MAX_BYTES, &data, &len);
    if (rc < 0 || len == 0)
      return rc;
    rc = s->ops->send(s->ctx, data, len, from, deadline, &err);
    free(data);
    note_result(x, s, rc, from + len);
    if (rc < 0)
      return rc;
  }
}

/* With no sink configured nobody wants the records: release them all. */
static void release_acked(sc_exporter *x) {
  uint64_t low = sc__records_end(x->records);
  size_t i;
  pthread_mutex_lock(&x->lock);
  for (i = 0; i < x->n_sinks; i++)
    if (x->sinks[i].acked < low)
      low = x->sinks[i].acked;
  pthread_mutex_unlock(&x->lock);
  sc__records_release(x->records, low);
}

/* Hands the queued profiles to every sink that takes them. A profile a
 * sink cannot take (out of memory, over its size limit) is counted as
 * dropped; sinks without profiles (http://, otlp) are skipped. */
static void push_profiles(sc_exporter *x) {
  sc_profile *p, *next;
  fnp_error err = {0};
  uint64_t sent = 0, dropped = 0;
  size_t i;
  int rc, took;
  pthread_mutex_lock(&x->lock);
  p = x->profiles;
  x->profiles = NULL;
  x->profiles_bytes = 0;
  pthread_mutex_unlock(&x->lock);
  for (; p; p = next) {
    next = p->next;
    took = 0;
    for (i = 0; i < x->n_sinks; i++) {
      if (x->sinks[i].ops->profile == NULL)
        continue;
      rc = x->sinks[i].ops->profile(x->sinks[i].ctx, p->kind, p->time_ns,
                                    p->data, p->len, &err);
      if (rc == 0)
        took = 1;
      else if (rc != FNP_EUSAGE)
        dropped++;
    }
    sent += took;
    free(p->data);
    free(p);
  }
  pthread_mutex_lock(&x->lock);
  x->profiles_sent += sent;
  x->profiles_dropped += dropped;
  pthread_mutex_unlock(&x->lock);
}

/* New platform credentials go to the sinks from this thread. */
static void push_creds(sc_exporter *x, uint64_t *seen) {
  sc_creds c;
  size_t i;
  pthread_mutex_lock(&x->lock);
  if (x->creds_gen == *seen) {
    pthread_mutex_unlock(&x->lock);
    return;
  }
  *seen = x->creds_gen;
  c = x->creds;
  pthread_mutex_unlock(&x->lock);
  for (i = 0; i < x->n_sinks; i++)
    if (x->sinks[i].ops->creds)
      x->sinks[i].ops->creds(x->sinks[i].ctx, &c);
  explicit_bzero(&c, sizeof(c));
}

static int flush_all(sc_exporter *x, int64_t deadline) {
  uint64_t end;
  int rc = 0, r;
  size_t i;
  /* Profiles first, then the end: a profile's record (added before the
   * profile was queued) is then always within this flush. */
  push_profiles(x);
  end = sc__records_end(x->records);
  for (i = 0; i < x->n_sinks; i++) {
    r = sink_catch_up(x, &x->sinks[i], end, deadline);
    if (r < 0)
      rc = r;
  }
  release_acked(x);
  return rc;
}

static void *export_thread(void *arg) {
  sc_exporter *x = arg;
  uint64_t gen, creds_seen = 0;
  int64_t deadline;
  int rc;
  pthread_mutex_lock(&x->lock);
  for (;;) {
    while (!x->stop && x->gen_done == x->gen_req)
      pthread_cond_wait(&x->cond, &x->lock);
    if (x->stop)
      break;
    gen = x->gen_req;
    deadline = x->deadline_ns;
    pthread_mutex_unlock(&x->lock);
    push_creds(x, &creds_seen);
    rc = flush_all(x, deadline);
    pthread_mutex_lock(&x->lock);
    x->gen_done = gen;
    x->last_rc = rc;
    sc__wakeup_signal(&x->done);
  }
  pthread_mutex_unlock(&x->lock);
  return NULL;
}

/* Loop thread: the thread finished a flush. Only the newest request's
 * callback runs, once, and only when that request is the one done. */
static void flush_done(evutil_socket_t fd, short what, void *arg) {
  sc_exporter *x = arg;
  sc_flush_cb cb = NULL;
  void *cb_arg = NULL;
  int rc = 0;
  (void)fd;
  (void)what;
  pthread_mutex_lock(&x->lock);
  if (x->gen_done == x->gen_req && x->cb) {
    cb = x->cb;
    cb_arg = x->cb_arg;
    rc = x->last_rc;
    x->cb = NULL;
  }
  pthread_mutex_unlock(&x->lock);
  if (cb)
    cb(cb_arg, rc);
}

static int open_sinks(sc_exporter *x, const sidecar_config *cfg,
                      fnp_error *err) {
  const sc_sink_ops *ops;
  size_t i;
  int rc;
  for (i = 0; i < cfg->n_exports; i++) {
    ops = sink_ops_for(cfg->exports[i]);
    if (ops == NULL)
      return fnp_fail(err, FNP_EUSAGE,
                      "--export %s: unsupported scheme (sls://, "
                      "sls+https://, otlp+http(s)://, file://, http://)",
                      cfg->exports[i]);
    rc = ops->open(cfg->exports[i], cfg, &x->sinks[i].ctx, err);
    if (rc < 0)
      return rc;
    x->sinks[i].ops = ops;
    x->sinks[i].url = cfg->exports[i];
    x->n_sinks = i + 1;
  }
  return 0;
}

int sc__exporter_start(sc_exporter *x, struct event_base *base, sc_records *r,
                       const sidecar_config *cfg, fnp_error *err) {
  int rc;
  memset(x, 0, sizeof(*x));
  x->records = r;
  if (pthread_mutex_init(&x->lock, NULL) != 0 ||
      pthread_cond_init(&x->cond, NULL) != 0)
    return fnp_fail(err, -ENOMEM, "exporter: lock init failed");
  rc = sc__wakeup_init(&x->done, base, flush_done, x);
  if (rc < 0)
    return fnp_fail(err, rc, "exporter: cannot make its wake-up");
  rc = open_sinks(x, cfg, err);
  if (rc < 0)
    return rc;
  rc = pthread_create(&x->thread, NULL, export_thread, x);
  if (rc != 0)
    return fnp_fail(err, -rc, "exporter: pthread_create: %s", strerror(rc));
  x->thread_started = 1;
  return 0;
}

void sc__exporter_flush(sc_exporter *x, int64_t deadline_mono_ns,
                        sc_flush_cb cb, void *arg) {
  pthread_mutex_lock(&x->lock);
  x->gen_req++;
  x->deadline_ns = deadline_mono_ns;
  x->cb = cb;
  x->cb_arg = arg;
  pthread_cond_signal(&x->cond);
  pthread_mutex_unlock(&x->lock);
}

/* Copies header `name` into dst if present. The value is a secret for
 * some names: it goes nowhere but this struct. */
static void take_header(const struct evkeyvalq *h, const char *name, char *dst,
                        size_t size) {
  const char *v = sc__hdr_find(h, name);
  size_t n;
  if (v == NULL)
    return;
  n = strlen(v);
  if (n >= size)
    n = size - 1; /* too long to be valid; kept cut, never echoed */
  memcpy(dst, v, n);
  dst[n] = '\0';
}

void sc__exporter_set_creds(sc_exporter *x, const struct evkeyvalq *headers) {
  sc_creds *c = &x->creds;
  if (sc__hdr_find(headers, "x-fc-access-key-id") == NULL &&
      sc__hdr_find(headers, "x-fc-service-logproject") == NULL)
    return;
  pthread_mutex_lock(&x->lock);
  take_header(headers, "x-fc-access-key-id", c->key_id, sizeof(c->key_id));
  take_header(headers, "x-fc-access-key-secret", c->secret, sizeof(c->secret));
  take_header(headers, "x-fc-security-token", c->token, sizeof(c->token));
  take_header(headers, "x-fc-service-logproject", c->project,
              sizeof(c->project));
  take_header(headers, "x-fc-service-logstore", c->logstore,
              sizeof(c->logstore));
  x->creds_gen++;
  pthread_mutex_unlock(&x->lock);
}

void sc__exporter_forget_cb(sc_exporter *x) {
  pthread_mutex_lock(&x->lock);
  x->cb = NULL;
  pthread_mutex_unlock(&x->lock);
}

int sc__exporter_add_profile(sc_exporter *x, const char *kind, int64_t time_ns,
                             uint8_t *data, size_t len) {
  sc_profile *p = calloc(1, sizeof(*p)), **tail;
  int rc = 0;
  pthread_mutex_lock(&x->lock);
  if (p == NULL || x->profiles_bytes + len > SC_PROFILES_MAX_BYTES) {
    x->profiles_dropped++;
    rc = p ? FNP_ETOOBIG : -ENOMEM;
    goto out;
  }
  snprintf(p->kind, sizeof(p->kind), "%s", kind);
  p->time_ns = time_ns;
  p->data = data;
  p->len = len;
  for (tail = &x->profiles; *tail; tail = &(*tail)->next)
    ;
  *tail = p;
  x->profiles_bytes += len;
  p = NULL;
  data = NULL;
out:
  pthread_mutex_unlock(&x->lock);
  free(p);
  free(data);
  return rc;
}

uint64_t sc__exporter_pending(sc_exporter *x) {
  uint64_t end = sc__records_end(x->records), low = end;
  size_t i;
  pthread_mutex_lock(&x->lock);
  for (i = 0; i < x->n_sinks; i++)
    if (x->sinks[i].acked < low)
      low = x->sinks[i].acked;
  pthread_mutex_unlock(&x->lock);
  return end - low;
}

void sc__exporter_stop(sc_exporter *x) {
  size_t i;
  if (x->thread_started) {
    pthread_mutex_lock(&x->lock);
    x->stop = 1;
    pthread_cond_signal(&x->cond);
    pthread_mutex_unlock(&x->lock);
    pthread_join(x->thread, NULL);
    x->thread_started = 0;
  }
  for (i = 0; i < x->n_sinks; i++)
    x->sinks[i].ops->close(x->sinks[i].ctx);
  x->n_sinks = 0;
  sc__wakeup_destroy(&x->done);
  explicit_bzero(&x->creds, sizeof(x->creds));
  while (x->profiles) {
    sc_profile *p = x->profiles;
    x->profiles = p->next;
    free(p->data);
    free(p);
  }
  pthread_cond_destroy(&x->cond);
  pthread_mutex_destroy(&x->lock);
}
