/*
 * sink_lib.c - the sinks of the collector's export library behind the
 * sidecar's sink interface: sls:// (fnprof-collector or SLS, signed with the
 * key pair from FNPROF_ACCESS_KEY_ID/SECRET or the platform's per-request
 * headers), otlp+http(s):// and file://. Our JSON lines become
 * export_records (the "kind" of a line is kept as the field "record") in an
 * open batch that spans pushes; each full batch is pushed once into the
 * library (it then owns the data: queue, retries, spool), which starts
 * sending it at once; the flush seals the open batch and waits, by the
 * deadline; lines count as acknowledged only when the flush left nothing
 * undelivered. A retry of the same offsets pushes nothing again, only
 * flushes, so a batch reaches the store once. Profiles go through
 * export_sink_push_profile (the collector's POST /api/profiles; file:// writes
 * them as files; OTLP has none). Export thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fnprof/export.h>

#include "internal.h"

/* Fields one record may carry (ours have about fifteen). */
#define LIB_FIELDS_MAX 48

typedef struct lib_sink {
  export_sink *sink;
  char instance[128];
  int profiles_ok;      /* sls:// and file:// carry profiles */
  uint64_t pushed_upto; /* absolute offset handed to the library */
  export_batch *open;   /* filling across pushes; sealed by the flush */
  uint64_t bad_records; /* lines that could not be read back */
  uint64_t creds_failures;
} lib_sink;

static int lib_open(const char *url, const sidecar_config *cfg, void **ctx,
                    fnp_error *err) {
  export_field tags[] = {{"instance", cfg->instance_id}};
  export_sink_opts o = {.source = cfg->instance_id,
                        .topic = "fnprof",
                        .tags = tags,
                        .n_tags = 1,
                        .spool_dir = cfg->spool_dir,
                        .connect_timeout_ms = 1000};
  export_url u;
  lib_sink *l;
  int rc = export_url_parse(url, &u, err);
  if (rc < 0)
    return rc;
  l = calloc(1, sizeof(*l));
  if (l == NULL)
    return fnp_fail(err, -ENOMEM, "export sink: out of memory");
  rc = export_sink_new(url, &o, &l->sink, err);
  if (rc < 0) {
    free(l);
    return rc;
  }
  snprintf(l->instance, sizeof(l->instance), "%s", cfg->instance_id);
  l->profiles_ok = u.scheme != EXPORT_SCHEME_OTLP;
  *ctx = l;
  return 0;
}

/* One line being turned into an export_record. */
typedef struct line_rec {
  export_record r;
  export_field f[LIB_FIELDS_MAX];
  char *owned[LIB_FIELDS_MAX * 2]; /* copies of keys and values */
  size_t n_owned;
  char *kind;
  int64_t duration_ns;
} line_rec;

static char *keep(line_rec *lr, const char *s) {
  char *c;
  if (lr->n_owned == LIB_FIELDS_MAX * 2 || (c = strdup(s)) == NULL)
    return NULL;
  lr->owned[lr->n_owned++] = c;
  return c;
}

static int on_field(void *arg, const char *key, const char *value) {
  line_rec *lr = arg;
  export_record *r = &lr->r;
  char *v = keep(lr, value), *k;
  if (v == NULL)
    return -ENOMEM;
  if (strcmp(key, "time_ns") == 0)
    r->time_ns = strtoll(value, NULL, 10);
  else if (strcmp(key, "instance") == 0)
    r->instance = v;
  else if (strcmp(key, "request_id") == 0)
    r->request_id = *v ? v : NULL;
  if (strcmp(key, "kind") == 0)
    lr->kind = v;
  if (strcmp(key, "duration_ns") == 0)
    lr->duration_ns = strtoll(value, NULL, 10);
  if (strcmp(key, "time_ns") == 0 || strcmp(key, "instance") == 0 ||
      strcmp(key, "request_id") == 0)
    return 0;
  if (r->n_fields == LIB_FIELDS_MAX)
    return 0; /* ours never get here; a cut record beats a lost one */
  /* "kind" is the library's own key (log/metric/event/profile). */
  k = keep(lr, strcmp(key, "kind") == 0 ? "record" : key);
  if (k == NULL)
    return -ENOMEM;
  lr->f[r->n_fields++] = (export_field){k, v};
  return 0;
}

