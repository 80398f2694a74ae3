/*
 * agent/internal.h - what the files of libfnprof.so share. Nothing here is
 * exported: cross-file names carry the agent__ prefix, the only exported
 * symbols are the malloc family (interpose.c) and fnprof_* (fnprof.h).
 *
 * Lock order (fork's prepare handler takes them in this order, see init.c):
 *   agent__ctl_lock > spike lock > agent__cycle_lock > bucket insert lock >
 * region lock > arena lock. The hot path takes none of them.
 */
#ifndef FNPROF_AGENT_INTERNAL_H
#define FNPROF_AGENT_INTERNAL_H

#include <fnprof/common.h>
#include <fnprof/fnprof.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_LIKELY(x) __builtin_expect(!!(x), 1)
#define AGENT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define AGENT_NOINLINE __attribute__((noinline))

/* ---- configuration (init.c) ---------------------------------------------- */

#define AGENT_DEFAULT_RATE_BYTES 524288 /* Go's MemProfileRate */
#define AGENT_DEFAULT_DEPTH 64
#define AGENT_MAX_DEPTH 128
#define AGENT_DEFAULT_CYCLE_PERCENT 100 /* as GOGC */
/* Pacing never ends a cycle before this many bytes were allocated, so a tiny
 * heap does not turn every few allocations into a cycle (Go's 4 MiB min). */
#define AGENT_MIN_CYCLE_BYTES ((int64_t)4 << 20)

typedef struct agent__config {
  int64_t rate;           /* FNPROF_RATE: mean bytes between samples; 0 off */
  int depth;              /* FNPROF_DEPTH: frames kept per stack */
  int64_t cycle_percent;  /* FNPROF_CYCLE_PERCENT */
  int64_t cycle_ms;       /* FNPROF_CYCLE_MS: 0 = no time-based cycles */
  bool follow_exec;       /* FNPROF_FOLLOW_EXEC: children exec'd keep us */
  bool jit_map_unlink;    /* FNPROF_JIT_MAP_UNLINK: remove perf-<pid>.map */
  bool control;           /* FNPROF_CONTROL != "off" */
  char dir[512];          /* FNPROF_DIR: "" = write no files */
  char control_path[108]; /* FNPROF_CONTROL, sun_path sized; "" = default */
  int page_fd;            /* FNPROF_PAGE_FD: the invocation page, -1 none */
  /* Spike detector (spike.c documents the defaults). */
  int64_t spike_min_bytes;   /* FNPROF_SPIKE_MIN */
  int64_t spike_diff_pct;    /* FNPROF_SPIKE_DIFF */
  int64_t spike_abs_bytes;   /* FNPROF_SPIKE_ABS, 0 = no ceiling rule */
  int64_t spike_history;     /* FNPROF_SPIKE_HISTORY cycles */
  int64_t spike_cooldown_ms; /* FNPROF_SPIKE_COOLDOWN_MS */
} agent__config;

extern agent__config agent__cfg;

/* Parses the FNPROF_* variables out of envp (no malloc, no getenv). */
void agent__config_parse(agent__config *cfg, char **envp);

/* ---- thread-local state (one small initial-exec struct) ------------------ */

/* initial-exec is right for a library that is loaded at startup (LD_PRELOAD
 * or a DT_NEEDED dependency): its TLS lives in the static block, so the first
 * touch in a thread allocates nothing and costs one %fs-relative access. A
 * dlopen'ed libfnprof.so would fail to load, which is what we want. */
typedef struct agent__tls {
  /* Bytes left until the next sample. The fast path subtracts the request
   * size and calls the slow path when the result is <= 0. Zero at thread
   * start, so each thread's first allocation draws its interval. */
  int64_t countdown;
  int64_t saved_countdown; /* countdown while the guard is held */
  uint64_t rng;            /* xorshift64* state; 0 = not seeded */
  uint32_t guard;          /* reentrancy depth of agent code */
  uint32_t in_init;        /* this thread runs agent__init */
} agent__tls;

extern __thread agent__tls agent__tl __attribute__((tls_model("initial-exec")));

/* Reentrancy guard: while held, the thread's countdown is parked at
 * INT64_MAX, so the agent's own allocations take the fast path straight to
 * the real allocator and do not consume the application's countdown. */
static inline void agent__guard_enter(void) {
  agent__tls *t = &agent__tl;
  if (t->guard++ == 0) {
    t->saved_countdown = t->countdown;
    t->countdown = INT64_MAX;
  }
}
static inline void agent__guard_exit(void) {
  agent__tls *t = &agent__tl;
  if (--t->guard == 0)
    t->countdown = t->saved_countdown;
}

