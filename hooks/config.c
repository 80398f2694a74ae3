/*
 * config.c - the sidecar's settings: defaults, then FNPROF_* from the
 * environment, then the command line (which wins). Everything after `--` is
 * the function's bootstrap, passed on untouched.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void sidecar_config_init(sidecar_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->listen_addr = "0.0.0.0"; /* FC requires 0.0.0.0:CAPort */
  cfg->port = SIDECAR_DEFAULT_PORT;
  cfg->start_timeout_ms = SIDECAR_START_TIMEOUT_MS;
  cfg->freeze_budget_ms = SIDECAR_FREEZE_BUDGET_MS;
  cfg->stop_grace_ms = SIDECAR_STOP_GRACE_MS;
  cfg->client_timeout_ms = SIDECAR_CLIENT_TIMEOUT_MS;
  cfg->buffer_bytes = SIDECAR_BUFFER_BYTES;
  cfg->freeze_profile = 1;
}

void sidecar_config_destroy(sidecar_config *cfg) {
  free(cfg->storage);
  cfg->storage = NULL;
}

const char *sidecar_usage(void) {
  return "usage: fnprof-sidecar [options] -- BOOTSTRAP [ARGS...]\n"
         "  --port N             platform port (FNPROF_PORT, default 9000)\n"
         "  --listen ADDR        listen address (FNPROF_LISTEN, 0.0.0.0)\n"
         "  --export URL         repeatable (FNPROF_EXPORT, space-separated):\n"
         "                       sls://HOST:PORT[/PROJECT/LOGSTORE] (keys "
         "from\n"
         "                       FNPROF_ACCESS_KEY_ID/_SECRET or the request\n"
         "                       headers; project and logstore, when left\n"
         "                       out, from x-fc-service-logproject/logstore),\n"
         "                       otlp+http://HOST:PORT[/BASE],\n"
         "                       file://DIR, http://HOST:PORT/PATH (NDJSON)\n"
         "  --spool DIR          keep undelivered batches here (FNPROF_SPOOL)\n"
         "  --no-freeze-profile  no inuse profile at /pre-freeze\n"
         "                       (FNPROF_FREEZE_PROFILE=0)\n"
         "  --agent PATH         libfnprof.so to preload (FNPROF_AGENT)\n"
         "  --no-agent           preload nothing (FNPROF_AGENT=none)\n"
         "  --start-timeout MS   function start limit (120000)\n"
         "  --freeze-budget MS   /pre-freeze flush budget (1000)\n"
         "  --stop-grace MS      SIGTERM to SIGKILL at /pre-stop (2000)\n"
         "  --client-timeout MS  a request stalled halfway this long loses\n"
         "                       its connection (60000)\n"
         "  --buffer BYTES       export buffer, e.g. 8MiB\n"
         "  --instance-id ID     instance id in exported records\n";
}

static int parse_ms(const char *name, const char *s, int64_t *out,
                    fnp_error *err) {
  char *end;
  long long v;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < 0 || v > 86400000LL)
    return fnp_fail(err, FNP_EUSAGE, "%s: '%s' is not a millisecond count",
                    name, s);
  *out = v;
  return 0;
}

static int parse_port(const char *name, const char *s, int *out,
                      fnp_error *err) {
  int64_t v;
  if (parse_ms(name, s, &v, err) < 0 || v > 65535)
    return fnp_fail(err, FNP_EUSAGE, "%s: '%s' is not a port", name, s);
  *out = (int)v;
  return 0;
}

static int add_export(sidecar_config *cfg, const char *url, fnp_error *err) {
  if (cfg->n_exports == SIDECAR_MAX_EXPORTS)
    return fnp_fail(err, FNP_EUSAGE, "at most %d export URLs",
                    SIDECAR_MAX_EXPORTS);
  cfg->exports[cfg->n_exports++] = url;
  return 0;
}

static int set_agent(sidecar_config *cfg, const char *v) {
  cfg->no_agent = strcmp(v, "none") == 0;
  cfg->agent_path = cfg->no_agent ? NULL : v;
  return 0;
}

static int parse_buffer(const char *s, size_t *out, fnp_error *err) {
  int64_t v;
  if (fnp_parse_bytes(s, &v) < 0 || v < 4096 || v > (1LL << 32))
    return fnp_fail(err, FNP_EUSAGE, "buffer size '%s': 4KiB..4GiB", s);
  *out = (size_t)v;
  return 0;
}

