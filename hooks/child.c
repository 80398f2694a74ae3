/*
 * child.c - starts the function's bootstrap: its stdout/stderr on pipes the
 * sidecar reads (logcap.c), the agent added to LD_PRELOAD (with the control
 * socket and profile directory agent_ctl.c chose), its port moved to an
 * inner loopback port. The child stays in the sidecar's process group so
 * that freezing the instance (SIGSTOP to the group, as `fnprof-local` does;
 * the platform freezes the whole container) freezes both. Stopping and
 * reaping are sidecar.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

/* Python buffers stdout when it is a pipe; the lines would reach us at exit,
 * attributed to nothing. Unbuffered output is what the platform's own log
 * collection sees too. Set only when the user has not chosen. */
static const char *const ENV_DEFAULTS[] = {"PYTHONUNBUFFERED=1"};
/* Replaced outright: the function must listen where the sidecar proxies. */
static const char *const ENV_PORT_NAMES[] = {"FC_SERVER_PORT", "PORT"};

static int env_push(char **env, size_t *n, const char *fmt, const char *a,
                    const char *b) {
  char *s = NULL;
  if (asprintf(&s, fmt, a, b) < 0)
    return -ENOMEM;
  env[(*n)++] = s;
  return 0;
}

static int is_named(const char *entry, const char *name) {
  size_t n = strlen(name);
  return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* What env_copy saw of the variables the sidecar adds to or defaults. */
typedef struct env_seen {
  const char *preload;      /* LD_PRELOAD's value, or NULL */
  const char *node_options; /* NODE_OPTIONS's value, or NULL */
  int has_default[2];       /* PYTHONUNBUFFERED, FNPROF_DIR set */
  int python_perf;          /* PYTHONPERFSUPPORT set */
  int jit_names_off;        /* FNPROF_JIT_NAMES=0 */
} env_seen;

/* Copies env without the variables the sidecar sets itself. */
static int env_copy(char *const *env, char **out, size_t *n, env_seen *seen,
                    int own_control) {
  size_t i;
  int *has_default = seen->has_default;
  for (; env && *env; env++) {
    if (is_named(*env, "NODE_OPTIONS"))
      seen->node_options = *env + strlen("NODE_OPTIONS=");
    seen->python_perf |= is_named(*env, FNP_PYTHON_PERF_ENV);
    if (is_named(*env, FNP_JIT_NAMES_ENV))
      seen->jit_names_off =
          strcmp(*env + strlen(FNP_JIT_NAMES_ENV "="), "0") == 0;
    int skip = is_named(*env, "LD_PRELOAD") ||
               (own_control && is_named(*env, "FNPROF_CONTROL"));
    if (is_named(*env, "FNPROF_DIR") && (*env)[11] != '\0')
      has_default[1] = 1; /* the user's profile directory wins */
    if (skip && is_named(*env, "LD_PRELOAD"))
      seen->preload = *env + strlen("LD_PRELOAD=");
    for (i = 0; i < 2; i++)
      skip |= is_named(*env, ENV_PORT_NAMES[i]);
    skip |= is_named(*env, "NODE_OPTIONS");  /* put back by jit_names_env */
    skip |= is_named(*env, FNPROF_PAGE_ENV); /* a descriptor we closed */
    for (i = 0; i < 1; i++)
      if (strncmp(*env, ENV_DEFAULTS[i], strcspn(ENV_DEFAULTS[i], "=") + 1) ==
          0)
        has_default[i] = 1;
    if (skip)
      continue;
    out[*n] = strdup(*env);
    if (out[*n] == NULL)
      return -ENOMEM;
    (*n)++;
  }
  return 0;
}

/* JIT names (fnprof/common.h): node's perf-map flags added to the user's
 * NODE_OPTIONS, CPython 3.12+'s PYTHONPERFSUPPORT=1 unless the user chose,
 * and the agent told the map is its to remove. Without the agent, or with
 * FNPROF_JIT_NAMES=0, NODE_OPTIONS goes back as it was. */
static int jit_names_env(char **e, size_t *n, const env_seen *seen, int agent) {
  if (!agent || seen->jit_names_off)
    return seen->node_options
               ? env_push(e, n, "NODE_OPTIONS=%s%s", seen->node_options, "")
               : 0;
  char *v = fnp_node_options_jit_names(seen->node_options);
  if (v == NULL)
    return -ENOMEM;
  int rc = env_push(e, n, "NODE_OPTIONS=%s%s", v, "");
  free(v);
  if (rc == 0 && !seen->python_perf)
    rc = env_push(e, n, "%s=%s", FNP_PYTHON_PERF_ENV, "1");
  return rc ? rc : env_push(e, n, "%s=%s", FNP_JIT_MAP_UNLINK_ENV, "1");
}

int sc__env_build(char *const *env, const char *agent, int inner_port,
                  char ***out) {
  return sc__env_build_agent(env, agent, inner_port, NULL, NULL, 0, out);
}

int sc__env_build_agent(char *const *env, const char *agent, int inner_port,
                        const char *control, const char *prof_dir, int page,
                        char ***out) {
  env_seen seen = {0};
  const int *has_default = seen.has_default;
  char port[16];
  size_t count = 0, n = 0, i;
  char **e;
  int rc;
  while (env && env[count])
    count++;
  e = calloc(count + 12, sizeof(*e));
  if (e == NULL)
    return -ENOMEM;
  rc = env_copy(env, e, &n, &seen, control != NULL);
  const char *old_preload = seen.preload;
  snprintf(port, sizeof(port), "%d", inner_port);
  for (i = 0; rc == 0 && i < 2; i++)
    rc = env_push(e, &n, "%s=%s", ENV_PORT_NAMES[i], port);
  /* Ours first: the agent sees every allocation and forwards to whatever
   * comes next (another preloaded allocator included). */
  if (rc == 0 && agent && old_preload && *old_preload)
    rc = env_push(e, &n, "LD_PRELOAD=%s:%s", agent, old_preload);
  else if (rc == 0 && agent)
    rc = env_push(e, &n, "LD_PRELOAD=%s%s", agent, "");
  else if (rc == 0 && old_preload)
    rc = env_push(e, &n, "LD_PRELOAD=%s%s", old_preload, "");
  if (rc == 0 && !has_default[0])
    rc = env_push(e, &n, "%s%s", ENV_DEFAULTS[0], "");
  if (rc == 0 && control)
    rc = env_push(e, &n, "FNPROF_CONTROL=%s%s", control, "");
  if (rc == 0 && page)
    rc = env_push(e, &n, "%s=%s", FNPROF_PAGE_ENV, SC_PAGE_CHILD_FD_TEXT);
  if (rc == 0 && prof_dir && !has_default[1])
    rc = env_push(e, &n, "FNPROF_DIR=%s%s", prof_dir, "");
  if (rc == 0)
    rc = jit_names_env(e, &n, &seen, agent != NULL);
  if (rc < 0) {
    sc__env_free(e);
    return rc;
  }
  *out = e;
  return 0;
}

void sc__env_free(char **env) {
  size_t i;
  for (i = 0; env && env[i]; i++)
    free(env[i]);
  free(env);
}

static int try_agent(const char *dir, const char *rel, char **out) {
  char path[PATH_MAX];
  struct stat st;
  if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path))
    return 0;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return 0;
  *out = realpath(path, NULL);
  return *out != NULL;
}

