/*
 * The environment that makes JIT runtimes name their compiled code for the
 * agent (agent/perfmap.c). Node takes V8 flags from NODE_OPTIONS:
 * --perf-basic-prof-only-functions writes /tmp/perf-<pid>.map, a line per
 * compiled JavaScript function, and --interpreted-frames-native-stack gives
 * interpreted functions a frame of their own too, so a function that has
 * not been optimized still shows by name. (CPython 3.12+ needs only
 * PYTHONPERFSUPPORT=1.) Shared by `fnprof run` and the sidecar, which both
 * start programs under the agent.
 */
#include <fnprof/common.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const NODE_JIT_FLAGS[] = {
    "--perf-basic-prof-only-functions", "--interpreted-frames-native-stack"};

/* Is flag one of the space-separated words of opts? */
static int has_word(const char *opts, const char *flag) {
  size_t n = strlen(flag);
  for (const char *p = opts; (p = strstr(p, flag)) != NULL; p += n)
    if ((p == opts || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
      return 1;
  return 0;
}

char *fnp_node_options_jit_names(const char *old) {
  size_t len = (old ? strlen(old) : 0) + 1;
  for (size_t i = 0; i < 2; i++)
    len += strlen(NODE_JIT_FLAGS[i]) + 1;
  char *v = malloc(len);
  if (v == NULL)
    return NULL;
  snprintf(v, len, "%s", old ? old : "");
  for (size_t i = 0; i < 2; i++)
    if (!old || !has_word(old, NODE_JIT_FLAGS[i])) {
      if (*v)
        strcat(v, " ");
      strcat(v, NODE_JIT_FLAGS[i]);
    }
  return v;
}