/* Splits the FNPROF_EXPORT copy in place at spaces. */
static int env_exports(sidecar_config *cfg, const char *v, fnp_error *err) {
  char *save = NULL, *tok;
  int rc;
  free(cfg->storage);
  cfg->storage = strdup(v);
  if (cfg->storage == NULL)
    return fnp_fail(err, -ENOMEM, "out of memory");
  cfg->n_exports = 0;
  for (tok = strtok_r(cfg->storage, " \t", &save); tok;
       tok = strtok_r(NULL, " \t", &save)) {
    rc = add_export(cfg, tok, err);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int env_one(sidecar_config *cfg, const char *name, const char *v,
                   fnp_error *err) {
  if (strcmp(name, "FNPROF_PORT") == 0)
    return parse_port(name, v, &cfg->port, err);
  if (strcmp(name, "FNPROF_LISTEN") == 0)
    return (cfg->listen_addr = v), 0;
  if (strcmp(name, "FNPROF_EXPORT") == 0)
    return env_exports(cfg, v, err);
  if (strcmp(name, "FNPROF_AGENT") == 0)
    return set_agent(cfg, v);
  if (strcmp(name, "FNPROF_START_TIMEOUT_MS") == 0)
    return parse_ms(name, v, &cfg->start_timeout_ms, err);
  if (strcmp(name, "FNPROF_FREEZE_BUDGET_MS") == 0)
    return parse_ms(name, v, &cfg->freeze_budget_ms, err);
  if (strcmp(name, "FNPROF_STOP_GRACE_MS") == 0)
    return parse_ms(name, v, &cfg->stop_grace_ms, err);
  if (strcmp(name, "FNPROF_CLIENT_TIMEOUT_MS") == 0)
    return parse_ms(name, v, &cfg->client_timeout_ms, err);
  if (strcmp(name, "FNPROF_BUFFER") == 0)
    return parse_buffer(v, &cfg->buffer_bytes, err);
  if (strcmp(name, "FNPROF_INSTANCE_ID") == 0)
    return (cfg->instance_id = v), 0;
  if (strcmp(name, "FNPROF_SPOOL") == 0)
    return (cfg->spool_dir = *v ? v : NULL), 0;
  if (strcmp(name, "FNPROF_FREEZE_PROFILE") == 0)
    return (cfg->freeze_profile = strcmp(v, "0") != 0), 0;
  return 0;
}

int sidecar_config_from_env(sidecar_config *cfg, char *const *envp,
                            fnp_error *err) {
  char name[64];
  const char *eq;
  size_t n;
  int rc;
  for (; envp && *envp; envp++) {
    eq = strchr(*envp, '=');
    if (strncmp(*envp, "FNPROF_", 7) != 0 || eq == NULL)
      continue;
    n = (size_t)(eq - *envp);
    if (n >= sizeof(name))
      continue;
    memcpy(name, *envp, n);
    name[n] = '\0';
    rc = env_one(cfg, name, eq + 1, err);
    if (rc < 0)
      return rc;
  }
  return 0;
}

enum {
  OPT_PORT = 256,
  OPT_LISTEN,
  OPT_EXPORT,
  OPT_AGENT,
  OPT_NO_AGENT,
  OPT_START,
  OPT_FREEZE,
  OPT_GRACE,
  OPT_CLIENT_TIMEOUT,
  OPT_BUFFER,
  OPT_INSTANCE,
  OPT_SPOOL,
  OPT_FREEZE_PROFILE,
  OPT_NO_FREEZE_PROFILE
};

static const struct option LONG_OPTS[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"export", required_argument, NULL, OPT_EXPORT},
    {"agent", required_argument, NULL, OPT_AGENT},
    {"no-agent", no_argument, NULL, OPT_NO_AGENT},
    {"start-timeout", required_argument, NULL, OPT_START},
    {"freeze-budget", required_argument, NULL, OPT_FREEZE},
    {"stop-grace", required_argument, NULL, OPT_GRACE},
    {"client-timeout", required_argument, NULL, OPT_CLIENT_TIMEOUT},
    {"buffer", required_argument, NULL, OPT_BUFFER},
    {"instance-id", required_argument, NULL, OPT_INSTANCE},
    {"spool", required_argument, NULL, OPT_SPOOL},
    {"freeze-profile", no_argument, NULL, OPT_FREEZE_PROFILE},
    {"no-freeze-profile", no_argument, NULL, OPT_NO_FREEZE_PROFILE},
    {NULL, 0, NULL, 0}};

static int arg_one(sidecar_config *cfg, int opt, const char *v,
                   fnp_error *err) {
  switch (opt) {
  case OPT_PORT:
    return parse_port("--port", v, &cfg->port, err);
  case OPT_LISTEN:
    return (cfg->listen_addr = v), 0;
  case OPT_EXPORT:
    return add_export(cfg, v, err);
  case OPT_AGENT:
    return set_agent(cfg, v);
  case OPT_NO_AGENT:
    return set_agent(cfg, "none");
  case OPT_START:
    return parse_ms("--start-timeout", v, &cfg->start_timeout_ms, err);
  case OPT_FREEZE:
    return parse_ms("--freeze-budget", v, &cfg->freeze_budget_ms, err);
  case OPT_GRACE:
    return parse_ms("--stop-grace", v, &cfg->stop_grace_ms, err);
  case OPT_CLIENT_TIMEOUT:
    return parse_ms("--client-timeout", v, &cfg->client_timeout_ms, err);
  case OPT_BUFFER:
    return parse_buffer(v, &cfg->buffer_bytes, err);
  case OPT_INSTANCE:
    return (cfg->instance_id = v), 0;
  case OPT_SPOOL:
    return (cfg->spool_dir = v), 0;
  case OPT_FREEZE_PROFILE:
  case OPT_NO_FREEZE_PROFILE:
    return (cfg->freeze_profile = opt == OPT_FREEZE_PROFILE), 0;
  default:
    return fnp_fail(err, FNP_EUSAGE, "unknown option");
  }
}

int sidecar_config_from_args(sidecar_config *cfg, int argc, char **argv,
                             fnp_error *err) {
  int opt, rc;
  optind = 1;
  opterr = 0;
  /* '+': stop at the first non-option, the bootstrap's own flags are not
   * ours even without `--`. */
  while ((opt = getopt_long(argc, argv, "+", LONG_OPTS, NULL)) != -1) {
    if (opt == '?')
      return fnp_fail(err, FNP_EUSAGE, "unknown option '%s'", argv[optind - 1]);
    rc = arg_one(cfg, opt, optarg, err);
    if (rc < 0)
      return rc;
  }
  if (optind >= argc)
    return fnp_fail(err, FNP_EUSAGE, "no bootstrap command after '--'");
  cfg->argv = argv + optind;
  return 0;
}
