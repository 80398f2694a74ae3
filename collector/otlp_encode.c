/*
 * OTLP/HTTP protobuf encoding of a batch: non-metric records become
 * LogRecords, metric records Metrics with one data point each, under one
 * Resource (the sink's attributes plus fnprof.batch.id, the receiver's dedupe
 * key) and one "fnprof" scope. Message structs come from a bump pool freed
 * at once. gzip is applied by the sink.
 */
#include "internal.h"
#include "otlp.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define POOL_CHUNK_BYTES (64 * 1024)
#define SCOPE_NAME "fnprof"

typedef struct pool {
  struct pool_chunk *head;
  bool oom;
} pool;

struct pool_chunk {
  struct pool_chunk *next;
  size_t used, size;
  _Alignas(max_align_t) unsigned char data[];
};

/* Zeroed memory; NULL only after setting p->oom, which callers check once
 * at the end instead of after every allocation. */
static void *pool_alloc(pool *p, size_t n) {
  const size_t align = _Alignof(max_align_t);
  n = (n + align - 1) & ~(align - 1);
  struct pool_chunk *c = p->head;
  if (c == NULL || c->size - c->used < n) {
    size_t size = n > POOL_CHUNK_BYTES ? n : POOL_CHUNK_BYTES;
    c = calloc(1, sizeof *c + size);
    if (c == NULL) {
      p->oom = true;
      return NULL;
    }
    c->size = size;
    c->next = p->head;
    p->head = c;
  }
  void *r = c->data + c->used;
  c->used += n;
  return r;
}

static void pool_free(pool *p) {
  for (struct pool_chunk *c = p->head, *n; c != NULL; c = n) {
    n = c->next;
    free(c);
  }
}

static Otlp__KeyValue *kv_str(pool *p, const char *k, const char *v) {
  Otlp__KeyValue *kv = pool_alloc(p, sizeof *kv);
  Otlp__AnyValue *av = pool_alloc(p, sizeof *av);
  if (kv == NULL || av == NULL)
    return NULL;
  otlp__key_value__init(kv);
  otlp__any_value__init(av);
  kv->key = (char *)(k ? k : "");
  av->value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
  av->string_value = (char *)(v ? v : "");
  kv->value = av;
  return kv;
}

/* Attributes of a record: fields (minus skip), instance, request_id, kind. */
static Otlp__KeyValue **record_attrs(pool *p, const export_record *r,
                                     const char *skip, size_t *n) {
  static const char *const kinds[] = {"log", "metric", "event", "profile"};
  Otlp__KeyValue **a = pool_alloc(p, (r->n_fields + 3) * sizeof *a);
  *n = 0;
  if (a == NULL)
    return NULL;
  for (size_t i = 0; i < r->n_fields; i++)
    if (skip == NULL || strcmp(r->fields[i].key, skip) != 0)
      a[(*n)++] = kv_str(p, r->fields[i].key, r->fields[i].value);
  if (r->instance)
    a[(*n)++] = kv_str(p, "instance", r->instance);
  if (r->request_id)
    a[(*n)++] = kv_str(p, "request_id", r->request_id);
  if (r->kind != EXPORT_KIND_LOG && r->kind != EXPORT_KIND_METRIC)
    a[(*n)++] = kv_str(p, "kind", kinds[r->kind & 3]);
  return a;
}

static const char *field(const export_record *r, const char *key) {
  for (size_t i = 0; i < r->n_fields; i++)
    if (strcmp(r->fields[i].key, key) == 0)
      return r->fields[i].value;
  return NULL;
}

/* SeverityNumber base levels (otlp-http.md section 4). */
static int severity(const char *level) {
  static const struct {
    const char *name;
    int num;
  } map[] = {{"TRACE", 1},    {"DEBUG", 5},  {"INFO", 9},  {"WARN", 13},
             {"WARNING", 13}, {"ERROR", 17}, {"FATAL", 21}};
  for (size_t i = 0; level && i < sizeof map / sizeof map[0]; i++)
    if (strcasecmp(level, map[i].name) == 0)
      return map[i].num;
  return 0;
}

static Otlp__LogRecord *log_record(pool *p, const export_record *r) {
  Otlp__LogRecord *lr = pool_alloc(p, sizeof *lr);
  Otlp__AnyValue *body = pool_alloc(p, sizeof *body);
  if (lr == NULL || body == NULL)
    return NULL;
  otlp__log_record__init(lr);
  lr->time_unix_nano = lr->observed_time_unix_nano = (uint64_t)r->time_ns;
  const char *msg = field(r, "message"), *level = field(r, "level");
  if (msg) {
    otlp__any_value__init(body);
    body->value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    body->string_value = (char *)msg;
    lr->body = body;
  }
  lr->severity_number = severity(level);
  if (level)
    lr->severity_text = (char *)level;
  lr->attributes = record_attrs(p, r, "message", &lr->n_attributes);
  return lr;
}

static Otlp__Resource *resource(pool *p, const export_otlp_meta *m) {
  Otlp__Resource *res = pool_alloc(p, sizeof *res);
  size_t n = m ? m->n_resource : 0;
  Otlp__KeyValue **a = pool_alloc(p, (n + 1) * sizeof *a);
  if (res == NULL || a == NULL)
    return NULL;
  otlp__resource__init(res);
  for (size_t i = 0; i < n; i++)
    a[i] = kv_str(p, m->resource[i].key, m->resource[i].value);
  if (m && m->batch_id)
    a[n++] = kv_str(p, "fnprof.batch.id", m->batch_id);
  res->attributes = a;
  res->n_attributes = n;
  return res;
}

