/*
 * Agent-side heap profiles: the buckets' published counters written as a
 * pprof profile the way Go's runtime/pprof writes its heap profile (sample
 * types alloc_objects, alloc_space, inuse_objects, inuse_space; period_type
 * space/bytes; period = rate; values un-sampled with scaleHeapSample; a
 * numeric `bytes` label per sample; a `request` label when the allocation
 * happened inside an announced invocation; locations at return PC - 1;
 * mappings with build ids).
 *
 * Symbolization is left to the reader (fnprof top/diff, go tool pprof),
 * out of process: it needs libdw and debug files, costs milliseconds to
 * seconds, and would run inside the function's instance; the mappings'
 * build ids let the reader find the right files. The one place that needs
 * names in-process, the spike report's first line, uses dladdr (spike.c).
 * The exception is JIT-compiled code (node's JavaScript, a JVM's Java):
 * it lives in anonymous memory no reader can resolve later, and its names
 * exist only in the runtime's perf map (perfmap.c), which belongs to this
 * process and is gone with it; those locations are named here.
 */
#include "internal.h"

#include <fnprof/pprof.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static _Atomic uint32_t file_seq;

/* pc -> location id, open addressing; pcs are never 0. */
typedef struct loc_map {
  uintptr_t *key;
  uint64_t *val;
  size_t cap;
} loc_map;

static uint64_t *loc_slot(loc_map *m, uintptr_t pc) {
  size_t i = (size_t)((pc * 0x9E3779B97F4A7C15ULL) >> 20) & (m->cap - 1);
  while (m->key[i] && m->key[i] != pc)
    i = (i + 1) & (m->cap - 1);
  m->key[i] = pc;
  return &m->val[i];
}

static uint64_t mapping_for(const pprof_profile *p, uint64_t addr) {
  for (size_t i = 0; i < p->n_mapping; i++)
    if (addr >= p->mapping[i].memory_start && addr < p->mapping[i].memory_limit)
      return p->mapping[i].id;
  return 0;
}

/* The function for a perf map entry, "NAME [FILE[:LINE[:COL]]]" (V8:
 * "JS:~handler /srv/app.js:12:3"), added once per distinct entry. */
static int jit_function(pprof_profile *p, const char *entry, uint64_t *id,
                        int64_t *line) {
  char name[256], file[256] = "";
  const char *sp = strchr(entry, ' ');
  size_t n = sp ? (size_t)(sp - entry) : strlen(entry);
  snprintf(name, sizeof(name), "%.*s", (int)n, entry);
  *line = 0;
  if (sp) {
    snprintf(file, sizeof(file), "%s", sp + 1);
    for (int k = 0; k < 2; k++) { /* strip ":COL" then ":LINE" */
      char *c = strrchr(file, ':');
      if (!c || !c[1] || strspn(c + 1, "0123456789") != strlen(c + 1))
        break;
      *line = strtoll(c + 1, NULL, 10);
      *c = '\0';
    }
  }
  int64_t ns = pprof_string(p, name), fs = pprof_string(p, file);
  if (ns < 0 || fs < 0)
    return ns < 0 ? (int)ns : (int)fs;
  for (size_t i = 0; i < p->n_function; i++)
    if (p->function[i].name == ns && p->function[i].filename == fs) {
      *id = p->function[i].id;
      return 0;
    }
  pprof_function f = {
      .id = p->n_function + 1, .name = ns, .system_name = ns, .filename = fs};
  *id = f.id;
  return pprof_add_function(p, &f);
}

static int add_header(pprof_profile *p, bool alloc_default, const char *comment,
                      uint64_t cycle) {
  static const char *const types[4][2] = {{"alloc_objects", "count"},
                                          {"alloc_space", "bytes"},
                                          {"inuse_objects", "count"},
                                          {"inuse_space", "bytes"}};
  int rc = 0;
  for (int i = 0; i < 4 && rc == 0; i++)
    rc = pprof_add_sample_type(p, types[i][0], types[i][1]);
  int64_t space = pprof_string(p, "space"), bytes = pprof_string(p, "bytes");
  int64_t dflt = alloc_default ? pprof_string(p, "alloc_space") : 0;
  if (rc != 0 || space < 0 || bytes < 0 || dflt < 0)
    return rc ? rc : FNP_EUSAGE;
  p->period_type.type = space;
  p->period_type.unit = bytes;
  p->period = agent__cfg.rate;
  p->default_sample_type = dflt;
  p->time_nanos = agent__now_ns(CLOCK_REALTIME);
  char text[160];
  snprintf(
      text, sizeof(text), "fnprof heap profile: pid %d, cycle %llu, rate %lld",
      (int)agent__pid(), (unsigned long long)cycle, (long long)agent__cfg.rate);
  rc = pprof_add_comment(p, text);
  if (rc == 0 && comment)
    rc = pprof_add_comment(p, comment);
  return rc;
}

