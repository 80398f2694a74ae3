/*
 * tools/cmd_top.c - `fnprof top`: per-function flat and cumulative values of
 * one sample type, laid out like `go tool pprof -top` so the two can be read
 * side by side. The numbers come from pprof_top; this file only presents.
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>

#define TOP_DEFAULT_ROWS 20 /* a screenful; -n 0 shows every function */

typedef struct top_args {
  size_t rows;
  pprof_sort sort;
  cli_profile_opts opt; /* -t, --json, --symbolize */
  const char *path;     /* the first PROFILE */
  char *const *paths;   /* all of them, merged */
  size_t n_paths;
} top_args;

static void top_usage(FILE *out) {
  fprintf(
      out,
      "usage: fnprof top [options] PROFILE...\n\n"
      "Functions by flat value (the function itself allocated) or\n"
      "cumulative value (it or its callees did), like go tool pprof "
      "-top.\n"
      "Several PROFILEs of one kind are merged first, as pprof does.\n\n"
      "  -n, --nodes N          rows to show (default %d, 0 = all)\n"
      "      --cum              sort by cumulative value\n" CLI_PROFILE_HELP,
      TOP_DEFAULT_ROWS);
}

/* Returns -1 to go on, else the exit code to return (after --help, or on a
 * usage error). */
static int top_parse(int argc, char **argv, top_args *a) {
  enum { OPT_CUM = 256 };
  static const struct option opts[] = {{"nodes", required_argument, NULL, 'n'},
                                       {"cum", no_argument, NULL, OPT_CUM},
                                       CLI_PROFILE_OPTIONS,
                                       {NULL, 0, NULL, 0}};
  *a = (top_args){.rows = TOP_DEFAULT_ROWS, .sort = PPROF_SORT_FLAT};
  opterr = 0;
  int c, rc;
  while ((c = getopt_long(argc, argv, ":n:t:h", opts, NULL)) != -1) {
    if (cli_profile_opt(c, optarg, &a->opt))
      continue;
    switch (c) {
    case 'n':
      if ((rc = cli_parse_count("top", "-n", optarg, &a->rows)) != 0)
        return rc;
      break;
    case OPT_CUM:
      a->sort = PPROF_SORT_CUM;
      break;
    case 'h':
      top_usage(stdout);
      return cli_finish("top", CLI_EXIT_OK);
    default:
      return cli_bad_option("top", c, argv);
    }
  }
  if (argc - optind < 1)
    return cli_fail("top", CLI_EXIT_USAGE,
                    "want a PROFILE (see fnprof top --help)");
  a->path = argv[optind];
  a->paths = argv + optind;
  a->n_paths = (size_t)(argc - optind);
  return -1;
}

static double pct(int64_t v, int64_t total) {
  return total != 0 ? (double)v * 100.0 / (double)total : 0.0;
}

static void top_text(const pprof_profile *p, int idx, const top_args *a,
                     const pprof_top_entry *e, size_t n, size_t shown,
                     int64_t total) {
  char v1[64], v2[64], p1[32], p2[32], p3[32];
  int64_t shown_flat = 0;
  for (size_t i = 0; i < shown; i++)
    shown_flat += e[i].flat;
  cli_format_value(p, idx, shown_flat, false, v1, sizeof v1);
  cli_format_value(p, idx, total, false, v2, sizeof v2);
  cli_format_percent(shown_flat, total, p1, sizeof p1);
  if (a->n_paths > 1)
    printf("File: %s (and %zu more, merged)\n", a->path, a->n_paths - 1);
  else
    printf("File: %s\n", a->path);
  printf("Type: %s\n", pprof_str(p, p->sample_type[idx].type));
  printf("Showing nodes accounting for %s, %s of %s total\n", v1, p1, v2);
  if (shown < n)
    printf("Showing top %zu nodes out of %zu\n", shown, n);
  printf("%10s %7s %7s %10s %7s  %s\n", "flat", "flat%", "sum%", "cum", "cum%",
         "name");
  int64_t sum = 0;
  for (size_t i = 0; i < shown; i++) {
    sum += e[i].flat;
    cli_format_value(p, idx, e[i].flat, false, v1, sizeof v1);
    cli_format_value(p, idx, e[i].cum, false, v2, sizeof v2);
    cli_format_percent(e[i].flat, total, p1, sizeof p1);
    cli_format_percent(sum, total, p2, sizeof p2);
    cli_format_percent(e[i].cum, total, p3, sizeof p3);
    printf("%10s %7s %7s %10s %7s  %s\n", v1, p1, p2, v2, p3, e[i].name);
  }
}

static void top_json(const pprof_profile *p, int idx, const top_args *a,
                     const pprof_top_entry *e, size_t n, size_t shown,
                     int64_t total) {
  FILE *f = stdout;
  fputc('{', f);
  json_key(f, true, "file");
  json_string(f, a->path);
  fputc(',', f);
  json_sample_type(f, p, idx);
  json_key(f, false, "sort");
  json_string(f, a->sort == PPROF_SORT_CUM ? "cum" : "flat");
  json_key(f, false, "total");
  fprintf(f, "%lld", (long long)total);
  json_key(f, false, "functions");
  fprintf(f, "%zu", n);
  /* Every type's total, so one call answers "what does this profile hold". */
  json_key(f, false, "totals");
  fputc('{', f);
  for (size_t t = 0; t < p->n_sample_type; t++) {
    json_key(f, t == 0, pprof_str(p, p->sample_type[t].type));
    fprintf(f, "%lld", (long long)cli_total(p, (int)t));
  }
  fputc('}', f);
  json_key(f, false, "entries");
  fputc('[', f);
  int64_t sum = 0;
  for (size_t i = 0; i < shown; i++) {
    sum += e[i].flat;
    fprintf(f, "%s{", i ? "," : "");
    json_key(f, true, "name");
    json_string(f, e[i].name);
    fprintf(f,
            ",\"flat\":%lld,\"flat_pct\":%.2f,\"sum_pct\":%.2f,"
            "\"cum\":%lld,\"cum_pct\":%.2f}",
            (long long)e[i].flat, pct(e[i].flat, total), pct(sum, total),
            (long long)e[i].cum, pct(e[i].cum, total));
  }
  fputs("]}\n", f);
}

int cmd_top(int argc, char **argv) {
  top_args a;
  int rc = top_parse(argc, argv, &a);
  if (rc >= 0)
    return rc;
  pprof_profile *p = NULL;
  if ((rc = cli_load_merged("top", a.paths, a.n_paths, a.opt.symbolize, &p)) !=
      0)
    return rc;
  int idx;
  pprof_top_entry *e = NULL;
  size_t n = 0;
  int64_t total = 0;
  if ((rc = cli_sample_index("top", p, a.opt.type, &idx)) != 0)
    goto out;
  int err = pprof_top(p, idx, a.sort, &e, &n, &total);
  if (err < 0) {
    rc = cli_fail("top", CLI_EXIT_ERROR, "%s: %s", a.path, fnp_strerror(err));
    goto out;
  }
  size_t shown = a.rows == 0 || a.rows > n ? n : a.rows;
  if (a.opt.json)
    top_json(p, idx, &a, e, n, shown, total);
  else
    top_text(p, idx, &a, e, n, shown, total);
  rc = cli_finish("top", CLI_EXIT_OK);
out:
  free(e);
  pprof_profile_free(p);
  return rc;
}
