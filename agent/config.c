/*
 * FNPROF_* configuration, parsed from an environment block (`environ` at
 * start-up: getenv is not safe that early and may allocate in some libcs).
 * No allocation; malformed or out-of-range values fall back to defaults or
 * are clamped, never fail: configuration must not crash the host.
 */
#include "internal.h"

#include <string.h>

agent__config agent__cfg;

/* ---- configuration --------------------------------------------------------
 */

static const char *env_find(char **envp, const char *name) {
  size_t len = strlen(name);
  for (char **e = envp; e && *e; e++)
    if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
      return *e + len + 1;
  return NULL;
}

/* A non-negative decimal with an optional k/m/g (binary) suffix; the
 * default when absent or malformed (configuration must never crash us). */
static int64_t env_int(char **envp, const char *name, int64_t def) {
  const char *s = env_find(envp, name);
  if (!s || !*s)
    return def;
  int64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (INT64_MAX - 9) / 10)
      return def;
    v = v * 10 + (*s - '0');
  }
  int shift = 0;
  switch (*s) {
  case 'k':
  case 'K':
    shift = 10;
    s++;
    break;
  case 'm':
  case 'M':
    shift = 20;
    s++;
    break;
  case 'g':
  case 'G':
    shift = 30;
    s++;
    break;
  default:
    break;
  }
  if (*s == 'i' || *s == 'I') /* KiB, MiB */
    s++;
  if (*s == 'b' || *s == 'B')
    s++;
  if (*s != '\0' || v > (INT64_MAX >> shift))
    return def;
  return v << shift;
}

static void env_str(char **envp, const char *name, char *out, size_t cap) {
  const char *s = env_find(envp, name);
  out[0] = '\0';
  if (s && strlen(s) < cap)
    memcpy(out, s, strlen(s) + 1);
}

void agent__config_parse(agent__config *c, char **envp) {
  c->rate = env_int(envp, "FNPROF_RATE", AGENT_DEFAULT_RATE_BYTES);
  c->depth = (int)env_int(envp, "FNPROF_DEPTH", AGENT_DEFAULT_DEPTH);
  if (c->depth < 1)
    c->depth = 1;
  if (c->depth > AGENT_MAX_DEPTH)
    c->depth = AGENT_MAX_DEPTH;
  c->cycle_percent =
      env_int(envp, "FNPROF_CYCLE_PERCENT", AGENT_DEFAULT_CYCLE_PERCENT);
  c->cycle_ms = env_int(envp, "FNPROF_CYCLE_MS", 0);
  c->follow_exec = env_int(envp, "FNPROF_FOLLOW_EXEC", 1) != 0;
  /* Set by whoever asked a JIT runtime to write /tmp/perf-<pid>.map for us
   * (fnprof run, the sidecar): the file is ours to remove at exit. */
  c->jit_map_unlink = env_int(envp, "FNPROF_JIT_MAP_UNLINK", 0) != 0;
  env_str(envp, "FNPROF_DIR", c->dir, sizeof(c->dir));
  env_str(envp, "FNPROF_CONTROL", c->control_path, sizeof(c->control_path));
  c->control = strcmp(c->control_path, "off") != 0;
  c->page_fd = (int)env_int(envp, FNPROF_PAGE_ENV, -1);
  if (!c->control)
    c->control_path[0] = '\0';
  c->spike_min_bytes = env_int(envp, "FNPROF_SPIKE_MIN", (int64_t)8 << 20);
  c->spike_diff_pct = env_int(envp, "FNPROF_SPIKE_DIFF", 50);
  c->spike_abs_bytes = env_int(envp, "FNPROF_SPIKE_ABS", 0);
  c->spike_history = env_int(envp, "FNPROF_SPIKE_HISTORY", 10);
  if (c->spike_history < 1)
    c->spike_history = 1;
  if (c->spike_history > 64)
    c->spike_history = 64;
  c->spike_cooldown_ms = env_int(envp, "FNPROF_SPIKE_COOLDOWN_MS", 60000);
}