static int add_bucket(pprof_profile *p, const agent__bucket *b, loc_map *lm,
                      uint64_t *next_loc, int64_t bytes_key, int64_t req_key,
                      const agent__perfmap *jit) {
  int64_t v[4];
  const agent__counts *a = &b->active;
  agent__scale((int64_t)a->allocs, (int64_t)a->alloc_bytes, agent__cfg.rate,
               &v[0], &v[1]);
  agent__scale((int64_t)(a->allocs - a->frees),
               (int64_t)(a->alloc_bytes - a->free_bytes), agent__cfg.rate,
               &v[2], &v[3]);
  uint64_t ids[AGENT_MAX_DEPTH];
  for (uint32_t i = 0; i < b->npc; i++) {
    uint64_t *slot = loc_slot(lm, b->pc[i]);
    if (*slot == 0) {
      /* Every kept frame is a return address (the leaf frames inside the
       * agent were skipped), so each gets -1 to land in the call. */
      pprof_location l = {.id = ++*next_loc, .address = b->pc[i] - 1};
      l.mapping_id = mapping_for(p, l.address);
      char entry[512];
      pprof_line ln = {0};
      int rc = 0;
      if (l.mapping_id == 0 &&
          agent__perfmap_find(jit, l.address, entry, sizeof(entry))) {
        rc = jit_function(p, entry, &ln.function_id, &ln.line);
        l.line = &ln;
        l.n_line = rc == 0;
      }
      rc = rc ? rc : pprof_add_location(p, &l);
      if (rc != 0)
        return rc;
      *slot = l.id;
    }
    ids[i] = *slot;
  }
  /* Go's label: the average block size, AllocBytes / AllocObjects. */
  pprof_label lab[2] = {
      {.key = bytes_key, .num = (int64_t)(a->alloc_bytes / a->allocs)}};
  size_t nl = 1;
  if (b->req) {
    int64_t s = pprof_string(p, agent__req_name(b->req));
    if (s < 0)
      return (int)s;
    lab[nl++] = (pprof_label){.key = req_key, .str = s};
  }
  return pprof_add_sample(p, ids, b->npc, v, lab, nl);
}

int agent__profile_build(agent__view view, bool alloc_default,
                         const char *comment, pprof_profile **out) {
  agent__guard_enter();
  int rc = FNP_EUSAGE;
  loc_map lm = {0};
  pprof_profile *p = pprof_profile_new();
  if (!p) {
    rc = -12;
    goto fail;
  }
  if ((rc = agent__maps_add(p)) != 0)
    goto fail;
  int64_t bytes_key = pprof_string(p, "bytes");
  int64_t req_key = pprof_string(p, "request");
  if (bytes_key < 0 || req_key < 0)
    goto fail;

  agent__perfmap jit; /* read before the lock: it is a file */
  (void)agent__perfmap_open(&jit, agent__pid()); /* none: nothing to name */
  pthread_mutex_lock(&agent__cycle_lock);
  if (view == AGENT_VIEW_SETTLED)
    agent__settle_all_locked();
  uint64_t cycle = atomic_load(&agent__cycle);
  size_t npcs = 0;
  for (agent__bucket *b = agent__bucket_all(); b; b = b->allnext)
    npcs += b->npc;
  lm.cap = 64;
  while (lm.cap < npcs * 2)
    lm.cap *= 2;
  lm.key = calloc(lm.cap, sizeof(*lm.key));
  lm.val = calloc(lm.cap, sizeof(*lm.val));
  rc = lm.key && lm.val ? 0 : -12;
  if (rc == 0)
    rc = add_header(p, alloc_default, comment, cycle);
  if (rc == 0 && view == AGENT_VIEW_SETTLED)
    rc = pprof_add_comment(p, "settled: every future slot folded into "
                              "active (the heap as it is now)");
  uint64_t next_loc = 0;
  for (agent__bucket *b = agent__bucket_all(); b && rc == 0; b = b->allnext)
    if (b->active.allocs != 0)
      rc = add_bucket(p, b, &lm, &next_loc, bytes_key, req_key, &jit);
  pthread_mutex_unlock(&agent__cycle_lock);
  agent__perfmap_close(&jit);
  if (rc != 0)
    goto fail;
  free(lm.key);
  free(lm.val);
  *out = p;
  agent__guard_exit();
  return 0;
fail:
  free(lm.key);
  free(lm.val);
  pprof_profile_free(p);
  agent__guard_exit();
  return rc;
}

int agent__profile_write_dir(const pprof_profile *p, const char *kind,
                             char *path_out, size_t path_len) {
  if (!agent__cfg.dir[0])
    return FNP_EUSAGE;
  agent__guard_enter();
  /* The directory itself may not exist yet (one level, private). */
  if (mkdir(agent__cfg.dir, 0700) != 0 && errno != EEXIST) {
    int e = -errno;
    agent__guard_exit();
    return e;
  }
  char path[700];
  snprintf(path, sizeof(path), "%s/fnprof-%d-%04u-%s.pb.gz", agent__cfg.dir,
           (int)agent__pid(), (unsigned)atomic_fetch_add(&file_seq, 1) + 1,
           kind);
  fnp_error err;
  int rc = pprof_write_file(p, path, &err);
  if (rc == 0 && path_out && path_len)
    snprintf(path_out, path_len, "%s", path);
  agent__guard_exit();
  return rc;
}