int sc__agent_find(const sidecar_config *cfg, char **out, fnp_error *err) {
  static const char *const REL[] = {"libfnprof.so", "../agent/libfnprof.so",
                                    "../lib/libfnprof.so",
                                    "../lib/fnprof/libfnprof.so"};
  char exe[PATH_MAX], *slash;
  ssize_t n;
  size_t i;
  *out = NULL;
  if (cfg->no_agent)
    return 0;
  if (cfg->agent_path) {
    if (access(cfg->agent_path, R_OK) != 0)
      return fnp_fail(err, -errno, "--agent %s: %s", cfg->agent_path,
                      strerror(errno));
    *out = realpath(cfg->agent_path, NULL);
    return *out ? 0 : fnp_fail(err, -errno, "--agent: realpath failed");
  }
  n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return 0;
  exe[n] = '\0';
  slash = strrchr(exe, '/');
  if (slash)
    *slash = '\0';
  for (i = 0; i < sizeof(REL) / sizeof(REL[0]); i++)
    if (try_agent(exe, REL[i], out))
      return 0;
  return 0; /* none found: run without the agent, sidecar.c says so */
}

/* In the forked child: only async-signal-safe calls until exec. */
static void child_exec(char *const *argv, char **env, int out_w, int err_w,
                       int page_fd) {
  struct sigaction sa;
  sigset_t none;
  int sig;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  for (sig = 1; sig < NSIG; sig++)
    sigaction(sig, &sa, NULL); /* SIGPIPE was ignored by the sidecar */
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (dup2(out_w, STDOUT_FILENO) < 0 || dup2(err_w, STDERR_FILENO) < 0)
    _exit(126);
  /* The page at SC_PAGE_CHILD_FD, open across exec (dup2 clears
   * close-on-exec; a descriptor already there needs it cleared). */
  int keep = page_fd < 0                   ? -1
             : page_fd == SC_PAGE_CHILD_FD ? fcntl(page_fd, F_SETFD, 0)
                                           : dup2(page_fd, SC_PAGE_CHILD_FD);
  /* The listener and every other sidecar fd. */
  close_range(keep < 0 ? 3 : SC_PAGE_CHILD_FD + 1, ~0U, 0);
  execvpe(argv[0], argv, env);
  dprintf(STDERR_FILENO, "fnprof-sidecar: exec %s: %s\n", argv[0],
          strerror(errno));
  _exit(127);
}

