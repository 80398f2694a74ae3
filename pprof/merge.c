/*
 * pprof_merge: adds up samples of compatible profiles whose symbolized stacks
 * and labels are equal, following pprof's profile/merge.go. Re-keying stacks
 * is the interner's job (stacks.c); this file checks compatibility, combines
 * headers and accumulates values.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* How much of a sample-type list an incompatibility message quotes. */
#define TYPES_MSG_BYTES 96

typedef struct merge_ctx {
  pprof__interner in;
  pprof__keytab samples; /* key -> output sample index */
  int64_t *key;
  size_t key_cap;
  pprof_label *label;
  size_t label_cap;
  int64_t *value;
} merge_ctx;

static bool same_type(const pprof_profile *a, pprof_value_type x,
                      const pprof_profile *b, pprof_value_type y) {
  return strcmp(pprof_str(a, x.type), pprof_str(b, y.type)) == 0 &&
         strcmp(pprof_str(a, x.unit), pprof_str(b, y.unit)) == 0;
}

static void format_types(const pprof_profile *p, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < p->n_sample_type && used < len; i++) {
    int n = snprintf(buf + used, len - used, "%s%s/%s", i ? "," : "",
                     pprof_str(p, p->sample_type[i].type),
                     pprof_str(p, p->sample_type[i].unit));
    if (n < 0)
      break;
    used += (size_t)n;
  }
}

static int check_compatible(const pprof_profile *a, const pprof_profile *b,
                            size_t i, fnp_error *err) {
  if (!same_type(a, a->period_type, b, b->period_type))
    return fnp_fail(
        err, FNP_EINCOMPAT,
        "incompatible period types: input 0 has %s/%s, input "
        "%zu has %s/%s",
        pprof_str(a, a->period_type.type), pprof_str(a, a->period_type.unit), i,
        pprof_str(b, b->period_type.type), pprof_str(b, b->period_type.unit));
  bool same = a->n_sample_type == b->n_sample_type;
  for (size_t t = 0; same && t < a->n_sample_type; t++)
    same = same_type(a, a->sample_type[t], b, b->sample_type[t]);
  if (same)
    return 0;
  char ta[TYPES_MSG_BYTES], tb[TYPES_MSG_BYTES];
  format_types(a, ta, sizeof ta);
  format_types(b, tb, sizeof tb);
  return fnp_fail(err, FNP_EINCOMPAT,
                  "incompatible sample types: input 0 has [%s], input %zu "
                  "has [%s]",
                  ta, i, tb);
}

static int check_inputs(const pprof_profile *const *in, size_t n,
                        fnp_error *err) {
  if (in == NULL || n == 0)
    return fnp_fail(err, FNP_EUSAGE, "merge: no input profiles");
  for (size_t i = 0; i < n; i++) {
    if (in[i] == NULL)
      return fnp_fail(err, FNP_EUSAGE, "merge: input %zu is NULL", i);
    fnp_error verr = {0};
    int rc = pprof_validate(in[i], &verr);
    if (rc < 0)
      return fnp_fail(err, rc, "merge: input %zu: %s", i, verr.msg);
    if (i > 0 && (rc = check_compatible(in[0], in[i], i, err)) < 0)
      return rc;
  }
  return 0;
}

/* Comments: each distinct text once, in first-seen order. */
static int merge_comments(merge_ctx *c, const pprof_profile *src,
                          pprof__u64map *seen) {
  for (size_t i = 0; i < src->n_comment; i++) {
    int64_t idx;
    uint64_t ignored;
    int rc = pprof__interner_string(&c->in, src->comment[i], &idx);
    if (rc < 0)
      return rc;
    if (pprof__u64map_get(seen, (uint64_t)idx + 1, &ignored))
      continue;
    if ((rc = pprof__u64map_put(seen, (uint64_t)idx + 1, 1)) < 0 ||
        (rc = pprof_add_comment(c->in.out, pprof_str(c->in.out, idx))) < 0)
      return rc;
  }
  return 0;
}

/* Header fields as pprof combines them: earliest time, summed duration,
 * largest period, first non-empty default type; the rest from input 0. */
