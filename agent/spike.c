/*
 * The heap-spike detector: holmes' gcHeap rule (mosn/holmes, PR #54) run at
 * every cycle end, in bytes instead of percentages of a memory limit (a C
 * process has no GOMEMLIMIT to relate to). With `cur` the live heap at the
 * cycle end (exact from the allocator when it can tell, else the sampled
 * estimate) and `avg` the average of the last FNPROF_SPIKE_HISTORY values
 * including cur (holmes pushes before it evaluates):
 *   1. no decision until the history is full (warm-up), nor in cooldown;
 *   2. cur < FNPROF_SPIKE_MIN (default 8 MiB): no spike;
 *   3. FNPROF_SPIKE_ABS set (default 0 = rule off) and cur > it: spike;
 *   4. cur >= avg * (100 + FNPROF_SPIKE_DIFF) / 100 (default 50 %): spike.
 * The history holds one kind of number: once the allocator has told an
 * exact heap, a cycle without one is left out (agent__spike_heap,
 * heap_rules.c).
 * History defaults to 10 cycles, the cooldown to 60 s (holmes' values; its
 * 20 % diff is on a percentage of the limit that moves slowly, a raw byte
 * heap of a C program is noisier, hence 50 %).
 *
 * On a spike the `active` profile is taken as "before" (it cannot contain
 * the spike yet: active lags two cycles) together with every bucket's
 * in-use bytes; two cycles later "after" is taken, the per-stack growth is
 * computed from the bucket counters (independent of symbolization), the
 * pprof diff of the two profiles is made, and a report is queued: its first
 * line names the stack that grew most. Runs in whatever thread ended the
 * cycle (normally the background thread), under the guard.
 */
#include "internal.h"

#include <fnprof/pprof.h>

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPIKE_MAX_PENDING 16
#define SPIKE_TOP_FRAMES 8

/* Detector state: touched only by end_cycle's caller, serialized by
 * spike_lock (cycles can end in the background thread and in API callers). */
static pthread_mutex_t spike_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t ring[64];
static int64_t ring_n;
static int64_t cooldown_until_ns;
static uint64_t trigger_cycle; /* 0: none pending */
static int64_t trigger_live;
static char trigger_request[64]; /* the invocation that ended the trigger */
static pprof_profile *before_prof;
static int64_t *before_inuse; /* by bucket id - 1, scaled bytes */
static uint32_t before_n;
static char *pending[SPIKE_MAX_PENDING];
static int pending_n;
static uint64_t dropped_reports;
static int spikes_total;

void agent__spike_lock(void) { pthread_mutex_lock(&spike_lock); }
void agent__spike_unlock(void) { pthread_mutex_unlock(&spike_lock); }
void agent__spike_reset_lock(void) { pthread_mutex_init(&spike_lock, NULL); }

int agent__spike_count(void) {
  pthread_mutex_lock(&spike_lock);
  int n = spikes_total;
  pthread_mutex_unlock(&spike_lock);
  return n;
}

static int64_t bucket_inuse(const agent__bucket *b) {
  int64_t objs, bytes;
  agent__scale((int64_t)(b->active.allocs - b->active.frees),
               (int64_t)(b->active.alloc_bytes - b->active.free_bytes),
               agent__cfg.rate, &objs, &bytes);
  return bytes;
}

/* Snapshot of every bucket's in-use bytes, under the cycle lock. */
static int64_t *snapshot_inuse(uint32_t *n_out) {
  pthread_mutex_lock(&agent__cycle_lock);
  uint32_t n = agent__bucket_count();
  int64_t *v = calloc(n ? n : 1, sizeof(*v));
  if (v)
    for (agent__bucket *b = agent__bucket_all(); b; b = b->allnext)
      if (b->id <= n)
        v[b->id - 1] = bucket_inuse(b);
  pthread_mutex_unlock(&agent__cycle_lock);
  *n_out = n;
  return v;
}

/* "function" or "module+0xoff" for a return PC, from the dynamic symbol
 * table (only a symbol whose extent contains the PC counts); for JIT code,
 * which no module holds, the runtime's perf map names it. Returns true
 * when the name came from the perf map. */
static bool frame_name(const agent__perfmap *jit, uintptr_t pc, char *buf,
                       size_t len) {
  Dl_info di;
  const ElfW(Sym) *sym = NULL;
  uintptr_t a = pc - 1;
  if (!dladdr1((void *)a, &di, (void **)&sym, RTLD_DL_SYMENT)) {
    if (agent__perfmap_find(jit, a, buf, len))
      return true;
    snprintf(buf, len, "0x%lx", (unsigned long)a);
    return false;
  }
  const char *mod = di.dli_fname ? strrchr(di.dli_fname, '/') : NULL;
  mod = mod ? mod + 1 : (di.dli_fname ? di.dli_fname : "?");
  if (di.dli_sname && di.dli_saddr && sym &&
      a < (uintptr_t)di.dli_saddr + (sym->st_size ? sym->st_size : 1))
    snprintf(buf, len, "%s", di.dli_sname);
  else
    snprintf(buf, len, "%s+0x%lx", mod,
             (unsigned long)(a - (uintptr_t)di.dli_fbase));
  return false;
}

