/*
 * tools/fnprof.c - the fnprof command line: picks the verb and hands it its
 * arguments. Each verb lives in its own cmd_*.c; this file only knows their
 * names, the global help and the version.
 */
#include "cli.h"

#include <string.h>

#ifndef FNPROF_VERSION
#define FNPROF_VERSION "unknown"
#endif

typedef struct verb {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} verb;

static const verb VERBS[] = {
    {"top", cmd_top, "functions by flat or cumulative value"},
    {"diff", cmd_diff, "what grew and what shrank between two profiles"},
    {"flame", cmd_flame, "a flame graph as a self-contained SVG"},
    {"folded", cmd_folded, "folded stacks (flamegraph.pl input)"},
    {"run", cmd_run, "run a program with the heap agent preloaded"},
    {"local", cmd_local, "run a function through the platform's lifecycle"},
    {"logs", cmd_logs, "log records stored in fnprof-collector"},
    {"metrics", cmd_metrics, "a metric's points stored in fnprof-collector"},
    {"profiles", cmd_profiles, "list or download stored profiles"},
    {"spikes", cmd_spikes, "heap spikes with their before/after profiles"},
};

static void usage(FILE *out) {
  fprintf(out, "usage: fnprof VERB [options] ...\n"
               "       fnprof --version | --help\n\n"
               "verbs:\n");
  for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++)
    fprintf(out, "  %-8s %s\n", VERBS[i].name, VERBS[i].summary);
  fprintf(out, "\n'fnprof VERB --help' describes a verb's options. Every verb "
               "takes --json.\n"
               "Profiles are pprof protobuf files, gzip'd or raw.\n\n"
               "exit status:\n"
               "  0  success\n"
               "  1  runtime error (unreadable or malformed profile, I/O, "
               "collector\n"
               "     unreachable or answering an error)\n"
               "  2  usage error (bad option, missing argument, unknown sample "
               "type)\n"
               "  3  diff only: growth exceeded --fail-over\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
      strcmp(name, "help") == 0) {
    usage(stdout);
    return cli_finish("help", CLI_EXIT_OK);
  }
  if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
    printf("fnprof %s\n", FNPROF_VERSION);
    return cli_finish("version", CLI_EXIT_OK);
  }
  for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++) {
    if (strcmp(name, VERBS[i].name) == 0)
      return VERBS[i].run(argc - 1, argv + 1);
  }
  fprintf(stderr, "fnprof: unknown verb '%s' (see fnprof --help)\n", name);
  return CLI_EXIT_USAGE;
}