/* Our record kinds in the library's terms. Invocations are metrics (their
 * duration is the data point; everything else rides along as fields). */
static void classify(line_rec *lr) {
  const char *k = lr->kind ? lr->kind : "";
  export_record *r = &lr->r;
  r->kind = EXPORT_KIND_EVENT;
  if (strcmp(k, "log") == 0) {
    r->kind = EXPORT_KIND_LOG;
  } else if (strcmp(k, "invocation") == 0) {
    r->kind = EXPORT_KIND_METRIC;
    r->metric_name = "fc.invocation.duration";
    r->metric_unit = "ms";
    r->metric_value = (double)lr->duration_ns / 1e6;
  } else if (strcmp(k, "agent_metrics") == 0) {
    r->kind = EXPORT_KIND_METRIC;
  } else if (strcmp(k, "profile") == 0) {
    r->kind = EXPORT_KIND_PROFILE;
  }
  if (r->kind == EXPORT_KIND_METRIC && r->metric_name == NULL) {
    for (size_t i = 0; i < r->n_fields; i++)
      if (strcmp(lr->f[i].key, "live_bytes") == 0)
        r->metric_value = strtod(lr->f[i].value, NULL);
    r->metric_name = "fnprof.heap.live";
    r->metric_unit = "By";
  }
}

static void line_rec_clear(line_rec *lr) {
  for (size_t i = 0; i < lr->n_owned; i++)
    free(lr->owned[i]);
  memset(lr, 0, sizeof(*lr));
}

/* The library's default limits (the C producer's 2048 records): in an
 * A/B of /pre-freeze, 4096 per request was slower, since the store starts
 * on the first batch later and overlaps less with the encoding. */
static int new_batch(export_batch **b) {
  return export_batch_new(NULL, sc__realtime_ns(), b);
}

static int push_batch(lib_sink *l, export_batch **b, fnp_error *err) {
  int rc = 0;
  if (*b && export_batch_count(*b) > 0)
    rc = export_sink_push(l->sink, *b, err); /* takes *b in every case */
  else
    export_batch_free(*b);
  *b = NULL;
  return rc;
}

/* Adds the lines of data (whole lines) to the open batch, pushing each
 * batch that fills up into the library, which starts sending it at once:
 * the store ingests it while the next one is parsed and encoded. */
static int push_lines(lib_sink *l, const uint8_t *data, size_t len,
                      int64_t deadline_ms, fnp_error *err) {
  const char *p = (const char *)data, *end = p + len, *nl;
  export_batch *b = l->open;
  line_rec *lr = calloc(1, sizeof(*lr));
  int rc = lr ? 0 : -ENOMEM;
  fnp_error perr = {0};
  for (; rc == 0 && p < end; p = nl + 1) {
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
      nl = end;
    line_rec_clear(lr);
    if (sc__json_flat(p, (size_t)(nl - p), on_field, lr, &perr) < 0) {
      l->bad_records++; /* our own line: cannot happen, but never silent */
      continue;
    }
    lr->r.fields = lr->f;
    classify(lr);
    if (b == NULL && (rc = new_batch(&b)) < 0)
      break;
    rc = export_batch_add(b, &lr->r);
    if (rc == FNP_ETOOBIG && export_batch_count(b) > 0) {
      rc = push_batch(l, &b, err);
      if (rc == 0)
        rc = export_sink_pump(l->sink, deadline_ms);
      if (rc == 0)
        rc = new_batch(&b);
      if (rc == 0)
        rc = export_batch_add(b, &lr->r);
    }
    if (rc == FNP_ETOOBIG) {
      l->bad_records++; /* one record over the batch limit: cut upstream */
      rc = 0;
    }
  }
  if (rc == 0) {
    l->open = b;
  } else {
    export_batch_free(b);
    l->open = NULL;
  }
  if (lr)
    line_rec_clear(lr);
  free(lr);
  return rc < 0 && err->msg[0] == '\0'
             ? fnp_fail(err, rc, "export sink: %s", fnp_strerror(rc))
             : rc;
}

