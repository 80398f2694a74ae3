/*
 * tools/cmd_run.c - the verbs that start other programs rather than read
 * profiles: `fnprof run` (any program under the agent) and `fnprof local`
 * (the platform on a laptop: execs fnprof-local, with fnprof-sidecar unless
 * told otherwise). Both find their companions next to the fnprof binary:
 * the build tree (tools/ beside agent/ and hooks/) or an install (bin/
 * beside lib/). The agent and the sidecar do the work; this only execs.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where companions live relative to the directory of the fnprof binary. */
static const char *const AGENT_PLACES[] = {
    "../agent/libfnprof.so", "../lib/libfnprof.so",
    "../lib/fnprof/libfnprof.so", "libfnprof.so"};
static const char *const LOCAL_PLACES[] = {"../hooks/fnprof-local",
                                           "fnprof-local"};
static const char *const SIDECAR_PLACES[] = {"../hooks/fnprof-sidecar",
                                             "fnprof-sidecar"};

/* The first of places (relative to the binary's directory) that is a
 * regular file, as an absolute path in out; -ENOENT if none. */
static int find_companion(const char *const *places, size_t n, char *out,
                          size_t cap) {
  char exe[PATH_MAX], path[PATH_MAX + 64], *slash;
  struct stat st;
  ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (len <= 0)
    return -errno;
  exe[len] = '\0';
  slash = strrchr(exe, '/');
  if (slash)
    *slash = '\0';
  for (size_t i = 0; i < n; i++) {
    snprintf(path, sizeof(path), "%s/%s", exe, places[i]);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        realpath(path, out) != NULL && strlen(out) < cap)
      return 0;
  }
  return -ENOENT;
}

static void run_usage(FILE *f) {
  fprintf(f,
          "usage: fnprof run [--rate N] [--dir D] [--agent PATH] -- CMD "
          "[ARGS...]\n"
          "Runs CMD with libfnprof.so preloaded (before any LD_PRELOAD it\n"
          "already has). Profiles go to D at exit, on every heap spike and on\n"
          "request; read them with `fnprof top`.\n"
          "  --rate N      mean bytes between samples (FNPROF_RATE, 524288;\n"
          "                1 = every allocation, 0 = off)\n"
          "  --dir D       profile directory (FNPROF_DIR; created if missing;\n"
          "                default ./prof)\n"
          "  --agent PATH  libfnprof.so to preload (default: next to fnprof,\n"
          "                ../agent/ in the build tree, ../lib/ installed)\n"
          "JIT-compiled code is named too: NODE_OPTIONS gets the flags that\n"
          "make node write /tmp/perf-PID.map (PYTHONPERFSUPPORT=1 does it for\n"
          "CPython 3.12+), which the agent reads and removes at exit\n"
          "(FNPROF_JIT_NAMES=0: leave the environment alone).\n"
          "exit status: CMD's own; 1 when it cannot be started; 2 usage.\n");
}

/* JIT names (fnprof/common.h): node and CPython >= 3.12 write their perf
 * maps and the agent removes them at exit; FNPROF_JIT_NAMES=0 leaves the
 * environment alone. */
static int set_jit_names(void) {
  const char *off = getenv(FNP_JIT_NAMES_ENV);
  if (off && strcmp(off, "0") == 0)
    return 0;
  char *v = fnp_node_options_jit_names(getenv("NODE_OPTIONS"));
  if (v == NULL)
    return -ENOMEM;
  int rc = setenv("NODE_OPTIONS", v, 1) < 0 ||
                   setenv(FNP_PYTHON_PERF_ENV, "1", 0) < 0 ||
                   setenv(FNP_JIT_MAP_UNLINK_ENV, "1", 1) < 0
               ? -errno
               : 0;
  free(v);
  return rc;
}

static int set_preload(const char *agent) {
  const char *old = getenv("LD_PRELOAD");
  char *v = NULL;
  int rc;
  if (old && *old)
    rc = asprintf(&v, "%s:%s", agent, old);
  else
    rc = asprintf(&v, "%s", agent);
  if (rc < 0)
    return -ENOMEM;
  rc = setenv("LD_PRELOAD", v, 1);
  free(v);
  return rc < 0 ? -errno : 0;
}

