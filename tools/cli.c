/*
 * tools/cli.c - helpers every fnprof verb uses: one error format, loading
 * and symbolizing a profile, sample type selection and unit formatting.
 * Verbs decide what to print; this file decides how errors and values look.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *verb, int exit_code, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "fnprof %s: ", verb);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return exit_code;
}

int cli_bad_option(const char *verb, int c, char *const argv[]) {
  /* optind already points past the offending word. */
  const char *word = optind > 0 ? argv[optind - 1] : "?";
  if (c == ':')
    return cli_fail(verb, CLI_EXIT_USAGE,
                    "option '%s' needs a value (see "
                    "fnprof %s --help)",
                    word, verb);
  if (optopt != 0 && optopt != '?')
    return cli_fail(verb, CLI_EXIT_USAGE,
                    "unknown option '-%c' (see fnprof "
                    "%s --help)",
                    optopt, verb);
  return cli_fail(verb, CLI_EXIT_USAGE,
                  "unknown option '%s' (see fnprof %s "
                  "--help)",
                  word, verb);
}

int cli_parse_count(const char *verb, const char *opt, const char *s,
                    size_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v < 0)
    return cli_fail(verb, CLI_EXIT_USAGE,
                    "%s wants a non-negative number, not '%s'", opt, s);
  *out = (size_t)v;
  return CLI_EXIT_OK;
}

/* Reports a library failure about path. File errors already name the path
 * and decode errors do not; say it exactly once either way. */
static int fail_file(const char *verb, const char *path, const char *what,
                     const fnp_error *err, int rc) {
  const char *msg = err->msg[0] ? err->msg : fnp_strerror(rc);
  size_t n = strlen(path);
  if (strncmp(msg, path, n) == 0 && msg[n] == ':')
    return cli_fail(verb, CLI_EXIT_ERROR, "%s%s", what, msg);
  return cli_fail(verb, CLI_EXIT_ERROR, "%s: %s%s", path, what, msg);
}

bool cli_profile_opt(int c, const char *arg, cli_profile_opts *o) {
  switch (c) {
  case 't':
    o->type = arg;
    return true;
  case CLI_OPT_JSON:
    o->json = true;
    return true;
  case CLI_OPT_SYMBOLIZE:
    o->symbolize = true;
    return true;
  default:
    return false;
  }
}

int cli_load(const char *verb, const char *path, bool symbolize,
             pprof_profile **out) {
  fnp_error err = {0};
  pprof_profile *p = NULL;
  int rc = pprof_read_file(path, NULL, &p, &err);
  if (rc < 0)
    return fail_file(verb, path, "", &err, rc);
  if (symbolize) {
    /* pid 0: resolve from the mappings' files (checked by build id), the
     * only source left once the profiled process is gone. */
    pprof_symbolize_opts opts = {.pid = 0, .force = false};
    size_t resolved = 0, unresolved = 0;
    rc = pprof_symbolize(p, &opts, &resolved, &unresolved, &err);
    if (rc < 0) {
      pprof_profile_free(p);
      return fail_file(verb, path, "symbolizing: ", &err, rc);
    }
  }
  *out = p;
  return CLI_EXIT_OK;
}

int cli_load_merged(const char *verb, char *const paths[], size_t n,
                    bool symbolize, pprof_profile **out) {
  if (n == 1)
    return cli_load(verb, paths[0], symbolize, out);
  pprof_profile **in = calloc(n, sizeof *in);
  if (in == NULL)
    return cli_fail(verb, CLI_EXIT_ERROR, "out of memory");
  int rc = CLI_EXIT_OK;
  size_t loaded = 0;
  for (; loaded < n && rc == CLI_EXIT_OK; loaded++)
    rc = cli_load(verb, paths[loaded], symbolize, &in[loaded]);
  if (rc == CLI_EXIT_OK) {
    fnp_error err = {0};
    int mrc = pprof_merge((const pprof_profile *const *)in, n, out, &err);
    if (mrc < 0)
      rc = cli_fail(verb, CLI_EXIT_ERROR, "merging %zu profiles: %s", n,
                    err.msg[0] ? err.msg : fnp_strerror(mrc));
  }
  for (size_t i = 0; i < loaded; i++)
    pprof_profile_free(in[i]);
  free(in);
  return rc;
}

int cli_sample_index(const char *verb, const pprof_profile *p, const char *type,
                     int *index) {
  int i = pprof_sample_type_index(p, type);
  if (i >= 0) {
    *index = i;
    return CLI_EXIT_OK;
  }
  if (type == NULL)
    return cli_fail(verb, CLI_EXIT_ERROR, "profile has no sample types");
  /* Name the choices: the user cannot see them without another tool. */
  fprintf(stderr, "fnprof %s: no sample type '%s'; this profile has:", verb,
          type);
  for (size_t k = 0; k < p->n_sample_type; k++)
    fprintf(stderr, " %s", pprof_str(p, p->sample_type[k].type));
  fputc('\n', stderr);
  return CLI_EXIT_USAGE;
}

int64_t cli_total(const pprof_profile *p, int index) {
  int64_t total = 0;
  for (size_t i = 0; i < p->n_sample; i++)
    total += p->sample[i].value[index];
  return total;
}

void cli_format_value(const pprof_profile *p, int index, int64_t v, bool sign,
                      char *buf, size_t len) {
  const char *unit = pprof_str(p, p->sample_type[index].unit);
  const char *plus = sign && v > 0 ? "+" : "";
  char num[64];
  if (v == 0) /* "0", not "0B": a unitless zero reads cleaner, as in pprof */
    snprintf(num, sizeof num, "0");
  else if (strcmp(unit, "bytes") == 0)
    fnp_format_bytes(v, num, sizeof num);
  else
    snprintf(num, sizeof num, "%lld", (long long)v);
  snprintf(buf, len, "%s%s", plus, num);
}

void cli_format_percent(int64_t v, int64_t total, char *buf, size_t len) {
  double ratio = total != 0 ? fabs((double)v / (double)total) * 100.0 : 0.0;
  /* Same thresholds as pprof's report.percentage, so columns line up with
   * what people already read. */
  if (ratio >= 99.95 && ratio <= 100.05)
    snprintf(buf, len, "100%%");
  else if (ratio == 0)
    snprintf(buf, len, "0%%");
  else if (ratio >= 1.0)
    snprintf(buf, len, "%.2f%%", ratio);
  else
    snprintf(buf, len, "%.2g%%", ratio);
}

int cli_emit(const char *verb, const char *path, const void *data, size_t len) {
  if (path == NULL || strcmp(path, "-") == 0) {
    if (fwrite(data, 1, len, stdout) != len)
      return cli_fail(verb, CLI_EXIT_ERROR, "writing stdout: %s",
                      strerror(errno));
    return CLI_EXIT_OK;
  }
  fnp_error err = {0};
  int rc = fnp_write_file(path, data, len, &err);
  if (rc < 0)
    return fail_file(verb, path, "", &err, rc);
  return CLI_EXIT_OK;
}

int cli_finish(const char *verb, int exit_code) {
  if (fflush(stdout) != 0 || ferror(stdout))
    return cli_fail(verb, CLI_EXIT_ERROR, "writing stdout: %s",
                    strerror(errno));
  return exit_code;
}
