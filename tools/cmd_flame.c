/*
 * tools/cmd_flame.c - `fnprof flame` (SVG flame graph) and `fnprof folded`
 * (folded stacks), the two verbs that turn a profile into an artifact for
 * other viewers. Drawing and folding are the pprof library's; this file
 * routes the artifact to -o or stdout, or into --json.
 *
 * With -o FILE the artifact goes to FILE (atomically) and --json prints a
 * summary; without -o, --json embeds the artifact ("svg" string, "stacks"
 * array) so one stdout carries one document.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

typedef struct art_args {
  const char *verb;
  bool flame;
  const char *out;
  const char *title;
  int width_px;
  const char *base;     /* flame --base: draw PROFILE minus BASE */
  cli_profile_opts opt; /* -t, --json, --symbolize */
  const char *path;
} art_args;

static void art_usage(const art_args *a, FILE *out) {
  if (a->flame)
    fprintf(out, "usage: fnprof flame [options] PROFILE\n\n"
                 "A self-contained SVG flame graph (diff profiles: growth "
                 "red,\nshrinkage blue).\n\n"
                 "  -o, --output FILE      write the SVG to FILE (default "
                 "stdout)\n"
                 "      --base BASE        draw PROFILE minus BASE (a "
                 "differential\n"
                 "                         flame graph)\n"
                 "      --title TEXT       graph title\n"
                 "      --width PX         image width (default 1200)\n");
  else
    fprintf(out, "usage: fnprof folded [options] PROFILE\n\n"
                 "Folded stacks, one line per stack: "
                 "\"root;caller;leaf value\"\n(flamegraph.pl, speedscope "
                 "input).\n\n"
                 "  -o, --output FILE      write to FILE (default stdout)\n");
  fputs(CLI_PROFILE_HELP
        "\nWith --json and no -o, the JSON embeds the output.\n",
        out);
}

enum { OPT_TITLE = 256, OPT_WIDTH, OPT_BASE };

/* Shared by both tables; clang-format cannot lay out a brace list inside
 * a macro. */
// clang-format off
#define ART_COMMON_OPTS                                                       \
  {"output", required_argument, NULL, 'o'},                                   \
  CLI_PROFILE_OPTIONS
// clang-format on

/* Two tables so getopt itself rejects flame's options given to folded. */
static const struct option FLAME_OPTS[] = {
    ART_COMMON_OPTS,
    {"title", required_argument, NULL, OPT_TITLE},
    {"width", required_argument, NULL, OPT_WIDTH},
    {"base", required_argument, NULL, OPT_BASE},
    {NULL, 0, NULL, 0}};
static const struct option FOLDED_OPTS[] = {ART_COMMON_OPTS,
                                            {NULL, 0, NULL, 0}};

static int art_parse(int argc, char **argv, art_args *a) {
  const struct option *opts = a->flame ? FLAME_OPTS : FOLDED_OPTS;
  opterr = 0;
  int c, rc;
  size_t width;
  while ((c = getopt_long(argc, argv, ":o:t:h", opts, NULL)) != -1) {
    if (cli_profile_opt(c, optarg, &a->opt))
      continue;
    switch (c) {
    case 'o':
      a->out = optarg;
      break;
    case OPT_TITLE:
      a->title = optarg;
      break;
    case OPT_BASE:
      a->base = optarg;
      break;
    case OPT_WIDTH:
      if ((rc = cli_parse_count(a->verb, "--width", optarg, &width)) != 0)
        return rc;
      if (width == 0 || width > 100000)
        return cli_fail(a->verb, CLI_EXIT_USAGE,
                        "--width wants 1..100000 pixels");
      a->width_px = (int)width;
      break;
    case 'h':
      art_usage(a, stdout);
      return cli_finish(a->verb, CLI_EXIT_OK);
    default:
      return cli_bad_option(a->verb, c, argv);
    }
  }
  if (argc - optind != 1)
    return cli_fail(a->verb, CLI_EXIT_USAGE,
                    "want exactly one PROFILE (see fnprof %s --help)", a->verb);
  a->path = argv[optind];
  return -1;
}

/* Renders the artifact into memory, so a failure leaves no partial file and
 * --json can embed it. *data is NUL-terminated; free() it. */