static int merge_header(merge_ctx *c, const pprof_profile *src, bool first,
                        pprof__u64map *seen) {
  pprof_profile *out = c->in.out;
  int rc = 0;
  if (first) {
    for (size_t t = 0; t < src->n_sample_type && rc == 0; t++)
      rc = pprof_add_sample_type(out, pprof_str(src, src->sample_type[t].type),
                                 pprof_str(src, src->sample_type[t].unit));
    if (rc == 0)
      rc = pprof__interner_string(&c->in, src->period_type.type,
                                  &out->period_type.type);
    if (rc == 0)
      rc = pprof__interner_string(&c->in, src->period_type.unit,
                                  &out->period_type.unit);
    if (rc == 0)
      rc = pprof__interner_string(&c->in, src->drop_frames, &out->drop_frames);
    if (rc == 0)
      rc = pprof__interner_string(&c->in, src->keep_frames, &out->keep_frames);
    if (rc == 0)
      rc = pprof__interner_string(&c->in, src->doc_url, &out->doc_url);
  }
  if (rc == 0 && out->default_sample_type == 0)
    rc = pprof__interner_string(&c->in, src->default_sample_type,
                                &out->default_sample_type);
  if (rc < 0)
    return rc;
  if (src->time_nanos != 0 &&
      (out->time_nanos == 0 || src->time_nanos < out->time_nanos))
    out->time_nanos = src->time_nanos;
  out->duration_nanos =
      pprof__sat_add(out->duration_nanos, src->duration_nanos);
  if (src->period > out->period)
    out->period = src->period;
  return merge_comments(c, src, seen);
}

static int label_cmp(const void *a, const void *b) {
  const pprof_label *x = a, *y = b;
  int64_t dx[4] = {x->key, x->str, x->num, x->num_unit};
  int64_t dy[4] = {y->key, y->str, y->num, y->num_unit};
  for (int i = 0; i < 4; i++)
    if (dx[i] != dy[i])
      return dx[i] < dy[i] ? -1 : 1;
  return 0;
}

/* Translates s's labels into c->label (output strings), sorted so that
 * label order does not matter. */
static int map_labels(merge_ctx *c, const pprof_sample *s) {
  if (pprof__reserve((void **)&c->label, &c->label_cap, s->n_label,
                     sizeof *c->label) < 0)
    return -ENOMEM;
  for (size_t i = 0; i < s->n_label; i++) {
    pprof_label *d = &c->label[i];
    *d = s->label[i];
    int rc = pprof__interner_string(&c->in, s->label[i].key, &d->key);
    if (rc == 0)
      rc = pprof__interner_string(&c->in, s->label[i].str, &d->str);
    if (rc == 0)
      rc = pprof__interner_string(&c->in, s->label[i].num_unit, &d->num_unit);
    if (rc < 0)
      return rc;
  }
  if (s->n_label > 1)
    qsort(c->label, s->n_label, sizeof *c->label, label_cmp);
  return 0;
}

/* c->key = [n_location, output location ids..., sorted labels (4 each)]. */
static int sample_key(merge_ctx *c, const pprof_sample *s, size_t *len) {
  if (s->n_location > SIZE_MAX / 8 - 1 || s->n_label > SIZE_MAX / 32)
    return -ENOMEM;
  size_t need = 1 + s->n_location + 4 * s->n_label;
  int rc = map_labels(c, s);
  if (rc < 0 || (rc = pprof__reserve((void **)&c->key, &c->key_cap, need,
                                     sizeof *c->key)) < 0)
    return rc;
  c->key[0] = (int64_t)s->n_location;
  for (size_t i = 0; i < s->n_location; i++) {
    uint64_t id;
    if ((rc = pprof__interner_location(&c->in, s->location_id[i], &id)) < 0)
      return rc;
    c->key[1 + i] = (int64_t)id;
  }
  int64_t *k = c->key + 1 + s->n_location;
  for (size_t i = 0; i < s->n_label; i++, k += 4) {
    k[0] = c->label[i].key;
    k[1] = c->label[i].str;
    k[2] = c->label[i].num;
    k[3] = c->label[i].num_unit;
  }
  *len = need;
  return 0;
}