/* ---- init and the real allocator (init.c, interpose.c) ------------------- */

enum agent__state {
  AGENT_READY = 0, /* zero, so the slow path's check is a test against 0 */
  AGENT_UNINIT = 1,
  AGENT_INITIALIZING = 2,
  AGENT_DISABLED = 3,
};
extern _Atomic int agent__state;

/* Initializes once; returns the state it ended in. Reentrant calls from the
 * initializing thread return AGENT_INITIALIZING at once. */
int agent__init(void);

/* X-macro of every function we interpose and forward: name, return type,
 * parameter list, argument list. */
#define AGENT_ALLOC_FUNCS(X)                                                   \
  X(malloc, void *, (size_t n), (n))                                           \
  X(free, void, (void *p), (p))                                                \
  X(calloc, void *, (size_t m, size_t n), (m, n))                              \
  X(realloc, void *, (void *p, size_t n), (p, n))                              \
  X(posix_memalign, int, (void **out, size_t a, size_t n), (out, a, n))        \
  X(aligned_alloc, void *, (size_t a, size_t n), (a, n))                       \
  X(memalign, void *, (size_t a, size_t n), (a, n))                            \
  X(valloc, void *, (size_t n), (n))                                           \
  X(pvalloc, void *, (size_t n), (n))                                          \
  X(malloc_usable_size, size_t, (void *p), (p))

typedef struct agent__real_fns {
#define AGENT_REAL_FIELD(name, ret, params, args) ret(*name) params;
  AGENT_ALLOC_FUNCS(AGENT_REAL_FIELD)
#undef AGENT_REAL_FIELD
} agent__real_fns;

/* The next allocator's functions (dlsym RTLD_NEXT). Before init they point
 * at bootstrap functions that initialize first. */
extern agent__real_fns agent__real;
/* Resolves agent__real; called by agent__init with the guard held. */
void agent__resolve_real(void);
/* Every core function resolved (not a boot stub)? */
bool agent__real_ok(void);

/* ---- the owned region: where sampled blocks live (region.c) -------------- */

/* The free path's whole question "is this block ours?" is
 *   ((uintptr_t)p >> AGENT_REGION_SHIFT) == agent__region_key
 * one load, one shift, one compare. The region is a 64 GiB reservation
 * aligned to 64 GiB, so a pointer is inside it exactly when its high bits
 * equal the key. Until the region exists the key is UINTPTR_MAX, which no
 * user pointer has. */
#define AGENT_REGION_SHIFT 36

extern uintptr_t agent__region_key;

static inline bool agent__owned(const void *p) {
  return ((uintptr_t)p >> AGENT_REGION_SHIFT) == agent__region_key;
}

/* The header every sampled block carries just below the user pointer. */
typedef struct agent__block_hdr {
  struct agent__bucket *bucket; /* NULL: bootstrap memory, no bucket */
  uint64_t size;                /* requested size */
  uint32_t cycle;               /* cycle of the allocation (low bits) */
  uint32_t offset;              /* user pointer - slot start, in bytes */
  uint64_t capacity;            /* slot bytes from slot start */
} agent__block_hdr;

#define AGENT_HDR_BYTES 32

static inline agent__block_hdr *agent__hdr(void *p) {
  return (agent__block_hdr *)((char *)p - AGENT_HDR_BYTES);
}

/* Reserves the region; 0 or -errno. The first bytes become the bootstrap
 * pool for dlsym's allocations. */
int agent__region_init(void);
/* A block of `size` bytes aligned to `align` (a power of two >= 16) with a
 * header; NULL when the region is exhausted (the caller falls back to the
 * real allocator and counts a drop). Takes the region lock. */
void *agent__region_alloc(size_t size, size_t align, int64_t weight);
/* Bootstrap memory (zeroed) before the real allocator is known. */
void *agent__region_boot_alloc(size_t size);
void agent__region_free(void *p);
/* False for an owned block already freed: a second free of it is ignored
 * (and counted) instead of corrupting the free lists. The header's
 * capacity is zeroed on free; the free-list link (slot start) and the span
 * record (24 bytes) never reach it. */
bool agent__region_live(void *p);
/* Usable bytes of an owned block. */
size_t agent__region_usable(void *p);
bool agent__region_is_boot(const void *p);
/* Bytes of the region currently handed out (slots, including headers). */
uint64_t agent__region_resident(void);
/* Bytes of freed spans kept resident for reuse (RSS budget, cycle.c). */
void agent__region_set_dirty_cap(size_t bytes);
void agent__region_lock_all(void);
void agent__region_unlock_all(void);
void agent__region_reset_locks(void);

