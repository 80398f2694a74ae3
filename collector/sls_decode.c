/*
 * SLS LogGroup decoding for fnprof-collector: protobuf-c unpacks (it checks
 * wire types, lengths and required fields), then the result is validated
 * (time range, nanoseconds, UTF-8 is left to the JSON writer) and copied into
 * the flat export_sls_group the store takes.
 */
#include "internal.h"
#include "sls.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL
#define NS_MAX 999999999u

void export_sls_group_free(export_sls_group *g) {
  if (g == NULL)
    return;
  for (size_t i = 0; i < g->n_logs; i++) {
    for (size_t j = 0; j < g->logs[i].n_contents; j++) {
      free((char *)g->logs[i].contents[j].key);
      free((char *)g->logs[i].contents[j].value);
    }
    free(g->logs[i].contents);
  }
  for (size_t i = 0; i < g->n_tags; i++) {
    free((char *)g->tags[i].key);
    free((char *)g->tags[i].value);
  }
  free(g->logs);
  free(g->tags);
  free(g->topic);
  free(g->source);
  free(g);
}

static int copy_kv(export_field *f, const char *k, const char *v) {
  f->key = strdup(k ? k : "");
  f->value = strdup(v ? v : "");
  return f->key && f->value ? 0 : -ENOMEM;
}

static int copy_log(export_sls_log *d, const Sls__Log *s, size_t idx,
                    fnp_error *err) {
  if (s->n_contents == 0)
    return fnp_fail(err, FNP_EPARSE, "LogGroup: log %zu has no contents", idx);
  if (s->has_timens && s->timens > NS_MAX)
    return fnp_fail(err, FNP_EPARSE, "LogGroup: log %zu: TimeNs %u > 999999999",
                    idx, s->timens);
  d->time_ns = (int64_t)s->time * NS_PER_S + (s->has_timens ? s->timens : 0);
  d->contents = calloc(s->n_contents, sizeof *d->contents);
  if (d->contents == NULL)
    return fnp_fail(err, -ENOMEM, "LogGroup: out of memory");
  for (size_t j = 0; j < s->n_contents; j++, d->n_contents++)
    if (copy_kv(&d->contents[j], s->contents[j]->key,
                s->contents[j]->value) < 0) {
      d->n_contents++; /* the half-copied pair is freed with the rest */
      return fnp_fail(err, -ENOMEM, "LogGroup: out of memory");
    }
  return 0;
}

static int copy_group(export_sls_group *g, const Sls__LogGroup *m,
                      fnp_error *err) {
  g->topic = strdup(m->topic ? m->topic : "");
  g->source = strdup(m->source ? m->source : "");
  g->logs = calloc(m->n_logs + 1, sizeof *g->logs);
  g->tags = calloc(m->n_logtags + 1, sizeof *g->tags);
  if (!g->topic || !g->source || !g->logs || !g->tags)
    return fnp_fail(err, -ENOMEM, "LogGroup: out of memory");
  for (size_t i = 0; i < m->n_logtags; i++, g->n_tags++)
    if (copy_kv(&g->tags[i], m->logtags[i]->key, m->logtags[i]->value) < 0) {
      g->n_tags++;
      return fnp_fail(err, -ENOMEM, "LogGroup: out of memory");
    }
  for (size_t i = 0; i < m->n_logs; i++) {
    int rc = copy_log(&g->logs[i], m->logs[i], i, err);
    g->n_logs++;
    if (rc < 0)
      return rc;
  }
  return 0;
}

int export_sls_decode(const void *data, size_t len, size_t max_logs,
                      export_sls_group **out, fnp_error *err) {
  *out = NULL;
  Sls__LogGroup *m = sls__log_group__unpack(NULL, len, data);
  if (m == NULL)
    return fnp_fail(err, FNP_EPARSE,
                    "LogGroup: not a valid protobuf LogGroup (%zu bytes: bad "
                    "wire format, truncated, or a required field missing)",
                    len);
  int rc;
  export_sls_group *g = NULL;
  if (m->n_logs > max_logs) {
    rc = fnp_fail(err, FNP_ETOOBIG, "LogGroup: %zu logs, limit %zu",
                  m->n_logs, max_logs);
    goto fail;
  }
  g = calloc(1, sizeof *g);
  if (g == NULL) {
    rc = fnp_fail(err, -ENOMEM, "LogGroup: out of memory");
    goto fail;
  }
  if ((rc = copy_group(g, m, err)) < 0)
    goto fail;
  sls__log_group__free_unpacked(m, NULL);
  *out = g;
  return 0;
fail:
  export_sls_group_free(g);
  sls__log_group__free_unpacked(m, NULL);
  return rc;
}