static Otlp__InstrumentationScope *scope(pool *p) {
  Otlp__InstrumentationScope *s = pool_alloc(p, sizeof *s);
  if (s != NULL) {
    otlp__instrumentation_scope__init(s);
    s->name = SCOPE_NAME;
  }
  return s;
}

static int finish(pool *p, const ProtobufCMessage *msg, fnp_buf *out,
                  fnp_error *err) {
  if (p->oom)
    return fnp_fail(err, -ENOMEM, "OTLP: out of memory");
  size_t len = protobuf_c_message_get_packed_size(msg);
  int rc = fnp_buf_reserve(out, len);
  if (rc < 0)
    return fnp_fail(err, rc, "OTLP: %zu bytes: %s", len, fnp_strerror(rc));
  out->len += protobuf_c_message_pack(msg, out->data + out->len);
  return 0;
}

int export_otlp_encode_logs(const export_batch *b, const export_otlp_meta *meta,
                            fnp_buf *out, fnp_error *err) {
  pool p = {0};
  size_t n = export_batch_count(b);
  Otlp__ExportLogsServiceRequest req;
  Otlp__ResourceLogs rl;
  Otlp__ScopeLogs sl;
  Otlp__ResourceLogs *rlp = &rl;
  Otlp__ScopeLogs *slp = &sl;
  otlp__export_logs_service_request__init(&req);
  otlp__resource_logs__init(&rl);
  otlp__scope_logs__init(&sl);
  req.resource_logs = &rlp;
  req.n_resource_logs = 1;
  rl.resource = resource(&p, meta);
  rl.scope_logs = &slp;
  rl.n_scope_logs = 1;
  sl.scope = scope(&p);
  sl.log_records = pool_alloc(&p, (n + 1) * sizeof *sl.log_records);
  for (size_t i = 0; i < n && !p.oom; i++) {
    const export_record *r = export_batch_get(b, i);
    if (r->kind != EXPORT_KIND_METRIC)
      sl.log_records[sl.n_log_records++] = log_record(&p, r);
  }
  int rc = finish(&p, &req.base, out, err);
  pool_free(&p);
  return rc;
}

static Otlp__Metric *metric(pool *p, const export_record *r) {
  Otlp__Metric *m = pool_alloc(p, sizeof *m);
  Otlp__NumberDataPoint *dp = pool_alloc(p, sizeof *dp);
  Otlp__NumberDataPoint **dps = pool_alloc(p, sizeof *dps);
  Otlp__Gauge *g = pool_alloc(p, sizeof *g);
  Otlp__Sum *s = pool_alloc(p, sizeof *s);
  if (!m || !dp || !dps || !g || !s)
    return NULL;
  otlp__metric__init(m);
  otlp__number_data_point__init(dp);
  m->name = (char *)(r->metric_name ? r->metric_name : "");
  m->unit = (char *)(r->metric_unit ? r->metric_unit : "");
  dp->time_unix_nano = (uint64_t)r->time_ns;
  dp->value_case = OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
  dp->as_double = r->metric_value;
  dp->attributes = record_attrs(p, r, NULL, &dp->n_attributes);
  dps[0] = dp;
  if (r->metric_counter) {
    /* A sidecar flushing per freeze cycle produces per-cycle deltas. */
    otlp__sum__init(s);
    s->data_points = dps;
    s->n_data_points = 1;
    s->aggregation_temporality = 1; /* DELTA */
    s->is_monotonic = 1;
    m->data_case = OTLP__METRIC__DATA_SUM;
    m->sum = s;
  } else {
    otlp__gauge__init(g);
    g->data_points = dps;
    g->n_data_points = 1;
    m->data_case = OTLP__METRIC__DATA_GAUGE;
    m->gauge = g;
  }
  return m;
}

int export_otlp_encode_metrics(const export_batch *b,
                               const export_otlp_meta *meta, fnp_buf *out,
                               fnp_error *err) {
  pool p = {0};
  size_t n = export_batch_count(b);
  Otlp__ExportMetricsServiceRequest req;
  Otlp__ResourceMetrics rm;
  Otlp__ScopeMetrics sm;
  Otlp__ResourceMetrics *rmp = &rm;
  Otlp__ScopeMetrics *smp = &sm;
  otlp__export_metrics_service_request__init(&req);
  otlp__resource_metrics__init(&rm);
  otlp__scope_metrics__init(&sm);
  req.resource_metrics = &rmp;
  req.n_resource_metrics = 1;
  rm.resource = resource(&p, meta);
  rm.scope_metrics = &smp;
  rm.n_scope_metrics = 1;
  sm.scope = scope(&p);
  sm.metrics = pool_alloc(&p, (n + 1) * sizeof *sm.metrics);
  for (size_t i = 0; i < n && !p.oom; i++) {
    const export_record *r = export_batch_get(b, i);
    if (r->kind == EXPORT_KIND_METRIC)
      sm.metrics[sm.n_metrics++] = metric(&p, r);
  }
  int rc = finish(&p, &req.base, out, err);
  pool_free(&p);
  return rc;
}