static int make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) < 0)
    return -errno;
  if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
    return -errno;
  return 0;
}

int sc__child_spawn(sc_child *c, const sidecar_config *cfg, const char *agent,
                    const char *control, const char *prof_dir, int page_fd,
                    int inner_port, fnp_error *err) {
  int out[2] = {-1, -1}, errp[2] = {-1, -1}, rc;
  char **env = NULL;
  memset(c, 0, sizeof(*c));
  c->out_fd = c->err_fd = -1;
  c->status_fd = c->clear_refs_fd = -1;
  rc = make_pipe(out);
  if (rc == 0)
    rc = make_pipe(errp);
  if (rc == 0)
    rc = sc__env_build_agent(environ, agent, inner_port, control, prof_dir,
                             page_fd >= 0, &env);
  if (rc < 0)
    goto fail;
  /* jit_names_env asked the agent to remove the map: the map is ours. */
  c->jit_map_ours = 0;
  for (char **e = env; *e; e++)
    c->jit_map_ours |= strcmp(*e, FNP_JIT_MAP_UNLINK_ENV "=1") == 0;
  c->started_mono_ns = sc__mono_ns();
  c->pid = fork();
  if (c->pid < 0) {
    rc = -errno;
    goto fail;
  }
  if (c->pid == 0)
    child_exec(cfg->argv, env, out[1], errp[1], page_fd);
  close(out[1]);
  close(errp[1]);
  c->out_fd = out[0];
  c->err_fd = errp[0];
  sc__env_free(env);
  return 0;
fail:
  sc__env_free(env);
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0)
      close(out[i]);
    if (errp[i] >= 0)
      close(errp[i]);
  }
  return fnp_fail(err, rc, "starting %s: %s", cfg->argv[0], fnp_strerror(rc));
}

/* The agent removes its JIT runtime's perf map at exit, but a function
 * killed by a signal (SIGTERM without a handler, the stop grace's SIGKILL)
 * never runs that code: the map of the bootstrap's own process (node run
 * directly) goes here. Only when the sidecar asked for it (JIT names on,
 * with the agent). */
void sc__child_forget_jit_map(const sc_child *c) {
  char path[64];
  if (c->pid <= 0 || !c->jit_map_ours)
    return;
  snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)c->pid);
  unlink(path);
}
