/*
 * OTLP/HTTP protobuf decoding for fnprof-collector: a nesting pre-check
 * (protobuf-c unpacks recursively, and AnyValue can nest without bound, so
 * hostile input could exhaust the stack), protobuf-c unpack into an arena
 * (pb_arena.c: bounded amplification, no per-field malloc), then flattening
 * of log records and data points into export_otlp_items for the store.
 */
#include "internal.h"
#include "otlp.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Real OTLP nests ~8 deep; 32 leaves room for nested attribute values. */
#define MAX_DEPTH 32
#define VALUE_TEXT_MAX_BYTES (1u << 20) /* one rendered attribute value */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80))
      return 0;
  }
  return FNP_EPARSE;
}

static const ProtobufCFieldDescriptor *
find_field(const ProtobufCMessageDescriptor *d, uint64_t num) {
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].id == num)
      return &d->fields[i];
  return NULL;
}

/*
 * Walks the wire bytes with the message descriptors and an explicit stack,
 * failing when submessages nest deeper than MAX_DEPTH. Only structure is
 * checked here; protobuf-c validates the rest.
 */
static int check_depth(const uint8_t *p, size_t len,
                       const ProtobufCMessageDescriptor *root, fnp_error *err) {
  struct {
    const uint8_t *end;
    const ProtobufCMessageDescriptor *d;
  } st[MAX_DEPTH + 1];
  int top = 0;
  st[0].end = p + len;
  st[0].d = root;
  const uint8_t *start = p;
  while (top >= 0) {
    if (p >= st[top].end) {
      top--;
      continue;
    }
    uint64_t key, v;
    if (read_varint(&p, st[top].end, &key) < 0)
      goto bad;
    switch (key & 7) {
    case 0:
      if (read_varint(&p, st[top].end, &v) < 0)
        goto bad;
      break;
    case 1:
    case 5: {
      size_t w = (key & 7) == 1 ? 8 : 4;
      if ((size_t)(st[top].end - p) < w)
        goto bad;
      p += w;
      break;
    }
    case 2: {
      if (read_varint(&p, st[top].end, &v) < 0 ||
          v > (uint64_t)(st[top].end - p))
        goto bad;
      const ProtobufCFieldDescriptor *f = find_field(st[top].d, key >> 3);
      if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE) {
        p += v;
        break;
      }
      if (top == MAX_DEPTH)
        return fnp_fail(err, FNP_ETOOBIG,
                        "OTLP: messages nested deeper than %d at offset %td",
                        MAX_DEPTH, p - start);
      top++;
      st[top].end = p + v;
      st[top].d = f->descriptor;
      break;
    }
    default:
      goto bad;
    }
  }
  return 0;
bad:
  return fnp_fail(err, FNP_EPARSE, "OTLP: malformed protobuf at offset %td",
                  p - start);
}

/* ---- AnyValue to text (strings as is, others in JSON form) ---- */

static int any_text(fnp_buf *b, const Otlp__AnyValue *v);

static int array_text(fnp_buf *b, Otlp__AnyValue **vals, size_t n) {
  int rc = fnp_buf_append(b, "[", 1);
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (i)
      rc = fnp_buf_append(b, ",", 1);
    bool str = vals[i]->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    rc = rc    ? rc
         : str ? export__json_str(b, vals[i]->string_value, SIZE_MAX)
               : any_text(b, vals[i]);
  }
  return rc ? rc : fnp_buf_append(b, "]", 1);
}

static int kvlist_text(fnp_buf *b, Otlp__KeyValue **kvs, size_t n) {
  int rc = fnp_buf_append(b, "{", 1);
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (i)
      rc = fnp_buf_append(b, ",", 1);
    rc = rc ? rc : export__json_str(b, kvs[i]->key, SIZE_MAX);
    rc = rc ? rc : fnp_buf_append(b, ":", 1);
    const Otlp__AnyValue *v = kvs[i]->value;
    if (rc == 0 && v && v->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE)
      rc = export__json_str(b, v->string_value, SIZE_MAX);
    else if (rc == 0)
      rc = v ? any_text(b, v) : fnp_buf_append(b, "null", 4);
  }
  return rc ? rc : fnp_buf_append(b, "}", 1);
}

