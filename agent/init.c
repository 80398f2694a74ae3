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

static pid_t cached_pid;

pid_t agent__pid(void) { return cached_pid; }
void agent__refresh_pid(void) { cached_pid = getpid(); }

int64_t agent__now_ns(int clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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
  agent__page_map(agent__cfg.page_fd);
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