/* ---- mmap arena for agent tables (arena.c) ------------------------------- */

/* Append-only memory for buckets and the agent's other tables, never freed
 * until exit. Thread-safe (arena lock). NULL past AGENT_ARENA_CAP_BYTES. */
#define AGENT_ARENA_CAP_BYTES ((size_t)256 << 20)
void *agent__arena_alloc(size_t size);
size_t agent__arena_used(void);
void agent__arena_lock_all(void);
void agent__arena_unlock_all(void);
void agent__arena_reset_locks(void);

/* ---- sampling math (rate.c) ---------------------------------------------- */

/* Next countdown, exponential with the given mean (Go's fastexprand). */
/* libm-free exp, and log2 for x >= 1 (rate.c says why). */
double agent__exp(double x);
double agent__log2(double x);
int64_t agent__next_interval(uint64_t *rng, int64_t mean);
uint64_t agent__rng_next(uint64_t *rng);
uint64_t agent__rng_seed(void);
/* Go's scaleHeapSample: un-samples (count, bytes) at rate. */
void agent__scale(int64_t count, int64_t bytes, int64_t rate, int64_t *ocount,
                  int64_t *obytes);
/* Expected bytes one sample of `size` stands for: size / (1 - e^-size/rate). */
double agent__sample_weight(uint64_t size, int64_t rate);
/* The size part of a bucket's key (a size class, rate.c explains). */
uint64_t agent__size_key(uint64_t n);

/* ---- stacks (unwind.c) --------------------------------------------------- */

/* Captures up to max return PCs of the caller, agent frames skipped. */
int agent__unwind(uintptr_t *pcs, int max);
void agent__unwind_init(void);
/* Fork: no thread may be inside libunwind (unwind.c). */
void agent__unwind_fork_prepare(void);
void agent__unwind_fork_done(bool child);
/* Is pc inside libfnprof.so's own code? */
bool agent__is_self_pc(uintptr_t pc);

/* ---- buckets (bucket.c) -------------------------------------------------- */

typedef struct agent__counts {
  uint64_t allocs, frees, alloc_bytes, free_bytes;
} agent__counts;

typedef struct agent__atomic_counts {
  _Atomic uint64_t allocs, frees, alloc_bytes, free_bytes;
} agent__atomic_counts;

/* perfmap.c: names of JIT-compiled code from /tmp/perf-<pid>.map. */
typedef struct agent__perfmap {
  char *text; /* the file, NUL-terminated */
  size_t len;
  struct perfmap_ent *ent; /* sorted by start */
  size_t n;
} agent__perfmap;
/* 0, or -1 when there is no map (or nothing in it); close either way. */
int agent__perfmap_open(agent__perfmap *m, pid_t pid);
int agent__perfmap_open_path(agent__perfmap *m, const char *path);
/* The name of the code at addr, copied into buf; false if none. */
bool agent__perfmap_find(const agent__perfmap *m, uintptr_t addr, char *buf,
                         size_t len);
void agent__perfmap_close(agent__perfmap *m);

typedef struct agent__bucket {
  _Atomic(struct agent__bucket *) next; /* hash chain, lock-free read */
  struct agent__bucket *allnext;        /* all buckets, newest first */
  uint64_t hash;
  uint64_t size; /* size class of the blocks (agent__size_key): in the key */
  uint32_t req;  /* invocation (request id) index: part of the key */
  uint32_t id;   /* dense number, 1.. in creation order */
  uint32_t npc;
  agent__counts active;           /* published; under agent__cycle_lock */
  agent__atomic_counts future[3]; /* per-cycle, lock-free adds */
  /* On slot s's list of buckets to fold (bucket.c): link and flag. */
  _Atomic(struct agent__bucket *) pending_next[3];
  _Atomic uint32_t pending[3];
  uintptr_t pc[]; /* raw return PCs, leaf first */
} agent__bucket;

int agent__buckets_init(void);
/* Finds or creates the bucket; NULL when the arena is full. */
agent__bucket *agent__bucket_get(const uintptr_t *pc, int npc, uint64_t size,
                                 uint32_t req);
/* First bucket of the all-buckets list (acquire). */
agent__bucket *agent__bucket_all(void);
uint32_t agent__bucket_count(void);
void agent__buckets_lock_all(void);
void agent__buckets_unlock_all(void);
/* Re-initializes the bucket and cycle locks (fork child). */
void agent__buckets_reset_locks(void);

/* The cycle counter. agent__cycle_lock protects every bucket's `active` and
 * serializes cycle advances and profile reads. */