/* Depth is bounded by check_depth, so this recursion is too. */
static int any_text(fnp_buf *b, const Otlp__AnyValue *v) {
  switch (v->value_case) {
  case OTLP__ANY_VALUE__VALUE_STRING_VALUE:
    return fnp_buf_append(b, v->string_value, strlen(v->string_value));
  case OTLP__ANY_VALUE__VALUE_BOOL_VALUE:
    return fnp_buf_printf(b, "%s", v->bool_value ? "true" : "false");
  case OTLP__ANY_VALUE__VALUE_INT_VALUE:
    return fnp_buf_printf(b, "%" PRId64, v->int_value);
  case OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
    return fnp_buf_printf(b, "%.17g", v->double_value);
  case OTLP__ANY_VALUE__VALUE_BYTES_VALUE: {
    int rc = 0;
    for (size_t i = 0; i < v->bytes_value.len && rc == 0; i++)
      rc = fnp_buf_printf(b, "%02x", v->bytes_value.data[i]);
    return rc;
  }
  case OTLP__ANY_VALUE__VALUE_ARRAY_VALUE:
    return array_text(b, v->array_value->values, v->array_value->n_values);
  case OTLP__ANY_VALUE__VALUE_KVLIST_VALUE:
    return kvlist_text(b, v->kvlist_value->values, v->kvlist_value->n_values);
  default:
    return 0;
  }
}

/* ---- flattening ---- */

void export_otlp_data_free(export_otlp_data *d) {
  if (d == NULL)
    return;
  for (size_t i = 0; i < d->n_items; i++) {
    export_otlp_item *it = &d->items[i];
    for (size_t j = 0; j < it->n_fields; j++) {
      free((char *)it->fields[j].key);
      free((char *)it->fields[j].value);
    }
    free(it->fields);
    free(it->name);
    free(it->unit);
  }
  free(d->items);
  free(d->batch_id);
  free(d);
}

static int add_field(export_otlp_item *it, size_t cap, const char *k,
                     const char *v, size_t vlen) {
  if (it->n_fields == cap)
    return FNP_ETOOBIG;
  export_field *f = &it->fields[it->n_fields];
  f->key = strdup(k);
  f->value = strndup(v, vlen);
  it->n_fields++; /* counted even on failure so free() releases the half */
  return f->key && f->value ? 0 : -ENOMEM;
}

static int add_attrs(export_otlp_item *it, size_t cap, Otlp__KeyValue **kv,
                     size_t n) {
  fnp_buf t;
  fnp_buf_init(&t, VALUE_TEXT_MAX_BYTES);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    fnp_buf_reset(&t);
    if (kv[i]->value)
      rc = any_text(&t, kv[i]->value);
    rc = rc ? rc
            : add_field(it, cap, kv[i]->key, t.data ? (char *)t.data : "",
                        t.len);
  }
  fnp_buf_destroy(&t);
  return rc;
}

typedef struct ctx {
  export_otlp_data *d;
  const Otlp__Resource *res;
} ctx;

static export_otlp_item *new_item(ctx *c, size_t n_attrs, int64_t t, int *rc) {
  export_otlp_item *it = &c->d->items[c->d->n_items++];
  size_t n_res = c->res ? c->res->n_attributes : 0;
  size_t cap = n_res + n_attrs + 2;
  it->time_ns = t;
  it->fields = calloc(cap, sizeof *it->fields);
  if (it->fields == NULL) {
    *rc = -ENOMEM;
    return NULL;
  }
  if (c->res)
    *rc = add_attrs(it, cap, c->res->attributes, n_res);
  return it;
}

