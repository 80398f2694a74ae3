/*
 * tools/cmd_diff.c - `fnprof diff BASE PROFILE`: what grew and what shrank,
 * by function and by stack, and an exit code that can gate CI. Matching the
 * two profiles (by symbolized stack, as `go tool pprof -base` does) is
 * pprof_diff's job; this file ranks and presents the result.
 *
 * Gate: exit 3 when the net change of the chosen sample type (PROFILE total
 * minus BASE total) exceeds --fail-over. Net, not the largest function's
 * growth, so that moving an allocation from one function to another (a
 * refactor) does not fail a build, while a real increase does.
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>

#define DIFF_DEFAULT_ROWS 10
#define DIFF_TEXT_FRAMES 8 /* stack frames shown per line in text output */

typedef struct diff_args {
  size_t rows;
  cli_profile_opts opt; /* -t, --json, --symbolize */
  bool has_fail_over;
  int64_t fail_over;
  const char *base_path;
  const char *path;
} diff_args;

/* What the report is made of; all borrowed from the diff profile. */
typedef struct diff_report {
  const pprof_profile *d; /* cur minus base */
  int idx;
  int64_t base_total, total;
  pprof_top_entry *fn; /* per function, largest |flat| first */
  size_t n_fn;
  struct ranked {
    int64_t v;
    size_t sample;
  } * stacks; /* grew desc, then
                 shrank asc */
  size_t n_grew, n_shrank;
} diff_report;

static void diff_usage(FILE *out) {
  fprintf(
      out,
      "usage: fnprof diff [options] BASE PROFILE\n\n"
      "What grew and what shrank from BASE to PROFILE, by function and "
      "by\nstack (PROFILE minus BASE, matched by symbolized stack like "
      "go tool\npprof -base, so profiles of two processes compare).\n\n"
      "  -n, --nodes N          rows per list (default %d, 0 = all)\n"
      "      --fail-over SIZE   exit 3 when the net change (PROFILE total "
      "-\n"
      "                         BASE total) exceeds SIZE: 10MiB, 512k, "
      "4096\n"
      "                         (in the sample type's unit)\n" CLI_PROFILE_HELP
      "\nexit status: 0 ok, 1 error, 2 usage, 3 over --fail-over\n",
      DIFF_DEFAULT_ROWS);
}

static int diff_parse(int argc, char **argv, diff_args *a) {
  enum { OPT_FAIL_OVER = 256 };
  static const struct option opts[] = {
      {"nodes", required_argument, NULL, 'n'},
      {"fail-over", required_argument, NULL, OPT_FAIL_OVER},
      CLI_PROFILE_OPTIONS,
      {NULL, 0, NULL, 0}};
  *a = (diff_args){.rows = DIFF_DEFAULT_ROWS};
  opterr = 0;
  int c, rc;
  while ((c = getopt_long(argc, argv, ":n:t:h", opts, NULL)) != -1) {
    if (cli_profile_opt(c, optarg, &a->opt))
      continue;
    switch (c) {
    case 'n':
      if ((rc = cli_parse_count("diff", "-n", optarg, &a->rows)) != 0)
        return rc;
      break;
    case OPT_FAIL_OVER:
      if (fnp_parse_bytes(optarg, &a->fail_over) != 0 || a->fail_over < 0)
        return cli_fail("diff", CLI_EXIT_USAGE,
                        "--fail-over wants a size like 10MiB, not '%s'",
                        optarg);
      a->has_fail_over = true;
      break;
    case 'h':
      diff_usage(stdout);
      return cli_finish("diff", CLI_EXIT_OK);
    default:
      return cli_bad_option("diff", c, argv);
    }
  }
  if (argc - optind != 2)
    return cli_fail("diff", CLI_EXIT_USAGE,
                    "want BASE and PROFILE (see fnprof diff --help)");
  a->base_path = argv[optind];
  a->path = argv[optind + 1];
  return -1;
}

static int by_value_desc(const void *x, const void *y) {
  const struct ranked *a = x, *b = y;
  return a->v < b->v ? 1 : a->v > b->v ? -1 : 0;
}

/* Ranks the diff's samples: growth, largest first, then shrinkage, most
 * negative first. Zero samples are not listed. */