/* Where the summary line starts: in a JIT runtime the first frames are
 * the runtime's allocation machinery, then its own library code (node's
 * built-in modules, whose perf-map entries name files "node:..."), and the
 * code the user wrote is the first JIT frame after those, so the line
 * starts there (or at the first JIT frame when all are the runtime's). In
 * native code it starts at the allocating frame. */
static uint32_t summary_start(const agent__perfmap *jit,
                              const agent__bucket *top) {
  char fn[256];
  uint32_t first_jit = UINT32_MAX;
  for (uint32_t i = 0; top && jit->n && i < top->npc; i++) {
    if (!frame_name(jit, top->pc[i], fn, sizeof(fn)))
      continue;
    if (first_jit == UINT32_MAX)
      first_jit = i;
    if (!strstr(fn, " node:"))
      return i;
  }
  return first_jit == UINT32_MAX ? 0 : first_jit;
}

static bool same_stack(const agent__bucket *a, const agent__bucket *b) {
  return a->npc == b->npc &&
         memcmp(a->pc, b->pc, a->npc * sizeof(uintptr_t)) == 0;
}

/* The stack (over all sizes and requests) whose in-use bytes grew most. */
static const agent__bucket *grew_most(int64_t *growth) {
  pthread_mutex_lock(&agent__cycle_lock);
  const agent__bucket *best = NULL;
  int64_t best_g = 0;
  for (agent__bucket *b = agent__bucket_all(); b; b = b->allnext) {
    /* Sum over the buckets with b's stack; count each stack once, at its
     * newest bucket (the first one met on the all-list). */
    bool seen = false;
    for (agent__bucket *o = agent__bucket_all(); o != b; o = o->allnext)
      if (same_stack(o, b)) {
        seen = true;
        break;
      }
    if (seen)
      continue;
    int64_t g = 0;
    for (agent__bucket *o = b; o; o = o->allnext)
      if (same_stack(o, b))
        g += bucket_inuse(o) -
             (o->id <= before_n && before_inuse ? before_inuse[o->id - 1] : 0);
    if (g > best_g) {
      best_g = g;
      best = b;
    }
  }
  pthread_mutex_unlock(&agent__cycle_lock);
  *growth = best_g;
  return best;
}

/* The invocation (request id index, 0 = none) whose allocations account
 * for most of top's growth: with the sidecar announcing invocations, it
 * says which request grew the heap even when the stack is all runtime
 * (an interpreter whose frames carry no names of the script's), and when
 * several ran at once. */
static uint32_t grew_most_request(const agent__bucket *top) {
  enum { MAX_REQS = 32 };
  uint32_t req[MAX_REQS];
  int64_t g[MAX_REQS];
  int n = 0;
  pthread_mutex_lock(&agent__cycle_lock);
  for (agent__bucket *o = agent__bucket_all(); top && o; o = o->allnext) {
    if (!same_stack(o, top))
      continue;
    int64_t d =
        bucket_inuse(o) -
        (o->id <= before_n && before_inuse ? before_inuse[o->id - 1] : 0);
    int k = 0;
    while (k < n && req[k] != o->req)
      k++;
    if (k == n && n < MAX_REQS) {
      req[n] = o->req;
      g[n++] = 0;
    }
    if (k < n)
      g[k] += d;
  }
  pthread_mutex_unlock(&agent__cycle_lock);
  int best = -1;
  for (int k = 0; k < n; k++)
    if (g[k] > 0 && (best < 0 || g[k] > g[best]))
      best = k;
  return best < 0 ? 0 : req[best];
}

