/*
 * SLS LogGroup decoding for fnprof-collector: protobuf-c unpacks into an
 * arena (it checks wire types, lengths and required fields; the arena's
 * budget caps memory amplification), the result is validated (contents
 * present, TimeNs in range), and the flat export_sls_group the store takes
 * is built in the same arena, pointing at the unpacked strings: no copies.
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
  export__arena *a = g->priv;
  export__arena_destroy(a); /* g itself lives in the arena */
  free(a);
}

static int flatten_log(export__arena *a, export_sls_log *d, const Sls__Log *s,
                       size_t idx, fnp_error *err) {
  if (s->n_contents == 0)
    return fnp_fail(err, FNP_EPARSE, "LogGroup: log %zu has no contents", idx);
  if (s->has_timens && s->timens > NS_MAX)
    return fnp_fail(err, FNP_EPARSE, "LogGroup: log %zu: TimeNs %u > 999999999",
                    idx, s->timens);
  d->time_ns = (int64_t)s->time * NS_PER_S + (s->has_timens ? s->timens : 0);
  d->contents = export__arena_alloc(a, s->n_contents * sizeof *d->contents);
  if (d->contents == NULL)
    return fnp_fail(err, FNP_ETOOBIG, "LogGroup: decoded size over budget");
  for (size_t j = 0; j < s->n_contents; j++)
    d->contents[j] = (export_field){s->contents[j]->key, s->contents[j]->value};
  d->n_contents = s->n_contents;
  return 0;
}

static int flatten(export__arena *a, export_sls_group *g,
                   const Sls__LogGroup *m, fnp_error *err) {
  g->topic = m->topic ? m->topic : "";
  g->source = m->source ? m->source : "";
  g->logs = export__arena_alloc(a, (m->n_logs + 1) * sizeof *g->logs);
  g->tags = export__arena_alloc(a, (m->n_logtags + 1) * sizeof *g->tags);
  if (g->logs == NULL || g->tags == NULL)
    return fnp_fail(err, FNP_ETOOBIG, "LogGroup: decoded size over budget");
  for (size_t i = 0; i < m->n_logtags; i++)
    g->tags[i] = (export_field){m->logtags[i]->key, m->logtags[i]->value};
  g->n_tags = m->n_logtags;
  for (size_t i = 0; i < m->n_logs; i++) {
    int rc = flatten_log(a, &g->logs[i], m->logs[i], i, err);
    if (rc < 0)
      return rc;
  }
  g->n_logs = m->n_logs;
  return 0;
}

int export_sls_decode(const void *data, size_t len, size_t max_logs,
                      export_sls_group **out, fnp_error *err) {
  *out = NULL;
  export__arena *a = malloc(sizeof *a);
  if (a == NULL)
    return fnp_fail(err, -ENOMEM, "LogGroup: out of memory");
  export__arena_init(a, EXPORT__DECODE_BUDGET(len));
  int rc;
  Sls__LogGroup *m = sls__log_group__unpack(&a->pb, len, data);
  export_sls_group *g = NULL;
  if (m == NULL) {
    rc = a->over_budget
             ? fnp_fail(err, FNP_ETOOBIG,
                        "LogGroup: %zu bytes decode to more than %zu", len,
                        a->budget)
             : fnp_fail(err, FNP_EPARSE,
                        "LogGroup: not a valid protobuf LogGroup (%zu bytes: "
                        "bad wire format, truncated, or a required field "
                        "missing)",
                        len);
    goto fail;
  }
  if (m->n_logs > max_logs) {
    rc = fnp_fail(err, FNP_ETOOBIG, "LogGroup: %zu logs, limit %zu", m->n_logs,
                  max_logs);
    goto fail;
  }
  g = export__arena_alloc(a, sizeof *g);
  if (g == NULL) {
    rc = fnp_fail(err, FNP_ETOOBIG, "LogGroup: decoded size over budget");
    goto fail;
  }
  memset(g, 0, sizeof *g);
  g->priv = a;
  if ((rc = flatten(a, g, m, err)) < 0)
    goto fail;
  *out = g;
  return 0;
fail:
  export__arena_destroy(a);
  free(a);
  return rc;
}