static int rank_stacks(diff_report *r) {
  const pprof_profile *d = r->d;
  r->stacks = malloc((d->n_sample ? d->n_sample : 1) * sizeof *r->stacks);
  if (r->stacks == NULL)
    return -1;
  size_t n = 0;
  for (size_t i = 0; i < d->n_sample; i++) {
    int64_t v = d->sample[i].value[r->idx];
    if (v != 0)
      r->stacks[n++] = (struct ranked){v, i};
  }
  qsort(r->stacks, n, sizeof *r->stacks, by_value_desc);
  r->n_grew = 0;
  while (r->n_grew < n && r->stacks[r->n_grew].v > 0)
    r->n_grew++;
  r->n_shrank = n - r->n_grew;
  /* Shrinkage is at the end in ascending magnitude; reverse it so the
   * biggest loss comes first. */
  for (size_t i = 0; i < r->n_shrank / 2; i++) {
    struct ranked t = r->stacks[r->n_grew + i];
    r->stacks[r->n_grew + i] = r->stacks[n - 1 - i];
    r->stacks[n - 1 - i] = t;
  }
  return 0;
}

/* Calls fn for each frame of sample s, leaf first (inlined callees before
 * their callers). */
static void each_frame(const pprof_profile *d, const pprof_sample *s,
                       void (*fn)(const char *name, size_t i, void *ctx),
                       void *ctx) {
  char buf[64];
  size_t k = 0;
  for (size_t i = 0; i < s->n_location; i++) {
    const pprof_location *l = pprof_find_location(d, s->location_id[i]);
    if (l == NULL)
      continue;
    if (l->n_line == 0) {
      snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)l->address);
      fn(buf, k++, ctx);
      continue;
    }
    for (size_t j = 0; j < l->n_line; j++)
      fn(pprof_frame_name(d, l, j, buf, sizeof buf), k++, ctx);
  }
}

static void text_frame(const char *name, size_t i, void *ctx) {
  (void)ctx;
  if (i < DIFF_TEXT_FRAMES)
    printf("%s%s", i ? " < " : "", name);
  else if (i == DIFF_TEXT_FRAMES)
    printf(" < ...");
}

static void json_frame(const char *name, size_t i, void *ctx) {
  FILE *f = ctx;
  if (i)
    fputc(',', f);
  json_string(f, name);
}

static size_t limit(size_t n, size_t rows) {
  return rows == 0 || rows > n ? n : rows;
}

static void text_functions(const diff_report *r, const diff_args *a,
                           bool grew) {
  char v[64];
  size_t shown = 0;
  printf("%s (functions, flat):\n", grew ? "Grew" : "Shrank");
  for (size_t i = 0; i < r->n_fn && (a->rows == 0 || shown < a->rows); i++) {
    int64_t f = r->fn[i].flat;
    if (grew ? f <= 0 : f >= 0)
      continue;
    cli_format_value(r->d, r->idx, f, true, v, sizeof v);
    printf("  %12s  %s\n", v, r->fn[i].name);
    shown++;
  }
  if (shown == 0)
    printf("  (none)\n");
}

static void text_stacks(const diff_report *r, const diff_args *a, bool grew) {
  const struct ranked *s = grew ? r->stacks : r->stacks + r->n_grew;
  size_t n = limit(grew ? r->n_grew : r->n_shrank, a->rows);
  char v[64];
  printf("%s (stacks, leaf first):\n", grew ? "Grew" : "Shrank");
  for (size_t i = 0; i < n; i++) {
    cli_format_value(r->d, r->idx, s[i].v, true, v, sizeof v);
    printf("  %12s  ", v);
    each_frame(r->d, &r->d->sample[s[i].sample], text_frame, NULL);
    putchar('\n');
  }
  if (n == 0)
    printf("  (none)\n");
}

static void diff_text(const diff_report *r, const diff_args *a) {
  char b[64], c[64], d[64];
  cli_format_value(r->d, r->idx, r->base_total, false, b, sizeof b);
  cli_format_value(r->d, r->idx, r->total, false, c, sizeof c);
  cli_format_value(r->d, r->idx, r->total - r->base_total, true, d, sizeof d);
  printf("Type: %s\nBase: %s (%s)\nProfile: %s (%s)\nChange: %s\n\n",
         pprof_str(r->d, r->d->sample_type[r->idx].type), a->base_path, b,
         a->path, c, d);
  text_functions(r, a, true);
  text_functions(r, a, false);
  putchar('\n');
  text_stacks(r, a, true);
  text_stacks(r, a, false);
}

static void json_functions(const diff_report *r, const diff_args *a,
                           bool grew) {
  FILE *f = stdout;
  size_t shown = 0;
  fputc('[', f);
  for (size_t i = 0; i < r->n_fn && (a->rows == 0 || shown < a->rows); i++) {
    if (grew ? r->fn[i].flat <= 0 : r->fn[i].flat >= 0)
      continue;
    fprintf(f, "%s{", shown++ ? "," : "");
    json_key(f, true, "name");
    json_string(f, r->fn[i].name);
    fprintf(f, ",\"delta\":%lld,\"cum_delta\":%lld}", (long long)r->fn[i].flat,
            (long long)r->fn[i].cum);
  }
  fputc(']', f);
}