static bool all_zero(const int64_t *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (v[i] != 0)
      return false;
  return true;
}

static int merge_sample(merge_ctx *c, const pprof_sample *s, bool negate) {
  pprof_profile *out = c->in.out;
  size_t nv = out->n_sample_type, len, idx;
  bool added;
  int rc = sample_key(c, s, &len);
  if (rc == 0)
    rc = pprof__keytab_intern(&c->samples, c->key, len, &idx, &added);
  if (rc < 0)
    return rc;
  if (added) { /* output sample idx is the key's index: both are dense */
    for (size_t t = 0; t < nv; t++)
      c->value[t] = negate ? pprof__sat_neg(s->value[t]) : s->value[t];
    /* The key's ids are stored signed; same object, unsigned view. */
    return pprof_add_sample(out, (const uint64_t *)(c->key + 1), s->n_location,
                            c->value, c->label, s->n_label);
  }
  int64_t *acc = out->sample[idx].value;
  for (size_t t = 0; t < nv; t++)
    acc[t] = pprof__sat_add(acc[t],
                            negate ? pprof__sat_neg(s->value[t]) : s->value[t]);
  return 0;
}

/* One pass over all inputs. Zero samples in the inputs are skipped, but sums
 * may still cancel to zero; the caller cleans those up. */
static int merge_once(const pprof_profile *const *in, const bool *negate,
                      size_t n, pprof_profile *out) {
  merge_ctx c = {0};
  pprof__u64map seen_comments = {0};
  int rc = -ENOMEM;
  pprof__interner_init(&c.in, out);
  c.value = calloc(in[0]->n_sample_type + 1, sizeof *c.value);
  if (c.value == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    const pprof_profile *src = in[i];
    if ((rc = pprof__interner_begin(&c.in, src)) < 0 ||
        (rc = merge_header(&c, src, i == 0, &seen_comments)) < 0)
      goto done;
    for (size_t j = 0; j < src->n_sample; j++) {
      const pprof_sample *s = &src->sample[j];
      if (all_zero(s->value, src->n_sample_type))
        continue;
      if ((rc = merge_sample(&c, s, negate != NULL && negate[i])) < 0)
        goto done;
    }
  }
  rc = 0;
done:
  pprof__interner_destroy(&c.in);
  pprof__keytab_destroy(&c.samples);
  pprof__u64map_destroy(&seen_comments);
  free(c.key);
  free(c.label);
  free(c.value);
  return rc;
}

static bool has_zero_sample(const pprof_profile *p) {
  for (size_t i = 0; i < p->n_sample; i++)
    if (all_zero(p->sample[i].value, p->n_sample_type))
      return true;
  return false;
}

int pprof__merge_signed(const pprof_profile *const *in, const bool *negate,
                        size_t n, pprof_profile **out, fnp_error *err) {
  if (out == NULL)
    return fnp_fail(err, FNP_EUSAGE, "merge: out is NULL");
  *out = NULL;
  int rc = check_inputs(in, n, err);
  if (rc < 0)
    return rc;
  pprof_profile *p = pprof_profile_new(), *clean = NULL;
  if (p == NULL || (rc = merge_once(in, negate, n, p)) < 0)
    goto fail;
  /* Samples that cancelled leave functions and locations only they used;
   * merging the result once more (skipping zeros) drops both, as pprof's
   * Merge does. */
  if (has_zero_sample(p)) {
    const pprof_profile *again[1] = {p};
    if ((clean = pprof_profile_new()) == NULL ||
        (rc = merge_once(again, NULL, 1, clean)) < 0)
      goto fail;
    pprof_profile_free(p);
    p = clean;
  }
  *out = p;
  return 0;
fail:
  if (rc == 0)
    rc = -ENOMEM;
  pprof_profile_free(p);
  pprof_profile_free(clean);
  return fnp_fail(err, rc, "merge: %s", fnp_strerror(rc));
}

int pprof_merge(const pprof_profile *const *in, size_t n, pprof_profile **out,
                fnp_error *err) {
  return pprof__merge_signed(in, NULL, n, out, err);
}