extern _Atomic uint64_t agent__cycle;
extern pthread_mutex_t agent__cycle_lock;

/* Slot arithmetic (Go's mprof.go, see DESIGN.md "The heap cycle, in C"). */
static inline unsigned agent__alloc_slot(uint64_t c) {
  return (unsigned)((c + 2) % 3);
}
/* A free goes to future[(c+1)%3], except for a block allocated in this very
 * cycle: its alloc sits in (c+2)%3, which is published one cycle after
 * (c+1)%3, so counting the free earlier would publish a free before its
 * alloc (negative in-use for a cycle). Such a free joins its alloc in
 * (c+2)%3: Go's comment on explicit frees says the same (C+2). */
static inline unsigned agent__free_slot(uint64_t c, uint32_t alloc_cycle) {
  return (uint32_t)c == alloc_cycle ? (unsigned)((c + 2) % 3)
                                    : (unsigned)((c + 1) % 3);
}
void agent__bucket_record_alloc(agent__bucket *b, uint64_t size, uint64_t c);
void agent__bucket_record_free(agent__bucket *b, uint64_t size, uint64_t c,
                               uint32_t alloc_cycle);
/* Advances the cycle: C <- C+1, every bucket's future[C%3] folds into
 * active. Caller holds agent__cycle_lock. Returns the new cycle. */
uint64_t agent__cycle_advance_locked(void);
/* Folds all future slots into active (the final profile's settled view).
 * Caller holds agent__cycle_lock. */
void agent__settle_all_locked(void);

/* ---- sampling slow paths (sample.c) -------------------------------------- */

enum agent__aligned_kind {
  AGENT_ALIGNED_ALLOC,
  AGENT_MEMALIGN,
  AGENT_VALLOC,
  AGENT_PVALLOC,
};
void *agent__malloc_slow(size_t n);
void *agent__calloc_slow(size_t m, size_t n);
void *agent__aligned_slow(enum agent__aligned_kind kind, size_t align,
                          size_t n);
int agent__posix_memalign_slow(void **out, size_t align, size_t n);
/* charged: the shim already subtracted n from the countdown. */
void *agent__realloc_slow(void *p, size_t n, bool charged);
void agent__free_owned(void *p);
size_t agent__usable_owned(void *p);
/* Draws the thread's next countdown (or parks it when sampling is off). */
void agent__reset_countdown(agent__tls *t);

/* Statistics the slow path keeps (relaxed atomics). samples, sampled_frees,
 * est_live_bytes, est_alloc_bytes and region_live_bytes change only under
 * the region lock (region.c, owned_stats_add); the others anywhere. */
typedef struct agent__stats {
  _Atomic uint64_t samples;
  _Atomic uint64_t sampled_frees;
  _Atomic uint64_t dropped;       /* samples lost: region or arena exhausted */
  _Atomic int64_t est_live_bytes; /* un-sampled estimate of live heap */
  _Atomic uint64_t est_alloc_bytes;  /* un-sampled estimate, cumulative */
  _Atomic int64_t region_live_bytes; /* requested bytes of owned blocks */
  _Atomic uint64_t write_errors;     /* profile/report files not written */
  _Atomic uint64_t invalid_frees;    /* owned blocks freed twice (ignored) */
} agent__stats;
extern agent__stats agent__st;

/* Current invocation index for new samples (0 = none). */
extern _Atomic uint32_t agent__cur_req;
/* The request id string of an index (bounded table, control.c). */
const char *agent__req_name(uint32_t idx);
uint32_t agent__req_intern(const char *id);
/* The same without waiting (the sample path): false when the table is busy. */
bool agent__req_intern_try(const char *id, uint32_t *idx);

/* ---- the invocation page (page.c) -----------------------------------------
 */

/* Maps the page handed down as fd (FNPROF_PAGE_FD); nothing when it is not
 * one (size, magic). */
void agent__page_map(int fd);
bool agent__page_on(void);
/* The invocation index for a new sample: the page's label when the sidecar
 * writes one, else fnprof_invocation_start's. Never blocks. */
uint32_t agent__current_req(void);
/* The page's sample_events when mapped (region.c counts into it). */
extern _Atomic uint64_t *agent__sample_events;
/* Tells the sidecar whether every invocation should end a cycle. */
void agent__page_want_cycles(bool want);
/* Answers invocation end seq in the page's ring (see fnprof.h). */
void agent__page_end_done(uint64_t seq, uint64_t cycle, int64_t live);

/* ---- cycles (cycle.c) ---------------------------------------------------- */