static int art_render(const art_args *a, const pprof_profile *p, int idx,
                      char **data, size_t *len) {
  FILE *m = open_memstream(data, len);
  if (m == NULL)
    return cli_fail(a->verb, CLI_EXIT_ERROR, "%s", strerror(errno));
  int rc;
  if (a->flame) {
    pprof_flame_opts fo = {.title = a->title, .width_px = a->width_px};
    rc = pprof_write_flame_svg(p, idx, &fo, m);
  } else {
    rc = pprof_write_folded(p, idx, m);
  }
  if (fclose(m) != 0 && rc == 0)
    rc = -errno;
  if (rc < 0) {
    free(*data);
    *data = NULL;
    return cli_fail(a->verb, CLI_EXIT_ERROR, "%s: %s", a->path,
                    fnp_strerror(rc));
  }
  return CLI_EXIT_OK;
}

/* Folded lines ("a;b;c 123") as a JSON array of {stack, value}. */
static void json_folded(FILE *f, char *text) {
  fputc('[', f);
  bool first = true;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    char *sp = strrchr(line, ' ');
    if (sp == NULL)
      continue;
    *sp = '\0';
    fprintf(f, "%s{", first ? "" : ",");
    json_key(f, true, "stack");
    json_string(f, line);
    fprintf(f, ",\"value\":%s}", sp + 1);
    first = false;
  }
  fputc(']', f);
}

static void art_json(const art_args *a, const pprof_profile *p, int idx,
                     char *data) {
  FILE *f = stdout;
  fputc('{', f);
  json_key(f, true, "file");
  json_string(f, a->path);
  fputc(',', f);
  json_sample_type(f, p, idx);
  fprintf(f, ",\"total\":%lld", (long long)cli_total(p, idx));
  json_key(f, false, "output");
  if (a->out) {
    json_string(f, a->out);
  } else {
    fputs("null", f);
    json_key(f, false, a->flame ? "svg" : "stacks");
    if (a->flame)
      json_string(f, data);
    else
      json_folded(f, data);
  }
  fputs("}\n", f);
}

/* Loads PROFILE, or with --base the diff PROFILE minus BASE (which
 * pprof_write_flame_svg colours by sign). Returns an exit code. */
static int art_load(const art_args *a, pprof_profile **out) {
  if (a->base == NULL)
    return cli_load(a->verb, a->path, a->opt.symbolize, out);
  pprof_profile *base = NULL, *cur = NULL;
  fnp_error err = {0};
  int rc;
  if ((rc = cli_load(a->verb, a->base, a->opt.symbolize, &base)) == 0 &&
      (rc = cli_load(a->verb, a->path, a->opt.symbolize, &cur)) == 0 &&
      (rc = pprof_diff(base, cur, out, &err)) < 0)
    rc = cli_fail(a->verb, CLI_EXIT_ERROR, "%s vs %s: %s", a->base, a->path,
                  err.msg[0] ? err.msg : fnp_strerror(rc));
  pprof_profile_free(cur);
  pprof_profile_free(base);
  return rc;
}

static int art_run(int argc, char **argv, art_args *a) {
  int rc = art_parse(argc, argv, a);
  if (rc >= 0)
    return rc;
  pprof_profile *p = NULL;
  char *data = NULL;
  size_t len = 0;
  int idx;
  if ((rc = art_load(a, &p)) != 0 ||
      (rc = cli_sample_index(a->verb, p, a->opt.type, &idx)) != 0 ||
      (rc = art_render(a, p, idx, &data, &len)) != 0)
    goto out;
  if (a->out || !a->opt.json)
    rc = cli_emit(a->verb, a->out, data, len);
  if (rc == CLI_EXIT_OK && a->opt.json)
    art_json(a, p, idx, data);
  rc = cli_finish(a->verb, rc);
out:
  free(data);
  pprof_profile_free(p);
  return rc;
}

int cmd_flame(int argc, char **argv) {
  art_args a = {.verb = "flame", .flame = true};
  return art_run(argc, argv, &a);
}

int cmd_folded(int argc, char **argv) {
  art_args a = {.verb = "folded", .flame = false};
  return art_run(argc, argv, &a);
}
