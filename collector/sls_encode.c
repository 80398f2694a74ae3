/*
 * SLS LogGroup encoding with protobuf-c: a batch becomes one LogGroup whose
 * logs carry each record's fields as contents, with the sink's tags and a
 * __pack_id__ tag. All message structs for a batch come from a few flat
 * arrays, so encoding costs O(1) mallocs per batch, not per record.
 */
#include "internal.h"
#include "sls.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define NS_PER_S 1000000000LL
#define METRIC_VALUE_CHARS 32 /* "%.17g" of a double fits in 25 */

static const char *const kind_names[] = {"log", "metric", "event", "profile"};

typedef struct arrays {
  Sls__Log *logs;
  Sls__Log **log_ptrs;
  Sls__Log__Content *contents;
  Sls__Log__Content **content_ptrs;
  Sls__LogTag *tags;
  Sls__LogTag **tag_ptrs;
  char *values; /* METRIC_VALUE_CHARS per record */
} arrays;

static void arrays_free(arrays *a) {
  free(a->logs);
  free(a->log_ptrs);
  free(a->contents);
  free(a->content_ptrs);
  free(a->tags);
  free(a->tag_ptrs);
  free(a->values);
}

static int arrays_alloc(arrays *a, size_t n_logs, size_t n_contents,
                        size_t n_tags) {
  /* malloc, not calloc: every element is initialized before use, and
   * zeroing ~1 MB per batch showed up in the ingest profile. */
  a->logs = malloc((n_logs + 1) * sizeof *a->logs);
  a->log_ptrs = malloc((n_logs + 1) * sizeof *a->log_ptrs);
  a->contents = malloc((n_contents + 1) * sizeof *a->contents);
  a->content_ptrs = malloc((n_contents + 1) * sizeof *a->content_ptrs);
  a->tags = malloc((n_tags + 1) * sizeof *a->tags);
  a->tag_ptrs = malloc((n_tags + 1) * sizeof *a->tag_ptrs);
  a->values = malloc((n_logs + 1) * METRIC_VALUE_CHARS);
  if (!a->logs || !a->log_ptrs || !a->contents || !a->content_ptrs ||
      !a->tags || !a->tag_ptrs || !a->values)
    return -ENOMEM;
  return 0;
}

static void add_content(Sls__Log *log, Sls__Log__Content *c, const char *k,
                        const char *v) {
  sls__log__content__init(c);
  c->key = (char *)k;
  c->value = (char *)v;
  log->contents[log->n_contents++] = c;
}

/* Fills log i from r; its contents start at *next in the shared arrays. */
static void fill_log(arrays *a, size_t i, const export_record *r,
                     size_t *next) {
  Sls__Log *log = &a->logs[i];
  sls__log__init(log);
  int64_t t = r->time_ns < 0 ? 0 : r->time_ns;
  log->time = (uint32_t)(t / NS_PER_S);
  log->has_timens = 1;
  log->timens = (uint32_t)(t % NS_PER_S);
  log->contents = &a->content_ptrs[*next];
  Sls__Log__Content *c = &a->contents[*next];
  for (size_t f = 0; f < r->n_fields; f++)
    add_content(log, c++, r->fields[f].key, r->fields[f].value);
  if (r->kind != EXPORT_KIND_LOG && (unsigned)r->kind < 4)
    add_content(log, c++, "kind", kind_names[r->kind]);
  if (r->instance)
    add_content(log, c++, "instance", r->instance);
  if (r->request_id)
    add_content(log, c++, "request_id", r->request_id);
  if (r->kind == EXPORT_KIND_METRIC && r->metric_name) {
    char *v = a->values + i * METRIC_VALUE_CHARS;
    snprintf(v, METRIC_VALUE_CHARS, "%.17g", r->metric_value);
    add_content(log, c++, "metric", r->metric_name);
    add_content(log, c++, "value", v);
    if (r->metric_unit)
      add_content(log, c++, "unit", r->metric_unit);
  }
  /* SLS requires at least one content per log. */
  if (log->n_contents == 0)
    add_content(log, c++, "kind", kind_names[r->kind & 3]);
  *next += log->n_contents;
  a->log_ptrs[i] = log;
}

static void fill_tags(arrays *a, Sls__LogGroup *g, const export_sls_meta *m) {
  g->logtags = a->tag_ptrs;
  size_t n = 0;
  for (size_t i = 0; m && i < m->n_tags; i++, n++) {
    sls__log_tag__init(&a->tags[n]);
    a->tags[n].key = (char *)(m->tags[i].key ? m->tags[i].key : "");
    a->tags[n].value = (char *)(m->tags[i].value ? m->tags[i].value : "");
    a->tag_ptrs[n] = &a->tags[n];
  }
  if (m && m->pack_id) {
    sls__log_tag__init(&a->tags[n]);
    a->tags[n].key = "__pack_id__";
    a->tags[n].value = (char *)m->pack_id;
    a->tag_ptrs[n] = &a->tags[n];
    n++;
  }
  g->n_logtags = n;
}

/* How many contents fill_log makes for r (at least one). */
static size_t extra_contents(const export_record *r) {
  size_t n = r->n_fields + (r->kind != EXPORT_KIND_LOG) + !!r->instance +
             !!r->request_id;
  if (r->kind == EXPORT_KIND_METRIC && r->metric_name)
    n += 2 + !!r->metric_unit;
  return n > 0 ? n : 1;
}

int export_sls_encode(const export_batch *b, const export_sls_meta *meta,
                      fnp_buf *out, fnp_error *err) {
  size_t n = export_batch_count(b), n_contents = 0;
  for (size_t i = 0; i < n; i++)
    n_contents += extra_contents(export_batch_get(b, i));
  arrays a = {0};
  int rc = arrays_alloc(&a, n, n_contents, (meta ? meta->n_tags : 0) + 1);
  if (rc < 0) {
    fnp_fail(err, rc, "LogGroup: out of memory for %zu logs", n);
    goto done;
  }
  Sls__LogGroup g;
  sls__log_group__init(&g);
  size_t next = 0;
  for (size_t i = 0; i < n; i++)
    fill_log(&a, i, export_batch_get(b, i), &next);
  g.logs = a.log_ptrs;
  g.n_logs = n;
  if (meta && meta->topic)
    g.topic = (char *)meta->topic;
  if (meta && meta->source)
    g.source = (char *)meta->source;
  fill_tags(&a, &g, meta);
  size_t len = sls__log_group__get_packed_size(&g);
  if ((rc = fnp_buf_reserve(out, len)) < 0) {
    fnp_fail(err, rc, "LogGroup: %zu bytes: %s", len, fnp_strerror(rc));
    goto done;
  }
  out->len += sls__log_group__pack(&g, out->data + out->len);
done:
  arrays_free(&a);
  return rc;
}