typedef struct agent__cycle_rec {
  uint64_t cycle;
  int64_t time_ns;          /* CLOCK_REALTIME at the end */
  uint64_t alloc_bytes;     /* estimated bytes allocated during the cycle */
  int64_t exact_live_bytes; /* mallinfo2 in-use + owned blocks, -1 unknown */
  int64_t est_live_bytes;   /* sampled estimate */
  int64_t rss_bytes;        /* /proc/self/statm resident */
  const char *reason;       /* "pace", "time", "request", "invocation" */
  char request[64];         /* the invocation an "invocation" end closed */
} agent__cycle_rec;

#define AGENT_CYCLE_HISTORY 64
/* Ends the current cycle now (any thread outside the hot path); returns the
 * new cycle number. */
uint64_t agent__end_cycle(const char *reason);
/* The same for the end of the invocation with this request id. */
uint64_t agent__end_invocation_cycle(const char *request_id);
/* Called by the slow path after each sample: wakes the background thread
 * when pacing says a cycle is due. */
void agent__pace_check(void);
/* Background thread (signals blocked): pacing, timed cycles, control
 * socket. Started from the constructor, restarted lazily after fork. */
void agent__thread_ensure(void);
void agent__thread_stop(void);
void agent__thread_after_fork_child(void);
/* Copies the last up to n cycle records, oldest first; returns count. */
size_t agent__cycle_history(agent__cycle_rec *out, size_t n);
/* How long exact numbers wait after a mallinfo2 call that took took_ns
 * over free_chunks free chunks: 0 when it was cheap (heap_rules.c). */
int64_t agent__mallinfo_wait_ns(int64_t took_ns, uint64_t free_chunks);

/* ---- spikes (spike.c) ---------------------------------------------------- */

void agent__spike_on_cycle(const agent__cycle_rec *rec);
/* The heap a cycle gives the spike rule, in *cur: 0 when it counts, -1
 * when it does not (an estimate once *seen_exact: exact values and
 * estimates are not compared with each other). Sets *seen_exact.
 * (heap_rules.c) */
int agent__spike_heap(const agent__cycle_rec *rec, bool *seen_exact,
                      int64_t *cur);
/* Pending reports as a JSON array (malloc'd, caller frees); clears them. */
char *agent__spike_take_json(size_t *len);
int agent__spike_count(void);
/* spike_lock: after ctl, before cycle in the lock order (fork). */
void agent__spike_lock(void);
void agent__spike_unlock(void);
void agent__spike_reset_lock(void);

/* ---- profiles (profile.c, maps.c) ---------------------------------------- */

typedef enum agent__view {
  AGENT_VIEW_ACTIVE,  /* `active` as published (lags up to two cycles) */
  AGENT_VIEW_SETTLED, /* all future slots folded in first: the heap now */
} agent__view;

struct pprof_profile;
/* Builds a heap profile (caller frees with pprof_profile_free). With a
 * non-NULL `snapshot`, bucket values come from it (indexed by bucket id)
 * instead of the live counters. */
int agent__profile_build(agent__view view, bool alloc_default,
                         const char *comment, struct pprof_profile **out);
/* Writes `p` to FNPROF_DIR as fnprof-<pid>-<seq>-<kind>.pb.gz. */
int agent__profile_write_dir(const struct pprof_profile *p, const char *kind,
                             char *path_out, size_t path_len);
/* Adds the executable mappings of /proc/self/maps with their build ids. */
int agent__maps_add(struct pprof_profile *p);
/* Remembers a library's executable mappings before dlclose unloads it. */
void agent__maps_note_dlclose(void *handle);

/* ---- control socket (control.c) ------------------------------------------ */

int agent__control_open(void);
void agent__control_close(bool unlink_path);
/* Removes other processes' dead default-path sockets (background thread). */
void agent__control_sweep(void);
/* The bound socket path ("" when none). */
const char *agent__control_path(void);
/* The last failure to open the socket (negative code), or 0. */
int agent__control_error(void);
/* The fds the background thread polls for the socket: the listening one
 * and every open connection (at most cap); then serves what poll found. */
struct pollfd;
int agent__control_pollfds(struct pollfd *pf, int cap);
void agent__control_serve(const struct pollfd *pf, int n);
extern pthread_mutex_t agent__ctl_lock;

/* Runs a textual request (one protocol line) and returns the response
 * payload (malloc'd) in *out; 0 or a negative code (message in *out). */
int agent__control_request(const char *line, char **out, size_t *len);

/* ---- misc ---------------------------------------------------------------- */

int64_t agent__now_ns(int clock);
pid_t agent__pid(void); /* cached, refreshed after fork */
void agent__refresh_pid(void);

#endif