static void json_stacks(const diff_report *r, const diff_args *a, bool grew) {
  FILE *f = stdout;
  const struct ranked *s = grew ? r->stacks : r->stacks + r->n_grew;
  size_t n = limit(grew ? r->n_grew : r->n_shrank, a->rows);
  fputc('[', f);
  for (size_t i = 0; i < n; i++) {
    fprintf(f, "%s{\"delta\":%lld,\"frames\":[", i ? "," : "",
            (long long)s[i].v);
    each_frame(r->d, &r->d->sample[s[i].sample], json_frame, f);
    fputs("]}", f);
  }
  fputc(']', f);
}

static void diff_json(const diff_report *r, const diff_args *a, bool over) {
  FILE *f = stdout;
  fputc('{', f);
  json_key(f, true, "base");
  json_string(f, a->base_path);
  json_key(f, false, "profile");
  json_string(f, a->path);
  fputc(',', f);
  json_sample_type(f, r->d, r->idx);
  fprintf(f, ",\"base_total\":%lld,\"total\":%lld,\"delta\":%lld",
          (long long)r->base_total, (long long)r->total,
          (long long)(r->total - r->base_total));
  json_key(f, false, "fail_over");
  if (a->has_fail_over)
    fprintf(f, "%lld", (long long)a->fail_over);
  else
    fputs("null", f);
  fprintf(f, ",\"over\":%s", over ? "true" : "false");
  json_key(f, false, "grew");
  json_functions(r, a, true);
  json_key(f, false, "shrank");
  json_functions(r, a, false);
  json_key(f, false, "grew_stacks");
  json_stacks(r, a, true);
  json_key(f, false, "shrank_stacks");
  json_stacks(r, a, false);
  fputs("}\n", f);
}

/* Builds the report from the two loaded profiles. Returns an exit code. */
static int diff_build(const pprof_profile *base, const pprof_profile *cur,
                      const diff_args *a, pprof_profile **d, diff_report *r) {
  fnp_error err = {0};
  int idx, rc;
  if ((rc = cli_sample_index("diff", cur, a->opt.type, &idx)) != 0)
    return rc;
  rc = pprof_diff(base, cur, d, &err);
  if (rc < 0)
    return cli_fail("diff", CLI_EXIT_ERROR, "%s vs %s: %s", a->base_path,
                    a->path, err.msg[0] ? err.msg : fnp_strerror(rc));
  *r = (diff_report){.d = *d, .idx = idx};
  r->base_total = cli_total(base, idx);
  r->total = cli_total(cur, idx);
  int64_t ignored;
  rc = pprof_top(*d, idx, PPROF_SORT_FLAT, &r->fn, &r->n_fn, &ignored);
  if (rc < 0)
    return cli_fail("diff", CLI_EXIT_ERROR, "ranking functions: %s",
                    fnp_strerror(rc));
  if (rank_stacks(r) < 0)
    return cli_fail("diff", CLI_EXIT_ERROR, "out of memory");
  return CLI_EXIT_OK;
}

int cmd_diff(int argc, char **argv) {
  diff_args a;
  int rc = diff_parse(argc, argv, &a);
  if (rc >= 0)
    return rc;
  pprof_profile *base = NULL, *cur = NULL, *d = NULL;
  diff_report r = {0};
  if ((rc = cli_load("diff", a.base_path, a.opt.symbolize, &base)) != 0 ||
      (rc = cli_load("diff", a.path, a.opt.symbolize, &cur)) != 0 ||
      (rc = diff_build(base, cur, &a, &d, &r)) != 0)
    goto out;
  int64_t delta = r.total - r.base_total;
  bool over = a.has_fail_over && delta > a.fail_over;
  if (a.opt.json)
    diff_json(&r, &a, over);
  else
    diff_text(&r, &a);
  rc = cli_finish("diff", CLI_EXIT_OK);
  if (rc == CLI_EXIT_OK && over) {
    char v[64], t[64];
    cli_format_value(cur, r.idx, delta, true, v, sizeof v);
    cli_format_value(cur, r.idx, a.fail_over, false, t, sizeof t);
    rc = cli_fail("diff", CLI_EXIT_OVER, "%s grew by %s, over --fail-over %s",
                  pprof_str(cur, cur->sample_type[r.idx].type), v, t);
  }
out:
  free(r.fn);
  free(r.stacks);
  pprof_profile_free(d);
  pprof_profile_free(cur);
  pprof_profile_free(base);
  return rc;
}