static void json_str(fnp_buf *o, const char *s) {
  int rc = fnp_buf_append(o, "\"", 1);
  for (; *s && rc == 0; s++) {
    if (*s == '"' || *s == '\\')
      rc = fnp_buf_printf(o, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      rc = fnp_buf_printf(o, "\\u%04x", *s);
    else
      rc = fnp_buf_append(o, s, 1);
  }
  if (rc == 0)
    rc = fnp_buf_append(o, "\"", 1);
  (void)rc; /* a capped buffer that fills truncates the report, no more */
}

static void write_dir_counted(const pprof_profile *p, const char *kind,
                              char *path, size_t len) {
  if (agent__profile_write_dir(p, kind, path, len) != 0)
    atomic_fetch_add(&agent__st.write_errors, 1);
}

static void finish_spike(const agent__cycle_rec *rec) {
  int64_t growth = 0;
  const agent__bucket *top = grew_most(&growth);
  pprof_profile *after = NULL;
  char comment[128];
  snprintf(comment, sizeof(comment), "fnprof spike: after, cycle %llu",
           (unsigned long long)rec->cycle);
  int arc = agent__profile_build(AGENT_VIEW_ACTIVE, false, comment, &after);
  pprof_profile *diff = NULL;
  fnp_error derr = {0};
  int drc = (arc == 0 && before_prof)
                ? pprof_diff(before_prof, after, &diff, &derr)
                : FNP_EUSAGE;
  char pb[512] = "", pa[512] = "", pd[512] = "";
  if (agent__cfg.dir[0]) {
    if (before_prof)
      write_dir_counted(before_prof, "spike-before", pb, sizeof(pb));
    if (after)
      write_dir_counted(after, "spike-after", pa, sizeof(pa));
    if (diff)
      write_dir_counted(diff, "spike-diff", pd, sizeof(pd));
  }

  char line[1024];
  size_t off = 0;
  char heap_from[32], heap_to[32], grew[32];
  fnp_format_bytes(trigger_live, heap_from, sizeof(heap_from));
  fnp_format_bytes(rec->exact_live_bytes >= 0 ? rec->exact_live_bytes
                                              : rec->est_live_bytes,
                   heap_to, sizeof(heap_to));
  fnp_format_bytes(growth, grew, sizeof(grew));
  off += (size_t)snprintf(line, sizeof(line),
                          "heap spike at cycle %llu: %s -> %s; grew most "
                          "(+%s): ",
                          (unsigned long long)trigger_cycle, heap_from, heap_to,
                          grew);
  agent__perfmap jit;
  (void)agent__perfmap_open(&jit, agent__pid()); /* none: native names only */
  uint32_t first = summary_start(&jit, top);
  for (uint32_t i = first; top && i < top->npc && i < first + SPIKE_TOP_FRAMES;
       i++) {
    char fn[256];
    frame_name(&jit, top->pc[i], fn, sizeof(fn));
    if (off < sizeof(line))
      off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s",
                              i > first ? " <- " : "", fn);
  }
  if (!top && off < sizeof(line))
    snprintf(line + off, sizeof(line) - off, "(no sampled stack grew)");
  /* The request label on the buckets names it; past the label table's
   * first 1023 requests they all read "other", and samples taken before
   * the agent read the invocation's start carry none: then the invocation
   * whose end triggered the spike, or the first to end after a trigger
   * by the pacer (the one running as the heap grew, when invocations come
   * one at a time), names it instead. */
  const char *req = agent__req_name(grew_most_request(top));
  if (strcmp(req, "other") == 0 || !*req)
    req = trigger_request;
  if (*req && off < sizeof(line))
    snprintf(line + off, sizeof(line) - off, "; in request %s", req);

  fnp_buf o;
  fnp_buf_init(&o, 64 << 10);
  int rc = fnp_buf_printf(&o, "{\"summary\":");
  json_str(&o, line);
  rc |= fnp_buf_printf(&o,
                       ",\"trigger_cycle\":%llu,\"after_cycle\":%llu,"
                       "\"before_live_bytes\":%lld,\"after_live_bytes\":%lld,"
                       "\"growth_bytes\":%lld,\"request_id\":",
                       (unsigned long long)trigger_cycle,
                       (unsigned long long)rec->cycle, (long long)trigger_live,
                       (long long)(rec->exact_live_bytes >= 0
                                       ? rec->exact_live_bytes
                                       : rec->est_live_bytes),
                       (long long)growth);
  json_str(&o, req);
  rc |= fnp_buf_printf(&o, ",\"top_stack\":[");
  for (uint32_t i = 0; top && i < top->npc; i++) {
    char fn[256];
    frame_name(&jit, top->pc[i], fn, sizeof(fn));
    if (i)
      rc |= fnp_buf_append(&o, ",", 1);
    json_str(&o, fn);
  }
  rc |= fnp_buf_printf(&o, "],\"before_profile\":");
  json_str(&o, pb);
  rc |= fnp_buf_printf(&o, ",\"after_profile\":");
  json_str(&o, pa);
  rc |= fnp_buf_printf(&o, ",\"diff_profile\":");
  json_str(&o, pd);
  rc |= fnp_buf_printf(&o, ",\"diff_error\":");
  json_str(&o, drc == 0 ? "" : (derr.msg[0] ? derr.msg : fnp_strerror(drc)));
  rc |= fnp_buf_printf(&o, "}");
  if (rc == 0 && fnp_buf_append(&o, "", 1) == 0) {
    if (agent__cfg.dir[0]) {
      char path[600];
      snprintf(path, sizeof(path), "%s/fnprof-%d-spike-%llu.txt",
               agent__cfg.dir, (int)agent__pid(),
               (unsigned long long)trigger_cycle);
      fnp_buf txt;
      fnp_buf_init(&txt, 4096);
      if (fnp_buf_printf(&txt, "%s\n", line) != 0 ||
          fnp_write_file(path, txt.data, txt.len, NULL) != 0)
        atomic_fetch_add(&agent__st.write_errors, 1);
      fnp_buf_destroy(&txt);
    }
    if (pending_n < SPIKE_MAX_PENDING)
      pending[pending_n++] = (char *)fnp_buf_steal(&o, NULL);
    else
      dropped_reports++;
  }
  fnp_buf_destroy(&o);
  agent__perfmap_close(&jit);
  pprof_profile_free(diff);
  pprof_profile_free(after);
  pprof_profile_free(before_prof);
  before_prof = NULL;
  free(before_inuse);
  before_inuse = NULL;
  before_n = 0;
  spikes_total++;
}

