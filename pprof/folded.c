/*
 * pprof_write_folded: Brendan Gregg's folded stacks ("root;caller;leaf N"),
 * the input of flamegraph.pl, speedscope and friends. Equal name stacks are
 * added up; lines are sorted by their text so output is reproducible. Frame
 * names come from stacks.c.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The lines are built in memory to sort them; this caps what a hostile
 * profile can make us allocate. */
#define FOLDED_MAX_BYTES ((size_t)1 << 30)

typedef struct folded_line {
  size_t off;    /* into the text buffer, which may still move */
  const char *s; /* set once the buffer is complete, for sorting */
  int64_t value;
} folded_line;

typedef struct stack_sums {
  pprof__keytab stacks; /* name ids, leaf first -> dense index */
  int64_t *value;       /* per stack */
  size_t value_cap;
} stack_sums;

/* Adds v to the stack with frames fr (leaf first); an empty stack counts as
 * one "[unknown]" frame so its value is not lost. */
static int add_stack(stack_sums *sums, const pprof__idvec *fr, int64_t v,
                     int64_t **key, size_t *key_cap) {
  size_t n = fr->n ? fr->n : 1, idx;
  bool added;
  if (pprof__reserve((void **)key, key_cap, n, sizeof **key) < 0)
    return -ENOMEM;
  for (size_t k = 0; k < fr->n; k++)
    (*key)[k] = fr->v[k];
  if (fr->n == 0)
    (*key)[0] = PPROF__UNKNOWN_FRAME;
  int rc = pprof__keytab_intern(&sums->stacks, *key, n, &idx, &added);
  if (rc < 0)
    return rc;
  if (added) {
    if (pprof__reserve((void **)&sums->value, &sums->value_cap, idx + 1,
                       sizeof *sums->value) < 0)
      return -ENOMEM;
    sums->value[idx] = 0;
  }
  sums->value[idx] = pprof__sat_add(sums->value[idx], v);
  return 0;
}

static int sum_stacks(const pprof__frame_names *f, int si, stack_sums *sums) {
  pprof__idvec fr = {0};
  int64_t *key = NULL;
  size_t key_cap = 0;
  int rc = 0;
  for (size_t i = 0; i < f->p->n_sample && rc == 0; i++) {
    int64_t v = f->p->sample[i].value[si];
    if (v == 0)
      continue;
    rc = pprof__sample_names(f, &f->p->sample[i], &fr);
    if (rc == 0)
      rc = add_stack(sums, &fr, v, &key, &key_cap);
  }
  free(fr.v);
  free(key);
  return rc;
}

/* Appends a frame name; ';' separates frames and a newline ends a line, so
 * both are replaced to keep every stack on one parseable line. */
static int append_name(fnp_buf *b, const char *name) {
  size_t len = strlen(name);
  int rc = fnp_buf_reserve(b, len);
  if (rc < 0)
    return rc;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    b->data[b->len++] = (c == ';' || c == '\n' || c == '\r') ? '_' : c;
  }
  return 0;
}

/* Writes stack idx root first, NUL-terminated, into b. */
static int stack_text(const pprof__frame_names *f, const stack_sums *sums,
                      size_t idx, fnp_buf *b) {
  size_t n;
  const int64_t *key = pprof__keytab_key(&sums->stacks, idx, &n);
  int rc = 0;
  for (size_t k = n; k-- > 0 && rc == 0;) {
    rc = append_name(b, pprof__frame_name_str(f, (uint32_t)key[k]));
    if (rc == 0)
      rc = fnp_buf_append(b, k ? ";" : "", 1); /* separator, or the NUL */
  }
  return rc;
}

static int build_lines(const pprof__frame_names *f, const stack_sums *sums,
                       fnp_buf *text, folded_line **lines, size_t *n_lines) {
  size_t n = 0;
  *lines = calloc(sums->stacks.n ? sums->stacks.n : 1, sizeof **lines);
  if (*lines == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < sums->stacks.n; i++) {
    if (sums->value[i] == 0)
      continue; /* cancelled out (a diff profile) */
    (*lines)[n] = (folded_line){text->len, NULL, sums->value[i]};
    int rc = stack_text(f, sums, i, text);
    if (rc < 0)
      return rc;
    n++;
  }
  for (size_t i = 0; i < n; i++)
    (*lines)[i].s = (const char *)text->data + (*lines)[i].off;
  *n_lines = n;
  return 0;
}

static int line_cmp(const void *a, const void *b) {
  return strcmp(((const folded_line *)a)->s, ((const folded_line *)b)->s);
}

static int write_lines(const folded_line *lines, size_t n, FILE *out) {
  for (size_t i = 0; i < n; i++)
    fprintf(out, "%s %lld\n", lines[i].s, (long long)lines[i].value);
  return pprof__flush(out);
}

int pprof_write_folded(const pprof_profile *p, int sample_index, FILE *out) {
  if (p == NULL || out == NULL || sample_index < 0 ||
      (size_t)sample_index >= p->n_sample_type)
    return FNP_EUSAGE;
  pprof__frame_names f;
  stack_sums sums = {0};
  fnp_buf text;
  folded_line *lines = NULL;
  size_t n_lines = 0;
  fnp_buf_init(&text, FOLDED_MAX_BYTES);
  int rc = pprof__frame_names_init(&f, p);
  if (rc < 0)
    return rc;
  if ((rc = sum_stacks(&f, sample_index, &sums)) < 0 ||
      (rc = build_lines(&f, &sums, &text, &lines, &n_lines)) < 0)
    goto done;
  qsort(lines, n_lines, sizeof *lines, line_cmp);
  rc = write_lines(lines, n_lines, out);
done:
  free(lines);
  fnp_buf_destroy(&text);
  pprof__keytab_destroy(&sums.stacks);
  free(sums.value);
  pprof__frame_names_destroy(&f);
  return rc;
}
