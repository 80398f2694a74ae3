/*
 * The exported fnprof_* API (fnprof.h). Each call holds the reentrancy
 * guard (its own allocations are not profiled) and agent__ctl_lock, so API
 * callers and control-socket requests are serialized.
 */
#include "internal.h"

#include <fnprof/pprof.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int shut_down;

#define API_ENTER()                                                            \
  if (agent__init() != AGENT_READY && !atomic_load(&shut_down))                \
    return FNP_EUSAGE;                                                         \
  agent__guard_enter();                                                        \
  pthread_mutex_lock(&agent__ctl_lock)
#define API_LEAVE()                                                            \
  pthread_mutex_unlock(&agent__ctl_lock);                                      \
  agent__guard_exit()

FNPROF_EXPORT int fnprof_end_cycle(uint64_t *cycle) {
  API_ENTER();
  uint64_t c = agent__end_cycle("request");
  API_LEAVE();
  if (cycle)
    *cycle = c;
  return 0;
}

static int build(fnprof_kind kind, pprof_profile **p) {
  switch (kind) {
  case FNPROF_PROFILE_INUSE:
    return agent__profile_build(AGENT_VIEW_ACTIVE, false, NULL, p);
  case FNPROF_PROFILE_ALLOC:
    return agent__profile_build(AGENT_VIEW_ACTIVE, true, NULL, p);
  case FNPROF_PROFILE_FINAL:
    return agent__profile_build(AGENT_VIEW_SETTLED, false, "final", p);
  }
  return FNP_EUSAGE;
}

static const char *kind_name(fnprof_kind kind) {
  return kind == FNPROF_PROFILE_ALLOC   ? "alloc"
         : kind == FNPROF_PROFILE_FINAL ? "final"
                                        : "inuse";
}

FNPROF_EXPORT int fnprof_profile(fnprof_kind kind, uint8_t **data,
                                 size_t *len) {
  API_ENTER();
  pprof_profile *p = NULL;
  int rc = build(kind, &p);
  if (rc == 0)
    rc = pprof_encode(p, true, data, len, NULL);
  pprof_profile_free(p);
  API_LEAVE();
  return rc;
}

FNPROF_EXPORT int fnprof_write_profile(fnprof_kind kind, char *path,
                                       size_t path_len) {
  if (!agent__cfg.dir[0])
    return FNP_EUSAGE;
  API_ENTER();
  pprof_profile *p = NULL;
  int rc = build(kind, &p);
  if (rc == 0)
    rc = agent__profile_write_dir(p, kind_name(kind), path, path_len);
  pprof_profile_free(p);
  API_LEAVE();
  return rc;
}

