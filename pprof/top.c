/*
 * pprof_top: flat and cumulative totals per function name for one sample
 * type, as `go tool pprof -top` reports them. Frame names come from
 * stacks.c; this file only adds up and sorts.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct top_acc {
  int64_t *flat;
  int64_t *cum;
  size_t *stamp; /* last sample (index + 1) that counted this name's cum */
} top_acc;

/* Counts one sample: flat for the leaf (innermost inline frame), cum once
 * per distinct name, so recursion does not count a function twice. */
static void count_sample(top_acc *a, const pprof__idvec *fr, int64_t v,
                         size_t stamp) {
  if (fr->n == 0)
    return;
  a->flat[fr->v[0]] = pprof__sat_add(a->flat[fr->v[0]], v);
  for (size_t k = 0; k < fr->n; k++) {
    uint32_t id = fr->v[k];
    if (a->stamp[id] == stamp)
      continue;
    a->stamp[id] = stamp;
    a->cum[id] = pprof__sat_add(a->cum[id], v);
  }
}

static int accumulate(const pprof__frame_names *f, int si, top_acc *a,
                      int64_t *total) {
  const pprof_profile *p = f->p;
  pprof__idvec fr = {0};
  int rc = 0;
  *total = 0;
  for (size_t i = 0; i < p->n_sample; i++) {
    const pprof_sample *s = &p->sample[i];
    int64_t v = s->value[si];
    /* pprof's total (report.go computeTotal) sums magnitudes, so a diff's
     * percentages are of all change, not of the net. */
    *total = pprof__sat_add(*total, v < 0 ? pprof__sat_neg(v) : v);
    if (v == 0)
      continue;
    if ((rc = pprof__sample_names(f, s, &fr)) < 0)
      break;
    count_sample(a, &fr, v, i + 1);
  }
  free(fr.v);
  return rc;
}

static int cmp_name(const pprof_top_entry *x, const pprof_top_entry *y) {
  return strcmp(x->name, y->name);
}

static int cmp_abs(int64_t a, int64_t b) {
  uint64_t x = pprof__abs(a), y = pprof__abs(b);
  return x == y ? 0 : x > y ? -1 : 1;
}

static int by_flat(const void *a, const void *b) {
  int c = cmp_abs(((const pprof_top_entry *)a)->flat,
                  ((const pprof_top_entry *)b)->flat);
  return c ? c : cmp_name(a, b);
}

static int by_cum(const void *a, const void *b) {
  int c = cmp_abs(((const pprof_top_entry *)a)->cum,
                  ((const pprof_top_entry *)b)->cum);
  return c ? c : cmp_name(a, b);
}

/* One malloc holds the entries and, after them, copies of the "0x..." names
 * (which are not in p's string table), so the caller's one free() suffices. */
static int build_entries(const pprof__frame_names *f, const top_acc *a,
                         pprof_top_entry **entries, size_t *n_entries) {
  size_t n = 0, text = 0;
  for (size_t id = 0; id < f->n_name; id++) {
    if (a->flat[id] == 0 && a->cum[id] == 0)
      continue; /* never on a stack, or cancelled out in a diff */
    n++;
    if (f->name_is_addr[id])
      text += strlen(f->name[id]) + 1;
  }
  pprof_top_entry *e = malloc(n * sizeof *e + text + 1);
  if (e == NULL)
    return -ENOMEM;
  char *pool = (char *)(e + n);
  size_t k = 0;
  for (size_t id = 0; id < f->n_name; id++) {
    if (a->flat[id] == 0 && a->cum[id] == 0)
      continue;
    e[k] = (pprof_top_entry){f->name[id], a->flat[id], a->cum[id]};
    if (f->name_is_addr[id]) {
      size_t len = strlen(f->name[id]) + 1;
      memcpy(pool, f->name[id], len);
      e[k].name = pool;
      pool += len;
    }
    k++;
  }
  *entries = e;
  *n_entries = n;
  return 0;
}

int pprof_top(const pprof_profile *p, int sample_index, pprof_sort sort,
              pprof_top_entry **entries, size_t *n_entries, int64_t *total) {
  if (p == NULL || entries == NULL || n_entries == NULL || sample_index < 0 ||
      (size_t)sample_index >= p->n_sample_type ||
      (sort != PPROF_SORT_FLAT && sort != PPROF_SORT_CUM))
    return FNP_EUSAGE;
  *entries = NULL;
  *n_entries = 0;
  pprof__frame_names f;
  top_acc a = {0};
  int64_t sum = 0;
  int rc = pprof__frame_names_init(&f, p);
  if (rc < 0)
    return rc;
  size_t n = f.n_name ? f.n_name : 1;
  a.flat = calloc(n, sizeof *a.flat);
  a.cum = calloc(n, sizeof *a.cum);
  a.stamp = calloc(n, sizeof *a.stamp);
  rc = -ENOMEM;
  if (a.flat == NULL || a.cum == NULL || a.stamp == NULL)
    goto done;
  if ((rc = accumulate(&f, sample_index, &a, &sum)) < 0 ||
      (rc = build_entries(&f, &a, entries, n_entries)) < 0)
    goto done;
  qsort(*entries, *n_entries, sizeof **entries,
        sort == PPROF_SORT_FLAT ? by_flat : by_cum);
  if (total != NULL)
    *total = sum;
done:
  free(a.flat);
  free(a.cum);
  free(a.stamp);
  pprof__frame_names_destroy(&f);
  return rc;
}
