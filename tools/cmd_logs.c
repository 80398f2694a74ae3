/*
 * tools/cmd_logs.c - `fnprof logs`, `metrics`, `profiles` and `spikes`: ask
 * a running fnprof-collector's query API and print one line per record,
 * point, profile or spike (or, with --json, the API's document as is).
 * HTTP, time arguments and JSON reading are cmd_query.c's.
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* What every query verb accepts; verbs use the fields they need. */
typedef struct qargs {
  const char *url, *logstore, *instance, *request_id, *text, *kind, *out;
  int64_t from_ns, to_ns;
  size_t limit;
  bool json;
  int npos;
  char *pos[2]; /* positional arguments */
} qargs;

enum {
  OPT_URL = 256,
  OPT_LOGSTORE,
  OPT_INSTANCE,
  OPT_REQUEST,
  OPT_FROM,
  OPT_TO,
  OPT_LIMIT,
  OPT_KIND,
  OPT_JSON
};

static const char COMMON_HELP[] =
    "      --from T           from time T (inclusive)\n"
    "      --to T             to time T (exclusive); T is Unix ns, a "
    "duration\n"
    "                         ago (30s, 15m, 2h, 1d), 'now' or\n"
    "                         YYYY-MM-DDTHH:MM:SSZ\n"
    "      --limit N          at most N (default 100, at most 10000)\n"
    "      --url URL          the collector (default $FNPROF_COLLECTOR_URL, "
    "else\n"
    "                         http://127.0.0.1:4380); reads from another "
    "host\n"
    "                         send Bearer $FNPROF_ACCESS_KEY_ID:"
    "$FNPROF_ACCESS_KEY_SECRET\n"
    "      --json             the collector's JSON answer, unchanged\n"
    "  -h, --help             this help\n";