/* A JSON string (paths come from the environment: escape them). */
static int json_string(fnp_buf *o, const char *s) {
  int rc = fnp_buf_append(o, "\"", 1);
  for (; *s && rc == 0; s++)
    rc = (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
             ? fnp_buf_printf(o, "\\u%04x", (unsigned char)*s)
             : fnp_buf_append(o, s, 1);
  return rc == 0 ? fnp_buf_append(o, "\"", 1) : rc;
}

FNPROF_EXPORT int fnprof_metrics_json(char **json, size_t *len) {
  API_ENTER();
  fnp_buf o;
  fnp_buf_init(&o, 1 << 20);
  const agent__stats *s = &agent__st;
  int rc = fnp_buf_printf(
      &o,
      "{\"pid\":%d,\"rate\":%lld,\"state\":\"%s\",\"cycle\":%llu,"
      "\"samples\":%llu,\"sampled_frees\":%llu,\"dropped_samples\":%llu,"
      "\"buckets\":%u,\"est_live_bytes\":%lld,\"est_alloc_bytes\":%llu,"
      "\"owned_live_bytes\":%lld,\"owned_resident_bytes\":%llu,"
      "\"table_bytes\":%zu,\"write_errors\":%llu,\"invalid_frees\":%llu,"
      "\"spikes\":%d,\"control_error\":%d,\"control\":",
      (int)agent__pid(), (long long)agent__cfg.rate,
      atomic_load(&shut_down) ? "shutdown" : "running",
      (unsigned long long)atomic_load(&agent__cycle),
      (unsigned long long)atomic_load(&s->samples),
      (unsigned long long)atomic_load(&s->sampled_frees),
      (unsigned long long)atomic_load(&s->dropped), agent__bucket_count(),
      (long long)atomic_load(&s->est_live_bytes),
      (unsigned long long)atomic_load(&s->est_alloc_bytes),
      (long long)atomic_load(&s->region_live_bytes),
      (unsigned long long)agent__region_resident(), agent__arena_used(),
      (unsigned long long)atomic_load(&s->write_errors),
      (unsigned long long)atomic_load(&s->invalid_frees), agent__spike_count(),
      agent__control_error());
  if (rc == 0)
    rc = json_string(&o, agent__control_path());
  if (rc == 0)
    rc = fnp_buf_printf(&o, ",\"cycles\":[");
  agent__cycle_rec h[AGENT_CYCLE_HISTORY];
  size_t n = agent__cycle_history(h, AGENT_CYCLE_HISTORY);
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = fnp_buf_printf(
        &o,
        "%s{\"cycle\":%llu,\"time_ns\":%lld,\"reason\":\"%s\","
        "\"alloc_bytes\":%llu,\"exact_live_bytes\":%lld,"
        "\"est_live_bytes\":%lld,\"rss_bytes\":%lld}",
        i ? "," : "", (unsigned long long)h[i].cycle, (long long)h[i].time_ns,
        h[i].reason, (unsigned long long)h[i].alloc_bytes,
        (long long)h[i].exact_live_bytes, (long long)h[i].est_live_bytes,
        (long long)h[i].rss_bytes);
  if (rc == 0)
    rc = fnp_buf_append(&o, "]}", 3); /* with the NUL */
  if (rc == 0) {
    size_t l = 0;
    *json = (char *)fnp_buf_steal(&o, &l);
    if (len)
      *len = l - 1;
  }
  fnp_buf_destroy(&o);
  API_LEAVE();
  return rc;
}

FNPROF_EXPORT int fnprof_invocation_start(const char *request_id) {
  if (!request_id)
    return FNP_EUSAGE;
  API_ENTER();
  uint32_t idx = agent__req_intern(request_id);
  atomic_store(&agent__cur_req, idx);
  API_LEAVE();
  return 0;
}

FNPROF_EXPORT int fnprof_invocation_end(const char *request_id) {
  API_ENTER(); /* the running one ends, whatever the caller calls it */
  atomic_store(&agent__cur_req, 0);
  agent__end_invocation_cycle(request_id);
  API_LEAVE();
  return 0;
}

FNPROF_EXPORT int fnprof_spikes_json(char **json, size_t *len) {
  API_ENTER();
  *json = agent__spike_take_json(len);
  int rc = *json ? 0 : -12;
  API_LEAVE();
  return rc;
}

/* Exit paths must not hang (STYLE agent rule 9): a request in flight gets
 * SHUTDOWN_LOCK_WAIT_S to finish; past that, sampling still stops and the
 * socket still closes, but the final profile is skipped (and counted). */
#define SHUTDOWN_LOCK_WAIT_S 2

FNPROF_EXPORT int fnprof_shutdown(void) {
  if (atomic_exchange(&shut_down, 1))
    return 0;
  if (agent__init() != AGENT_READY)
    return 0;
  agent__guard_enter();
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += SHUTDOWN_LOCK_WAIT_S;
  bool locked = pthread_mutex_timedlock(&agent__ctl_lock, &until) == 0;
  /* Sampling stops: threads park their countdowns at their next slow path;
   * owned blocks are still recognized and freed. */
  int expect = AGENT_READY;
  atomic_compare_exchange_strong(&agent__state, &expect, AGENT_DISABLED);
  agent__thread_stop();
  int rc = 0;
  if (agent__cfg.dir[0] && locked) {
    pprof_profile *p = NULL;
    rc = agent__profile_build(AGENT_VIEW_SETTLED, false, "final, at exit", &p);
    if (rc == 0)
      rc = agent__profile_write_dir(p, "final", NULL, 0);
    pprof_profile_free(p);
  } else if (agent__cfg.dir[0]) {
    rc = -ETIMEDOUT;
  }
  if (rc != 0)
    atomic_fetch_add(&agent__st.write_errors, 1);
  if (agent__cfg.jit_map_unlink) {
    char map[64];
    snprintf(map, sizeof(map), "/tmp/perf-%d.map", (int)agent__pid());
    unlink(map); /* after the final profile, which names JIT code from it */
  }
  agent__control_close(true);
  if (locked)
    pthread_mutex_unlock(&agent__ctl_lock);
  agent__guard_exit();
  return rc;
}

FNPROF_EXPORT void fnprof_free(void *p) { free(p); }
