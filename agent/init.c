/*
 * Start-up and process lifecycle: the init-once state machine, the
 * FNPROF_* configuration (parsed from `environ`: getenv is not safe to call
 * this early and may allocate in some libcs), the constructor that starts
 * the background thread, the destructor that writes the final profile, and
 * fork handling.
 *
 * Fork. pthread_atfork's prepare handler takes every agent lock in the
 * order of internal.h (ctl > spike > cycle > bucket > region > arena), so no
 * lock is held mid-update by a thread that will not exist in the child; the
 * parent handler releases them, the child handler re-initializes them, forgets
 * the parent's control socket (the path is the parent's: never unlinked by the
 * child) and background thread, and refreshes the cached pid. The child's
 * thread and socket come back lazily on its next sample.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

_Atomic int agent__state = AGENT_UNINIT;
__thread agent__tls agent__tl __attribute__((tls_model("initial-exec")));
agent__config agent__cfg;

static pid_t cached_pid;

pid_t agent__pid(void) { return cached_pid; }
void agent__refresh_pid(void) { cached_pid = getpid(); }

int64_t agent__now_ns(int clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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
  env_str(envp, "FNPROF_DIR", c->dir, sizeof(c->dir));
  env_str(envp, "FNPROF_CONTROL", c->control_path, sizeof(c->control_path));
  c->control = strcmp(c->control_path, "off") != 0;
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

/* FNPROF_FOLLOW_EXEC=0: take libfnprof out of LD_PRELOAD in place (the
 * environment strings are ours to edit; no allocation), so programs this
 * one execs run without the agent. */
static void drop_from_ld_preload(void) {
  for (char **e = environ; e && *e; e++) {
    if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
      continue;
    char *v = *e + 11, *w = v;
    const char *r = v;
    while (*r) {
      const char *end = r + strcspn(r, ": ");
      size_t len = (size_t)(end - r);
      bool ours = len > 0 && memmem(r, len, "libfnprof", 9) != NULL;
      if (!ours && len > 0) {
        if (w != v)
          *w++ = ':';
        memmove(w, r, len);
        w += len;
      }
      r = *end ? end + 1 : end;
    }
    *w = '\0';
  }
}

/* ---- init once -------------------------------------------------------------
 */

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static int init_run(void) {
  agent__config_parse(&agent__cfg, environ);
  agent__refresh_pid();
  /* The region first: it holds the bootstrap pool dlsym's calloc needs. */
  int region_rc = agent__region_init();
  agent__resolve_real();
  if (!agent__real_ok())
    return AGENT_DISABLED;
  if (region_rc != 0 || agent__buckets_init() != 0)
    return AGENT_DISABLED; /* forwarding only; metrics say sampling is off */
  agent__unwind_init();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  return AGENT_READY;
}

int agent__init(void) {
  int s = atomic_load_explicit(&agent__state, memory_order_acquire);
  if (s == AGENT_READY || s == AGENT_DISABLED)
    return s;
  agent__tls *t = &agent__tl;
  if (t->in_init)
    return AGENT_INITIALIZING;
  int expect = AGENT_UNINIT;
  if (atomic_compare_exchange_strong(&agent__state, &expect,
                                     AGENT_INITIALIZING)) {
    t->in_init = 1;
    agent__guard_enter();
    int r = init_run();
    atomic_store_explicit(&agent__state, r, memory_order_release);
    agent__guard_exit();
    t->in_init = 0;
    return r;
  }
  /* Another thread is initializing: dlsym takes microseconds. */
  while ((s = atomic_load_explicit(&agent__state, memory_order_acquire)) ==
         AGENT_INITIALIZING)
    sched_yield();
  return s;
}

/* ---- constructor, destructor --------------------------------------------- */

__attribute__((constructor)) static void agent_ctor(void) {
  if (agent__init() != AGENT_READY)
    return;
  if (!agent__cfg.follow_exec)
    drop_from_ld_preload();
  agent__guard_enter();
  agent__thread_ensure();
  agent__guard_exit();
}

/* At exit: the final profile (every future slot settled) to FNPROF_DIR. */
__attribute__((destructor)) static void agent_dtor(void) {
  if (atomic_load(&agent__state) != AGENT_READY)
    return;
  fnprof_shutdown();
}

/* ---- fork ------------------------------------------------------------------
 */

static void fork_prepare(void) {
  agent__guard_enter();
  pthread_mutex_lock(&agent__ctl_lock);
  agent__spike_lock();
  pthread_mutex_lock(&agent__cycle_lock);
  agent__buckets_lock_all();
  agent__region_lock_all();
  agent__arena_lock_all();
  agent__unwind_fork_prepare(); /* last: unwinders hold none of ours */
}

static void fork_parent(void) {
  agent__unwind_fork_done(false);
  agent__arena_unlock_all();
  agent__region_unlock_all();
  agent__buckets_unlock_all();
  pthread_mutex_unlock(&agent__cycle_lock);
  agent__spike_unlock();
  pthread_mutex_unlock(&agent__ctl_lock);
  agent__guard_exit();
}

static void fork_child(void) {
  agent__unwind_fork_done(true);
  agent__arena_reset_locks();
  agent__region_reset_locks();
  agent__buckets_reset_locks();
  agent__spike_reset_lock();
  pthread_mutex_init(&agent__ctl_lock, NULL);
  agent__refresh_pid();
  agent__thread_after_fork_child();
  agent__guard_exit();
}