void agent__spike_on_cycle(const agent__cycle_rec *rec) {
  static bool seen_exact; /* under spike_lock */
  int64_t cur;
  const agent__config *c = &agent__cfg;
  pthread_mutex_lock(&spike_lock);
  int counts = agent__spike_heap(rec, &seen_exact, &cur);
  if (trigger_cycle) {
    /* A trigger by a cycle that no invocation ended (the pacer's, in the
     * middle of the invocation that grew the heap) names no request; the
     * first invocation to end after it was the one running then, when
     * invocations come one at a time. */
    if (!trigger_request[0] && rec->request[0])
      snprintf(trigger_request, sizeof(trigger_request), "%s", rec->request);
    if (rec->cycle >= trigger_cycle + 2) {
      finish_spike(rec);
      trigger_cycle = 0;
      cooldown_until_ns =
          agent__now_ns(CLOCK_MONOTONIC) + c->spike_cooldown_ms * 1000000;
    }
    goto out;
  }
  if (counts < 0)
    goto out; /* an estimate among exact values */
  ring[ring_n % c->spike_history] = cur;
  ring_n++;
  if (ring_n < c->spike_history ||
      agent__now_ns(CLOCK_MONOTONIC) < cooldown_until_ns ||
      cur < c->spike_min_bytes)
    goto out;
  int64_t sum = 0;
  for (int64_t i = 0; i < c->spike_history; i++)
    sum += ring[i];
  int64_t avg = sum / c->spike_history;
  bool hit = (c->spike_abs_bytes > 0 && cur > c->spike_abs_bytes) ||
             cur >= avg / 100 * (100 + c->spike_diff_pct);
  if (!hit)
    goto out;
  trigger_cycle = rec->cycle;
  trigger_live = cur;
  snprintf(trigger_request, sizeof(trigger_request), "%s", rec->request);
  char comment[128];
  snprintf(comment, sizeof(comment), "fnprof spike: before, cycle %llu",
           (unsigned long long)rec->cycle);
  if (agent__profile_build(AGENT_VIEW_ACTIVE, false, comment, &before_prof) !=
      0)
    before_prof = NULL;
  before_inuse = snapshot_inuse(&before_n);
out:
  /* Cycles the rule needs: a history to fill, or the two after a trigger.
   * Otherwise the sidecar may leave invocations that sampled nothing
   * unended (fnprof.h). */
  agent__page_want_cycles(ring_n < c->spike_history || trigger_cycle != 0);
  pthread_mutex_unlock(&spike_lock);
}

char *agent__spike_take_json(size_t *len) {
  fnp_buf o;
  fnp_buf_init(&o, 1 << 20);
  pthread_mutex_lock(&spike_lock);
  int rc = fnp_buf_append(&o, "[", 1);
  for (int i = 0; i < pending_n; i++) {
    if (i)
      rc |= fnp_buf_append(&o, ",", 1);
    rc |= fnp_buf_append(&o, pending[i], strlen(pending[i]));
    free(pending[i]);
  }
  pending_n = 0;
  pthread_mutex_unlock(&spike_lock);
  rc |= fnp_buf_append(&o, "]", 2); /* with the NUL */
  if (rc != 0) {
    fnp_buf_destroy(&o);
    return NULL;
  }
  size_t n = 0;
  char *out = (char *)fnp_buf_steal(&o, &n);
  if (len)
    *len = n - 1;
  return out;
}