static int lib_flush(void *ctx, int64_t deadline_mono_ns, fnp_error *err) {
  lib_sink *l = ctx;
  export_flush_result res;
  int rc = push_batch(l, &l->open, err);
  if (rc < 0)
    return rc;
  memset(&res, 0, sizeof(res));
  rc = export_sink_flush(l->sink, deadline_mono_ns / 1000000, &res);
  if (rc < 0)
    return fnp_fail(err, rc, "export: %s (status %d)",
                    res.why[0] ? res.why : fnp_strerror(rc), res.last_status);
  return 0;
}

/* Hands the lines not handed over yet to the library (which starts
 * sending the batches that filled up). */
static int lib_push(void *ctx, const uint8_t *data, size_t len, uint64_t start,
                    int64_t deadline_mono_ns, fnp_error *err) {
  lib_sink *l = ctx;
  int rc;
  if (start + len > l->pushed_upto) {
    /* Offsets before pushed_upto are whole lines already handed over. */
    size_t skip = l->pushed_upto > start ? (size_t)(l->pushed_upto - start) : 0;
    rc =
        push_lines(l, data + skip, len - skip, deadline_mono_ns / 1000000, err);
    if (rc < 0)
      return rc;
    l->pushed_upto = start + len;
  }
  return 0;
}

static int lib_send(void *ctx, const uint8_t *data, size_t len, uint64_t start,
                    int64_t deadline_mono_ns, fnp_error *err) {
  int rc = lib_push(ctx, data, len, start, deadline_mono_ns, err);
  return rc < 0 ? rc : lib_flush(ctx, deadline_mono_ns, err);
}

static int lib_profile(void *ctx, const char *kind, int64_t time_ns,
                       const uint8_t *data, size_t len, fnp_error *err) {
  lib_sink *l = ctx;
  if (!l->profiles_ok)
    return FNP_EUSAGE;
  return export_sink_push_profile(l->sink, l->instance, kind, time_ns, data,
                                  len, err);
}

static void lib_creds(void *ctx, const sc_creds *c) {
  lib_sink *l = ctx;
  if (c->key_id[0] && c->secret[0] &&
      export_sink_set_credentials(l->sink, c->key_id, c->secret,
                                  c->token[0] ? c->token : NULL) < 0)
    l->creds_failures++; /* out of memory: the old keys stay in use */
  /* Where the service's logs go, for an sls:// URL that did not say (the
   * URL's, or the first the platform names, stays). */
  if (c->project[0] && c->logstore[0] &&
      export_sink_set_destination(l->sink, c->project, c->logstore) ==
          FNP_EPARSE)
    l->creds_failures++; /* a name SLS would not take (not sls://: no-op) */
}

static void lib_close(void *ctx) {
  lib_sink *l = ctx;
  export_batch_free(l->open);
  export_sink_free(l->sink);
  free(l);
}

#define LIB_SINK(name, scheme)                                                 \
  const sc_sink_ops name = {scheme,    lib_open,    lib_send,  lib_close,      \
                            lib_flush, lib_profile, lib_creds, lib_push}
LIB_SINK(sc__sink_lib_sls, "sls");
LIB_SINK(sc__sink_lib_sls_tls, "sls+https");
LIB_SINK(sc__sink_lib_otlp, "otlp+http");
LIB_SINK(sc__sink_lib_otlp_tls, "otlp+https");
LIB_SINK(sc__sink_lib_file, "file");