int cmd_run(int argc, char **argv) {
  static const struct option opts[] = {{"rate", required_argument, NULL, 'r'},
                                       {"dir", required_argument, NULL, 'd'},
                                       {"agent", required_argument, NULL, 'a'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *rate = NULL, *dir = "prof", *agent_opt = NULL;
  char agent[PATH_MAX];
  size_t rate_v;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
    switch (c) {
    case 'r':
      if (cli_parse_count("run", "--rate", optarg, &rate_v) != 0)
        return CLI_EXIT_USAGE;
      rate = optarg;
      break;
    case 'd':
      dir = optarg;
      break;
    case 'a':
      agent_opt = optarg;
      break;
    case 'h':
      run_usage(stdout);
      return cli_finish("run", CLI_EXIT_OK);
    default:
      return cli_bad_option("run", c, argv);
    }
  }
  if (optind >= argc) {
    run_usage(stderr);
    return cli_fail("run", CLI_EXIT_USAGE, "no command after '--'");
  }
  if (agent_opt) {
    if (realpath(agent_opt, agent) == NULL)
      return cli_fail("run", CLI_EXIT_USAGE, "--agent %s: %s", agent_opt,
                      strerror(errno));
  } else if (find_companion(AGENT_PLACES,
                            sizeof(AGENT_PLACES) / sizeof(AGENT_PLACES[0]),
                            agent, sizeof(agent)) < 0) {
    return cli_fail("run", CLI_EXIT_ERROR,
                    "libfnprof.so not found next to fnprof; use --agent");
  }
  if (*dir == '\0' || (mkdir(dir, 0755) != 0 && errno != EEXIST))
    return cli_fail("run", CLI_EXIT_ERROR, "--dir %s: %s", dir,
                    *dir ? strerror(errno) : "empty");
  if (set_preload(agent) < 0 || set_jit_names() < 0 ||
      setenv("FNPROF_DIR", dir, 1) < 0 ||
      (rate && setenv("FNPROF_RATE", rate, 1) < 0))
    return cli_fail("run", CLI_EXIT_ERROR, "cannot set the environment");
  fflush(NULL);
  execvp(argv[optind], argv + optind);
  return cli_fail("run", CLI_EXIT_ERROR, "%s: %s", argv[optind],
                  strerror(errno));
}

/* Whether a "--" comes before argv[i] (the bootstrap's own arguments). */
static int has_dashdash(char **argv, int i) {
  for (int k = 1; k < i; k++)
    if (strcmp(argv[k], "--") == 0)
      return 1;
  return 0;
}

static int has_arg(int argc, char **argv, const char *name) {
  size_t n = strlen(name);
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strncmp(argv[i], name, n) == 0 &&
        (argv[i][n] == '\0' || argv[i][n] == '='))
      return 1;
  return 0;
}

int cmd_local(int argc, char **argv) {
  char local[PATH_MAX], sidecar[PATH_MAX];
  char **args;
  int n = 0, direct = has_arg(argc, argv, "--direct");
  if (find_companion(LOCAL_PLACES,
                     sizeof(LOCAL_PLACES) / sizeof(LOCAL_PLACES[0]), local,
                     sizeof(local)) < 0)
    return cli_fail("local", CLI_EXIT_ERROR,
                    "fnprof-local not found next to fnprof");
  if (argc > 1 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    printf("usage: fnprof local [--direct] [options] -- BOOTSTRAP [ARGS...]\n"
           "Plays the platform for one instance (fnprof-local, next to\n"
           "fnprof): /initialize, the invocations, /pre-freeze and a real\n"
           "freeze, /pre-stop. The function runs under fnprof-sidecar (and\n"
           "so the agent) unless --direct or --sidecar PATH is given.\n"
           "Options are fnprof-local's: --invoke PAYLOAD, --http 'METHOD\n"
           "PATH [BODY]', --file FILE, --repeat N, --concurrency N,\n"
           "--rounds N, --freeze-ms MS, --port N, --sidecar-arg ARG,\n"
           "--show-body (%s with no arguments lists them all).\n",
           local);
    return cli_finish("local", CLI_EXIT_OK);
  }
  args = calloc((size_t)argc + 4, sizeof(*args));
  if (args == NULL)
    return cli_fail("local", CLI_EXIT_ERROR, "out of memory");
  args[n++] = local;
  if (!direct && !has_arg(argc, argv, "--sidecar") &&
      find_companion(SIDECAR_PLACES,
                     sizeof(SIDECAR_PLACES) / sizeof(SIDECAR_PLACES[0]),
                     sidecar, sizeof(sidecar)) == 0) {
    args[n++] = "--sidecar";
    args[n++] = sidecar;
  }
  for (int i = 1; i < argc; i++) /* --direct is ours, not fnprof-local's */
    if (strcmp(argv[i], "--direct") != 0 || has_dashdash(argv, i))
      args[n++] = argv[i];
  args[n] = NULL;
  fflush(NULL);
  execv(local, args);
  free(args);
  return cli_fail("local", CLI_EXIT_ERROR, "%s: %s", local, strerror(errno));
}