/* Parses argv; returns -1 to go on, else an exit code. */
static int parse(const char *verb, void (*usage)(FILE *), int max_pos, int argc,
                 char **argv, qargs *a) {
  static const struct option opts[] = {
      {"url", required_argument, NULL, OPT_URL},
      {"logstore", required_argument, NULL, OPT_LOGSTORE},
      {"instance", required_argument, NULL, OPT_INSTANCE},
      {"request-id", required_argument, NULL, OPT_REQUEST},
      {"from", required_argument, NULL, OPT_FROM},
      {"to", required_argument, NULL, OPT_TO},
      {"limit", required_argument, NULL, OPT_LIMIT},
      {"kind", required_argument, NULL, OPT_KIND},
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  *a = (qargs){0};
  opterr = 0;
  optind = 1;
  int c, rc;
  while ((c = getopt_long(argc, argv, ":q:o:h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_URL:
      a->url = optarg;
      break;
    case OPT_LOGSTORE:
      a->logstore = optarg;
      break;
    case OPT_INSTANCE:
      a->instance = optarg;
      break;
    case OPT_REQUEST:
      a->request_id = optarg;
      break;
    case OPT_KIND:
      a->kind = optarg;
      break;
    case 'q':
      a->text = optarg;
      break;
    case 'o':
      a->out = optarg;
      break;
    case OPT_JSON:
      a->json = true;
      break;
    case OPT_FROM:
      if ((rc = query_parse_time(verb, "--from", optarg, &a->from_ns)) != 0)
        return rc;
      break;
    case OPT_TO:
      if ((rc = query_parse_time(verb, "--to", optarg, &a->to_ns)) != 0)
        return rc;
      break;
    case OPT_LIMIT:
      if ((rc = cli_parse_count(verb, "--limit", optarg, &a->limit)) != 0)
        return rc;
      break;
    case 'h':
      usage(stdout);
      return cli_finish(verb, CLI_EXIT_OK);
    default:
      return cli_bad_option(verb, c, argv);
    }
  }
  for (; optind < argc; optind++) {
    if (a->npos == max_pos)
      return cli_fail(verb, CLI_EXIT_USAGE,
                      "unexpected argument '%s' (see fnprof %s --help)",
                      argv[optind], verb);
    a->pos[a->npos++] = argv[optind];
  }
  return -1;
}

/* Rejects options the verb does not take, so a typo'd filter never passes
 * silently as "everything". */
static int refuse(const char *verb, const qargs *a, const char *allowed) {
  static const struct {
    const char *name;
    size_t off;
  } opt[] = {{"--logstore", offsetof(qargs, logstore)},
             {"--instance", offsetof(qargs, instance)},
             {"--request-id", offsetof(qargs, request_id)},
             {"-q", offsetof(qargs, text)},
             {"--kind", offsetof(qargs, kind)},
             {"-o", offsetof(qargs, out)}};
  for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
    const char *v = *(const char *const *)((const char *)a + opt[i].off);
    if (v && strstr(allowed, opt[i].name) == NULL)
      return cli_fail(verb, CLI_EXIT_USAGE,
                      "%s does not apply here (see fnprof %s --help)",
                      opt[i].name, verb);
  }
  return -1;
}

static void add_common(query_url *u, const qargs *a) {
  if (a->from_ns)
    query_param_num(u, "from", a->from_ns);
  if (a->to_ns)
    query_param_num(u, "to", a->to_ns);
  if (a->limit)
    query_param_num(u, "limit", (int64_t)a->limit);
}

/* GETs the URL and parses the answer; with --json prints it instead and
 * leaves *doc NULL. Returns an exit code. */
static int fetch(const char *verb, const qargs *a, query_url *u,
                 json_value **doc) {
  fnp_buf body;
  query_buf_init(&body);
  *doc = NULL;
  int rc = query_get(verb, u, &body);
  query_url_destroy(u);
  if (rc == CLI_EXIT_OK && a->json) {
    if (body.len)
      fwrite(body.data, 1, body.len, stdout);
    fputc('\n', stdout);
  } else if (rc == CLI_EXIT_OK &&
             json_parse((const char *)body.data, body.len, doc) < 0) {
    rc = cli_fail(verb, CLI_EXIT_ERROR, "the collector's answer is not JSON");
  }
  fnp_buf_destroy(&body);
  return rc;
}

static const char *str_or(const json_value *v, const char *dflt) {
  const char *s = json_str_of(v);
  return s && *s ? s : dflt;
}

/* The first line of s, at most max bytes of it. */
static void first_line(const char *s, char *out, size_t cap) {
  size_t n = strcspn(s, "\n");
  if (n >= cap)
    n = cap - 1;
  memcpy(out, s, n);
  out[n] = '\0';
}

/* ---- fnprof logs -------------------------------------------------------- */

static void logs_usage(FILE *out) {
  fprintf(out,
          "usage: fnprof logs [options]\n\n"
          "Log records stored in fnprof-collector, oldest first: one line "
          "each\n"
          "with time (UTC), request id, level and message.\n\n"
          "      --logstore L       only logstore L\n"
          "      --instance I       only instance I\n"
          "      --request-id R     only request R\n"
          "  -q TEXT                only records with TEXT in a field\n"
          "%s",
          COMMON_HELP);
}

static const char *field_of(const json_value *fields, const char *const *keys) {
  for (; *keys; keys++) {
    const char *v = json_str_of(json_get(fields, *keys));
    if (v && *v)
      return v;
  }
  return NULL;
}

static void print_log(const json_value *r) {
  static const char *const LEVEL[] = {"level", "severity", "severity_text",
                                      "log.level", NULL};
  static const char *const MESSAGE[] = {"message", "msg",     "body",
                                        "content", "summary", NULL};
  const json_value *fields = json_get(r, "fields");
  char when[64], line[4096];
  query_format_time(json_str_of(json_get(r, "time_ns")), when, sizeof when);
  const char *level = field_of(fields, LEVEL);
  const char *msg = field_of(fields, MESSAGE);
  printf("%s  %s  ", when, str_or(json_get(r, "request_id"), "-"));
  if (level)
    printf("%s ", level);
  if (msg) {
    first_line(msg, line, sizeof line);
    printf("%s\n", line);
    return;
  }
  /* No message field: the fields themselves, key=value. */
  bool first = true;
  for (const json_value *m = json_first(fields); m; m = json_next(m)) {
    const char *k = json_key_of(m);
    if (strcmp(k, "instance") == 0 || strcmp(k, "request_id") == 0)
      continue;
    first_line(str_or(m, ""), line, sizeof line);
    printf("%s%s=%s", first ? "" : " ", k, line);
    first = false;
  }
  putchar('\n');
}

int cmd_logs(int argc, char **argv) {
  qargs a;
  int rc = parse("logs", logs_usage, 0, argc, argv, &a);
  if (rc < 0)
    rc = refuse("logs", &a, "--logstore --instance --request-id -q");
  if (rc >= 0)
    return rc;
  query_url u;
  json_value *doc;
  if (query_url_init(&u, query_base_url(a.url), "/api/logs") < 0) {
    query_url_destroy(&u);
    return cli_fail("logs", CLI_EXIT_USAGE, "--url too long");
  }
  query_param(&u, "logstore", a.logstore);
  query_param(&u, "instance", a.instance);
  query_param(&u, "request_id", a.request_id);
  query_param(&u, "q", a.text);
  add_common(&u, &a);
  if ((rc = fetch("logs", &a, &u, &doc)) != CLI_EXIT_OK || doc == NULL)
    return cli_finish("logs", rc);
  for (const json_value *r = json_first(json_get(doc, "records")); r;
       r = json_next(r))
    print_log(r);
  json_free(doc);
  return cli_finish("logs", CLI_EXIT_OK);
}

/* ---- fnprof metrics ----------------------------------------------------- */

static void metrics_usage(FILE *out) {
  fprintf(out,
          "usage: fnprof metrics [options] NAME\n\n"
          "Data points of metric NAME stored in fnprof-collector, oldest "
          "first:\n"
          "time (UTC), value, unit, instance.\n\n"
          "      --instance I       only instance I\n"
          "%s",
          COMMON_HELP);
}

int cmd_metrics(int argc, char **argv) {
  qargs a;
  int rc = parse("metrics", metrics_usage, 1, argc, argv, &a);
  if (rc < 0)
    rc = refuse("metrics", &a, "--instance");
  if (rc < 0 && a.npos != 1)
    rc = cli_fail("metrics", CLI_EXIT_USAGE,
                  "which metric? (see fnprof metrics --help)");
  if (rc >= 0)
    return rc;
  query_url u;
  json_value *doc;
  if (query_url_init(&u, query_base_url(a.url), "/api/metrics") < 0) {
    query_url_destroy(&u);
    return cli_fail("metrics", CLI_EXIT_USAGE, "--url too long");
  }
  query_param(&u, "name", a.pos[0]);
  query_param(&u, "instance", a.instance);
  add_common(&u, &a);
  if ((rc = fetch("metrics", &a, &u, &doc)) != CLI_EXIT_OK || doc == NULL)
    return cli_finish("metrics", rc);
  for (const json_value *p = json_first(json_get(doc, "points")); p;
       p = json_next(p)) {
    char when[64];
    query_format_time(json_str_of(json_get(p, "time_ns")), when, sizeof when);
    printf("%s  %s %s  %s\n", when, str_or(json_get(p, "value"), "?"),
           str_or(json_get(p, "unit"), ""),
           str_or(json_get(p, "instance"), "-"));
  }
  json_free(doc);
  return cli_finish("metrics", CLI_EXIT_OK);
}

/* ---- fnprof profiles ---------------------------------------------------- */

static void profiles_usage(FILE *out) {
  fprintf(out,
          "usage: fnprof profiles [options]\n"
          "       fnprof profiles get ID -o FILE\n\n"
          "Profiles stored in fnprof-collector, oldest first: id, time "
          "(UTC),\n"
          "instance, kind, bytes. 'get' downloads one (FILE '-' is "
          "stdout).\n\n"
          "      --instance I       only instance I\n"
          "      --kind K           only kind K (heap, inuse, final, "
          "spike-before,\n"
          "                         spike-after, spike-diff, ...)\n"
          "  -o FILE                where 'get' writes the profile\n"
          "%s",
          COMMON_HELP);
}

static int profile_get(const qargs *a) {
  char *end;
  long long id = strtoll(a->pos[1], &end, 10);
  if (*end || end == a->pos[1] || id <= 0)
    return cli_fail("profiles", CLI_EXIT_USAGE,
                    "'%s' is not a profile id (see fnprof profiles)",
                    a->pos[1]);
  if (a->out == NULL)
    return cli_fail("profiles", CLI_EXIT_USAGE,
                    "get needs -o FILE ('-' for stdout)");
  query_url u;
  char path[64];
  snprintf(path, sizeof path, "/api/profiles/%lld", id);
  if (query_url_init(&u, query_base_url(a->url), path) < 0) {
    query_url_destroy(&u);
    return cli_fail("profiles", CLI_EXIT_USAGE, "--url too long");
  }
  fnp_buf body;
  query_buf_init(&body);
  int rc = query_get("profiles", &u, &body);
  query_url_destroy(&u);
  if (rc == CLI_EXIT_OK)
    rc = cli_emit("profiles", a->out, body.data, body.len);
  fnp_buf_destroy(&body);
  return cli_finish("profiles", rc);
}

int cmd_profiles(int argc, char **argv) {
  qargs a;
  int rc = parse("profiles", profiles_usage, 2, argc, argv, &a);
  if (rc >= 0)
    return rc;
  if (a.npos > 0 && strcmp(a.pos[0], "get") != 0)
    return cli_fail("profiles", CLI_EXIT_USAGE,
                    "unknown subcommand '%s' (see fnprof profiles --help)",
                    a.pos[0]);
  if (a.npos > 0 && a.npos != 2)
    return cli_fail("profiles", CLI_EXIT_USAGE, "get needs a profile ID");
  if (a.npos == 2)
    return (rc = refuse("profiles", &a, "-o")) >= 0 ? rc : profile_get(&a);
  if ((rc = refuse("profiles", &a, "--instance --kind")) >= 0)
    return rc;
  query_url u;
  json_value *doc;
  if (query_url_init(&u, query_base_url(a.url), "/api/profiles") < 0) {
    query_url_destroy(&u);
    return cli_fail("profiles", CLI_EXIT_USAGE, "--url too long");
  }
  query_param(&u, "instance", a.instance);
  query_param(&u, "kind", a.kind);
  add_common(&u, &a);
  if ((rc = fetch("profiles", &a, &u, &doc)) != CLI_EXIT_OK || doc == NULL)
    return cli_finish("profiles", rc);
  for (const json_value *p = json_first(json_get(doc, "profiles")); p;
       p = json_next(p)) {
    char when[64];
    query_format_time(json_str_of(json_get(p, "time_ns")), when, sizeof when);
    printf("%s  %s  %s  %s  %s\n", str_or(json_get(p, "id"), "?"), when,
           str_or(json_get(p, "instance"), "-"),
           str_or(json_get(p, "kind"), "-"), str_or(json_get(p, "size"), "?"));
  }
  json_free(doc);
  return cli_finish("profiles", CLI_EXIT_OK);
}

/* ---- fnprof spikes ------------------------------------------------------ */

static void spikes_usage(FILE *out) {
  fprintf(out,
          "usage: fnprof spikes [options]\n\n"
          "Heap spikes the agent reported, oldest first: time (UTC), "
          "instance,\n"
          "the ids of the before/after/diff profiles ('-' when not "
          "stored;\n"
          "fetch them with fnprof profiles get) and the report's summary.\n\n"
          "      --instance I       only instance I\n"
          "%s",
          COMMON_HELP);
}

int cmd_spikes(int argc, char **argv) {
  qargs a;
  int rc = parse("spikes", spikes_usage, 0, argc, argv, &a);
  if (rc < 0)
    rc = refuse("spikes", &a, "--instance");
  if (rc >= 0)
    return rc;
  query_url u;
  json_value *doc;
  if (query_url_init(&u, query_base_url(a.url), "/api/spikes") < 0) {
    query_url_destroy(&u);
    return cli_fail("spikes", CLI_EXIT_USAGE, "--url too long");
  }
  query_param(&u, "instance", a.instance);
  add_common(&u, &a);
  if ((rc = fetch("spikes", &a, &u, &doc)) != CLI_EXIT_OK || doc == NULL)
    return cli_finish("spikes", rc);
  for (const json_value *s = json_first(json_get(doc, "spikes")); s;
       s = json_next(s)) {
    char when[64], summary[1024];
    query_format_time(json_str_of(json_get(s, "time_ns")), when, sizeof when);
    first_line(str_or(json_get(s, "summary"), ""), summary, sizeof summary);
    printf("%s  %s  before=%s after=%s diff=%s  %s\n", when,
           str_or(json_get(s, "instance"), "-"),
           str_or(json_get(s, "before_profile_id"), "-"),
           str_or(json_get(s, "after_profile_id"), "-"),
           str_or(json_get(s, "diff_profile_id"), "-"), summary);
  }
  json_free(doc);
  return cli_finish("spikes", CLI_EXIT_OK);
}