static int take_log(ctx *c, const Otlp__LogRecord *lr) {
  int rc = 0;
  uint64_t t =
      lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
  export_otlp_item *it = new_item(c, lr->n_attributes, (int64_t)t, &rc);
  if (rc < 0)
    return rc;
  size_t cap = (c->res ? c->res->n_attributes : 0) + lr->n_attributes + 2;
  rc = add_attrs(it, cap, lr->attributes, lr->n_attributes);
  if (rc == 0 && lr->severity_text && lr->severity_text[0])
    rc = add_field(it, cap, "level", lr->severity_text,
                   strlen(lr->severity_text));
  if (rc == 0 && lr->body) {
    fnp_buf t2;
    fnp_buf_init(&t2, VALUE_TEXT_MAX_BYTES);
    rc = any_text(&t2, lr->body);
    rc = rc ? rc
            : add_field(it, cap, "message", t2.data ? (char *)t2.data : "",
                        t2.len);
    fnp_buf_destroy(&t2);
  }
  return rc;
}

static int take_point(ctx *c, const Otlp__Metric *m, Otlp__KeyValue **attrs,
                      size_t n_attrs, uint64_t t, double value) {
  int rc = 0;
  export_otlp_item *it = new_item(c, n_attrs, (int64_t)t, &rc);
  if (rc < 0)
    return rc;
  size_t cap = (c->res ? c->res->n_attributes : 0) + n_attrs + 2;
  it->name = strdup(m->name);
  it->unit = strdup(m->unit);
  it->value = value;
  if (it->name == NULL || it->unit == NULL)
    return -ENOMEM;
  return add_attrs(it, cap, attrs, n_attrs);
}

static int take_metric(ctx *c, const Otlp__Metric *m) {
  Otlp__NumberDataPoint **dp = NULL;
  size_t n = 0;
  int rc = 0;
  if (m->data_case == OTLP__METRIC__DATA_GAUGE)
    dp = m->gauge->data_points, n = m->gauge->n_data_points;
  else if (m->data_case == OTLP__METRIC__DATA_SUM)
    dp = m->sum->data_points, n = m->sum->n_data_points;
  for (size_t i = 0; i < n && rc == 0; i++) {
    double v = dp[i]->value_case == OTLP__NUMBER_DATA_POINT__VALUE_AS_INT
                   ? (double)dp[i]->as_int
                   : dp[i]->as_double;
    rc = take_point(c, m, dp[i]->attributes, dp[i]->n_attributes,
                    dp[i]->time_unix_nano, v);
  }
  if (m->data_case != OTLP__METRIC__DATA_HISTOGRAM)
    return rc;
  /* Histograms are stored by their sum; buckets stay with the sender. */
  for (size_t i = 0; i < m->histogram->n_data_points && rc == 0; i++) {
    const Otlp__HistogramDataPoint *h = m->histogram->data_points[i];
    rc = take_point(c, m, h->attributes, h->n_attributes, h->time_unix_nano,
                    h->sum_present_case ? h->sum : 0);
  }
  return rc;
}

static size_t metric_points(const Otlp__Metric *m) {
  switch (m->data_case) {
  case OTLP__METRIC__DATA_GAUGE:
    return m->gauge->n_data_points;
  case OTLP__METRIC__DATA_SUM:
    return m->sum->n_data_points;
  case OTLP__METRIC__DATA_HISTOGRAM:
    return m->histogram->n_data_points;
  default:
    return 0;
  }
}

static void find_batch_id(export_otlp_data *d, const Otlp__Resource *r) {
  for (size_t i = 0; r && d->batch_id == NULL && i < r->n_attributes; i++) {
    const Otlp__KeyValue *kv = r->attributes[i];
    if (strcmp(kv->key, "fnprof.batch.id") == 0 && kv->value &&
        kv->value->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE)
      d->batch_id = strdup(kv->value->string_value);
  }
}

static int flatten_logs(export_otlp_data *d,
                        const Otlp__ExportLogsServiceRequest *q) {
  int rc = 0;
  for (size_t i = 0; i < q->n_resource_logs && rc == 0; i++) {
    ctx c = {d, q->resource_logs[i]->resource};
    find_batch_id(d, c.res);
    for (size_t j = 0; j < q->resource_logs[i]->n_scope_logs && rc == 0; j++) {
      const Otlp__ScopeLogs *sl = q->resource_logs[i]->scope_logs[j];
      for (size_t k = 0; k < sl->n_log_records && rc == 0; k++)
        rc = take_log(&c, sl->log_records[k]);
    }
  }
  return rc;
}

static int flatten_metrics(export_otlp_data *d,
                           const Otlp__ExportMetricsServiceRequest *q) {
  int rc = 0;
  for (size_t i = 0; i < q->n_resource_metrics && rc == 0; i++) {
    ctx c = {d, q->resource_metrics[i]->resource};
    find_batch_id(d, c.res);
    const Otlp__ResourceMetrics *rm = q->resource_metrics[i];
    for (size_t j = 0; j < rm->n_scope_metrics && rc == 0; j++)
      for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics && rc == 0; k++)
        rc = take_metric(&c, rm->scope_metrics[j]->metrics[k]);
  }
  return rc;
}

static size_t count_items(const ProtobufCMessage *msg, bool metrics) {
  size_t n = 0;
  if (!metrics) {
    const Otlp__ExportLogsServiceRequest *q = (const void *)msg;
    for (size_t i = 0; i < q->n_resource_logs; i++)
      for (size_t j = 0; j < q->resource_logs[i]->n_scope_logs; j++)
        n += q->resource_logs[i]->scope_logs[j]->n_log_records;
    return n;
  }
  const Otlp__ExportMetricsServiceRequest *q = (const void *)msg;
  for (size_t i = 0; i < q->n_resource_metrics; i++)
    for (size_t j = 0; j < q->resource_metrics[i]->n_scope_metrics; j++) {
      const Otlp__ScopeMetrics *sm = q->resource_metrics[i]->scope_metrics[j];
      for (size_t k = 0; k < sm->n_metrics; k++)
        n += metric_points(sm->metrics[k]);
    }
  return n;
}

int export_otlp_decode(const void *data, size_t len, bool metrics,
                       size_t max_items, export_otlp_data **out,
                       fnp_error *err) {
  const ProtobufCMessageDescriptor *desc =
      metrics ? &otlp__export_metrics_service_request__descriptor
              : &otlp__export_logs_service_request__descriptor;
  *out = NULL;
  int rc = check_depth(data, len, desc, err);
  if (rc < 0)
    return rc;
  export__arena a;
  export__arena_init(&a, EXPORT__DECODE_BUDGET(len));
  ProtobufCMessage *msg = protobuf_c_message_unpack(desc, &a.pb, len, data);
  if (msg == NULL) {
    rc = a.over_budget
             ? fnp_fail(err, FNP_ETOOBIG,
                        "OTLP: %zu bytes decode to more "
                        "than %zu",
                        len, a.budget)
             : fnp_fail(err, FNP_EPARSE, "OTLP: not a valid %s (%zu bytes)",
                        desc->short_name, len);
    export__arena_destroy(&a);
    return rc;
  }
  export_otlp_data *d = calloc(1, sizeof *d);
  size_t n = count_items(msg, metrics);
  if (d == NULL || n > max_items) {
    rc = d ? fnp_fail(err, FNP_ETOOBIG, "OTLP: %zu items, limit %zu", n,
                      max_items)
           : fnp_fail(err, -ENOMEM, "OTLP: out of memory");
    goto fail;
  }
  d->items = calloc(n + 1, sizeof *d->items);
  if (d->items == NULL) {
    rc = fnp_fail(err, -ENOMEM, "OTLP: out of memory");
    goto fail;
  }
  rc = metrics ? flatten_metrics(d, (void *)msg) : flatten_logs(d, (void *)msg);
  if (rc < 0) {
    fnp_fail(err, rc, "OTLP: %s while flattening", fnp_strerror(rc));
    goto fail;
  }
  export__arena_destroy(&a); /* the items hold their own copies */
  *out = d;
  return 0;
fail:
  export_otlp_data_free(d);
  export__arena_destroy(&a);
  return rc;
}
